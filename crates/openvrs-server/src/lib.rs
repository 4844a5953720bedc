//! The HTTP side of openvrs, and the only crate that knows HTTP.
//!
//! The server runs one listener per network zone. Both routers are built from one table,
//! [`routes::ROUTES`]: each route says its zone, who may call it ([`auth::Access`]) and whether it
//! touches personal data; [`auth::guard`] decides authentication, role, tenant and CSRF for every
//! route in one place, and [`routes::router`] refuses to mount a personal route on the internet
//! listener.

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use openvrs_store::{Store, StoreError};
use serde::Serialize;
use tokio::net::TcpListener;

pub mod api;
pub mod auth;
pub mod center;
pub mod certificates;
pub mod channels;
pub mod error;
pub mod group_commit;
pub mod headers;
pub mod http_client;
pub mod inquiries;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod openapi;
pub mod opendata;
pub mod records;
pub mod routes;
pub mod venue;
pub mod web;

pub use auth::SecurityConfig;
use error::ApiError;

/// The clock: the store's own, so that the server, the service and the store keep one time
/// (tests open the store with a clock they move).
pub type Clock = Arc<dyn openvrs_domain::date::Clock>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub security: SecurityConfig,
    pub clock: Clock,
    /// Where security events are sent, if anywhere.
    pub notifier: Option<notify::Notifier>,
    pub monitor: Arc<monitor::Monitor>,
    pub tokens: Arc<monitor::TokenCache>,
    /// The writer of tablet records (group commit).
    pub tablets: group_commit::GroupCommit,
    /// Who issues certificates, and as what (`[certificates]` in the config).
    pub issuer: openvrs_service::certificate::Issuer,
    /// The card issuers whose signature on My Number card data is trusted (`[cards]`).
    pub card_issuers: Arc<Vec<openvrs_cert::pki::Certificate>>,
    /// What `/metrics` on the metrics listener reports.
    pub metrics: Arc<metrics::Metrics>,
    /// The open data's counts, computed at most every few minutes.
    pub opendata: Arc<opendata::Cache>,
    /// Published counts below this are not shown (0: every count).
    pub opendata_suppress_below: u64,
    /// Data-quality warnings per municipality for the staff home, counted at most every few
    /// minutes (the report reads every dose).
    pub quality_counts: Arc<web::QualityCounts>,
    /// QR images (PNG, SVG) the public verifier may be reading at once: drawing and scanning
    /// an image is the costliest thing an anonymous caller can ask for.
    pub images: Arc<tokio::sync::Semaphore>,
}

/// See [`AppState::images`]: one per core of a small server; more wait their turn briefly.
const IMAGES_AT_ONCE: usize = 2;

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let metrics = Arc::new(metrics::Metrics::default());
        Self {
            tablets: group_commit::GroupCommit::start(store.clone(), metrics.clone()),
            clock: store.clock(),
            store,
            security: SecurityConfig::default(),
            notifier: None,
            monitor: Arc::default(),
            tokens: Arc::default(),
            issuer: openvrs_service::certificate::Issuer {
                url: "https://localhost:8080/issuer".into(),
                authority: "openvrs".into(),
            },
            card_issuers: Arc::default(),
            metrics,
            opendata: Arc::default(),
            opendata_suppress_below: 0,
            quality_counts: Arc::default(),
            images: Arc::new(tokio::sync::Semaphore::new(IMAGES_AT_ONCE)),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now().0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .field("security", &self.security)
            .finish()
    }
}

/// Runs store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Corrupt("worker failed"))?
        .map_err(ApiError::from)
}

/// The two network zones, each served by its own listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    Lgwan,
    Internet,
}

/// The LGWAN zone's routes.
pub fn lgwan_router(state: AppState) -> Router {
    routes::router(Zone::Lgwan, state)
}

