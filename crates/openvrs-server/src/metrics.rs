//! Prometheus metrics (OpenMetrics text, `prometheus-client`), served on a listener of their own
//! on the LGWAN side (`[server] metrics`). Labels are route templates, zones, statuses, formats,
//! channels and kinds - never an id, a path as sent, a municipality or anything personal, so a
//! scrape cannot point at anyone.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{Zone, routes::RouteSpec};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    zone: &'static str,
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    zone: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Issued {
    format: &'static str,
    channel: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the server keeps, and the registry that writes them out.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Request, Counter>,
    latency: Histograms<Route>,
    tablet_batches: Histogram,
    tablet_records: Family<Kind, Counter>,
    certificates: Family<Issued, Counter>,
    security_events: Family<Kind, Counter>,
    import_rows: Family<Kind, Counter>,
    inquiries: Family<Kind, Counter>,
    connections: Family<Kind, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("openvrs");
        let requests = Family::<Request, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by zone, method, route template and status",
            requests.clone(),
        );
        let latency: Histograms<Route> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by zone and route template",
            latency.clone(),
        );
        let tablet_batches = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "tablet_group_commit_records",
            "Tablet records acknowledged by one durable commit",
            tablet_batches.clone(),
        );
        let tablet_records = Family::<Kind, Counter>::default();
        registry.register(
            "tablet_records",
            "Tablet records by outcome (recorded, repeated, conflict, refused)",
            tablet_records.clone(),
        );
        let certificates = Family::<Issued, Counter>::default();
        registry.register(
            "certificates_issued",
            "Certificates issued over HTTP, by format and channel",
            certificates.clone(),
        );
        let security_events = Family::<Kind, Counter>::default();
        registry.register(
            "security_events",
            "Security events raised, by kind",
            security_events.clone(),
        );
        let import_rows = Family::<Kind, Counter>::default();
        registry.register(
            "import_rows",
            "Rows imported from uploaded files, by file kind",
            import_rows.clone(),
        );
        let inquiries = Family::<Kind, Counter>::default();
        registry.register(
            "inquiries",
            "Inquiries to other municipalities, by outcome",
            inquiries.clone(),
        );
        let connections = Family::<Kind, Gauge>::default();
        registry.register(
            "database_connections",
            "Database connections by state (in_use, idle; waiting: transactions queued for SQLite's one writer)",
            connections.clone(),
        );
        Self {
            registry,
            connections,
            requests,
            latency,
            tablet_batches,
            tablet_records,
            certificates,
            security_events,
            import_rows,
            inquiries,
        }
    }
}

fn zone(z: Zone) -> &'static str {
    match z {
        Zone::Lgwan => "lgwan",
        Zone::Internet => "internet",
    }
}

fn kind(k: &str) -> Kind {
    Kind { kind: k.to_owned() }
}

impl Metrics {
    /// The store's connections as they are now (read at each scrape).
    pub fn pool(&self, p: openvrs_store::PoolStatus) {
        for (state, n) in [
            ("in_use", p.in_use),
            ("idle", p.idle),
            ("waiting", p.waiting),
        ] {
            self.connections
                .get_or_create(&kind(state))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// One answered request (no allocation: every label is static or a number).
    pub fn request(&self, spec: &'static RouteSpec, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&Request {
                zone: zone(spec.zone),
                method: spec.method.as_str(),
                route: spec.path,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                zone: zone(spec.zone),
                route: spec.path,
            })
            .observe(seconds);
    }

    pub fn tablet_batch(&self, records: usize) {
        self.tablet_batches.observe(records as f64);
    }

    pub fn tablet_record(&self, outcome: &str) {
        self.tablet_records.get_or_create(&kind(outcome)).inc();
    }

    pub fn certificate(&self, format: &'static str, channel: &'static str) {
        self.certificates
            .get_or_create(&Issued { format, channel })
            .inc();
    }

    pub fn security_event(&self, event: &str) {
        self.security_events.get_or_create(&kind(event)).inc();
    }

    pub fn import_rows(&self, file: &str, rows: u64) {
        self.import_rows.get_or_create(&kind(file)).inc_by(rows);
    }

    pub fn inquiry(&self, outcome: &str) {
        self.inquiries.get_or_create(&kind(outcome)).inc();
    }
}