/// The internet zone's routes. Nothing that accepts or returns a My Number is mounted here.
pub fn internet_router(state: AppState) -> Router {
    routes::router(Zone::Internet, state)
}

/// The two bound listeners.
#[derive(Debug)]
pub struct Listeners {
    pub lgwan: TcpListener,
    pub internet: TcpListener,
    /// Prometheus metrics (plain HTTP, LGWAN side), when configured.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(lgwan: SocketAddr, internet: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            lgwan: TcpListener::bind(lgwan).await?,
            internet: TcpListener::bind(internet).await?,
            metrics: None,
        })
    }

    /// Also listens for metrics scrapes on `addr`.
    pub async fn with_metrics(mut self, addr: SocketAddr) -> std::io::Result<Self> {
        self.metrics = Some(TcpListener::bind(addr).await?);
        Ok(self)
    }

    pub fn addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.lgwan.local_addr()?, self.internet.local_addr()?))
    }
}

/// A certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct TlsPem {
    pub cert_chain: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsPem(..)")
    }
}

/// Serves both zones, over TLS when `tls` is given (plain HTTP otherwise), until `shutdown`
/// completes or a listener fails.
pub async fn serve(
    listeners: Listeners,
    mut state: AppState,
    tls: Option<TlsPem>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.security.secure_cookies = tls.is_some();
    // The rate counts, shared with the other server processes of the database.
    let flusher = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(monitor::FLUSH_EVERY);
        loop {
            tick.tick().await;
            let s = flusher.clone();
            let flushed =
                tokio::task::spawn_blocking(move || s.monitor.flush(&*s.store, s.now())).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "could not share the rate counts");
            }
        }
    });
    let Some(metrics) = listeners.metrics else {
        let routers = vec![
            (listeners.lgwan, lgwan_router(state.clone())),
            (listeners.internet, internet_router(state)),
        ];
        return serve_routers(routers, tls, shutdown).await;
    };
    // The metrics listener speaks plain HTTP (a scraper on the LGWAN side); all three stop
    // together.
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |mut rx: tokio::sync::broadcast::Receiver<()>| async move {
        let _ = rx.recv().await;
    };
    let scrape = vec![(metrics, metrics_router(state.clone()))];
    let routers = vec![
        (listeners.lgwan, lgwan_router(state.clone())),
        (listeners.internet, internet_router(state)),
    ];
    let (rx1, rx2) = (stop.subscribe(), stop.subscribe());
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    });
    tokio::try_join!(
        serve_routers(routers, tls, stopped(rx1)),
        serve_routers(scrape, None, stopped(rx2)),
    )?;
    Ok(())
}

/// `GET /metrics`: every metric, as OpenMetrics text.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = state.metrics.clone();
            metrics.pool(state.store.pool());
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}

/// Serves each listener with its router, all over TLS with `tls` or all in plain HTTP, until
/// `shutdown` completes (then gracefully) or one fails. The system's two listeners and the
/// issuance center are served here.
pub(crate) async fn serve_routers(
    routers: Vec<(TcpListener, Router)>,
    tls: Option<TlsPem>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::<SocketAddr>::new();
    let stop = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let config = match tls {
        Some(pem) => {
            Some(axum_server::tls_rustls::RustlsConfig::from_pem(pem.cert_chain, pem.key).await?)
        }
        None => None,
    };
    let mut servers = tokio::task::JoinSet::new();
    for (listener, router) in routers {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let listener = listener.into_std()?;
        match &config {
            Some(c) => {
                let server =
                    axum_server::from_tcp_rustls(listener, c.clone())?.handle(handle.clone());
                servers.spawn(async move { server.serve(app).await });
            }
            None => {
                let server = axum_server::from_tcp(listener)?.handle(handle.clone());
                servers.spawn(async move { server.serve(app).await });
            }
        }
    }
    while let Some(done) = servers.join_next().await {
        done.map_err(std::io::Error::other)??;
    }
    Ok(())
}
