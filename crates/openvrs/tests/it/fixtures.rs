//! The data directories the scenarios start from: a town with its residents, their doses and
//! the deployment's keys, a venue tablet's token and papers, and what the command says of them.

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use crate::common::{http_post, ok};

/// Who lives in the town [`town`] makes.
#[derive(Debug, Clone, Copy)]
pub enum Residents {
    /// Nobody yet.
    None,
    /// `count` synthetic residents from `seed`, written to `t.csv` and imported.
    Imported { count: u32, seed: u64 },
    /// The same, and their vaccination histories written to `l.csv`, not imported.
    WithLedger { count: u32, seed: u64 },
}

/// A new data directory (`openvrs init`, on the database at `database_url`, SQLite in the data
/// directory when `None`) with うるま市 (472131) registered, and its `residents`.
pub fn town(d: &Path, database_url: Option<&str>, residents: Residents) {
    match database_url {
        Some(url) => ok(d, &["--database-url", url, "init"]),
        None => ok(d, &["init"]),
    };
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    let (count, seed, files) = match residents {
        Residents::None => return,
        Residents::Imported { count, seed } => (count, seed, &[("residents", "t.csv")][..]),
        Residents::WithLedger { count, seed } => (
            count,
            seed,
            &[("residents", "t.csv"), ("ledger", "l.csv")][..],
        ),
    };
    let (count, seed) = (count.to_string(), seed.to_string());
    for (what, out) in files {
        ok(
            d,
            &[
                "gen",
                what,
                "--municipality",
                "472131",
                "--count",
                &count,
                "--seed",
                &seed,
                "--out",
                out,
            ],
        );
    }
    ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
}

/// A data directory with うるま市, 40 synthetic residents imported (`t.csv`) and their doses
/// written to `l.csv`, not yet imported; on the database at `database_url` (SQLite in the data
/// directory when `None`).
pub fn town_files(d: &Path, database_url: Option<&str>) {
    town(
        d,
        database_url,
        Residents::WithLedger { count: 40, seed: 7 },
    );
}

/// A town with residents and their vaccination histories, and the deployment's keys: the
/// residents with doses, and those without.
pub fn town_with_keys(d: &Path) -> (Vec<String>, Vec<String>) {
    town_with_keys_on(d, None)
}

/// The same, on the database at `database_url` (SQLite in the data directory when `None`).
pub fn town_with_keys_on(d: &Path, database_url: Option<&str>) -> (Vec<String>, Vec<String>) {
    town_files(d, database_url);
    ok(
        d,
        &["import", "ledger", "l.csv", "--municipality", "472131"],
    );
    let column = |file: &str, col: usize| -> Vec<String> {
        std::fs::read_to_string(d.join(file))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(col).unwrap().to_owned())
            .collect()
    };
    let vaccinated = column("l.csv", 0);
    let unvaccinated = column("t.csv", 1)
        .into_iter()
        .filter(|a| !vaccinated.contains(a))
        .collect();
    let made = ok(d, &["keys", "init"]);
    for kind in ["shc", "csca", "vds", "dcc"] {
        assert!(made.contains(&format!("created: {kind} kid")), "{made}");
    }
    (vaccinated, unvaccinated)
}

/// A venue device of 472131 (`tablet-1`, 会場A): its token.
pub fn venue_token(d: &Path) -> String {
    venue_device(d, "tablet-1")
}

/// A venue device `id` of 472131 at 会場A: its token.
pub fn venue_device(d: &Path, id: &str) -> String {
    let issued = ok(
        d,
        &[
            "user",
            "add",
            "--id",
            id,
            "--role",
            "venue",
            "--municipality",
            "472131",
            "--venue",
            "会場A",
        ],
    );
    issued.trim().rsplit(' ').next().unwrap().to_owned()
}

/// The papers of `t.csv`'s living residents: (OCR line of the first voucher, date of birth as
/// written), one per resident.
pub fn papers(d: &Path) -> Vec<(String, String)> {
    let csv = std::fs::read_to_string(d.join("t.csv")).unwrap();
    let mut seen = std::collections::HashSet::new();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|c| c[12].is_empty() && seen.insert(c[1].clone()))
        .map(|c| (format!("1{}472131{}", c[4], c[2]), c[7].clone()))
        .collect()
}

/// Venue tablets recording doses, one after another, until stopped; each must be acknowledged.
pub struct TabletLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl TabletLoad {
    pub fn start(internet: SocketAddr, token: String, papers: Vec<(String, String)>) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let written = std::sync::Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, written) = (stop.clone(), written.clone());
            std::thread::spawn(move || {
                let mut sent = 0usize;
                while !stop.load(SeqCst) {
                    let (ocr, birth) = &papers[sent % papers.len()];
                    let body = serde_json::json!({
                        "ocr_line": ocr, "birth_date": birth, "product": "comirnaty",
                        "lot": "FA1234", "date": "2021-06-01",
                        "idempotency_key": format!("load-{sent}"),
                    })
                    .to_string();
                    let answer = http_post(internet, "/api/venue/doses", &token, &body).unwrap();
                    assert!(answer.starts_with("HTTP/1.1 2"), "{answer:.200}");
                    sent += 1;
                    written.store(sent, SeqCst);
                }
            })
        };
        Self {
            stop,
            written,
            thread,
        }
    }

    pub fn written(&self) -> usize {
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Until `n` records were acknowledged (or the load failed).
    pub fn wait_for(&self, n: usize) {
        while self.written() < n {
            assert!(!self.thread.is_finished(), "the tablet load stopped");
            std::thread::yield_now();
        }
    }

    /// Stops it; panics if any record was refused.
    pub fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let written = self.written.clone();
        self.thread.join().unwrap();
        written.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Everything held about person `address` of うるま市, as `person disclose --format json` writes it.
pub fn disclosure(d: &Path, address: &str) -> serde_json::Value {
    ok(
        d,
        &[
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
            address,
            "--format",
            "json",
            "--out",
            "disclosure.json",
        ],
    );
    serde_json::from_slice(&std::fs::read(d.join("disclosure.json")).unwrap()).unwrap()
}

/// What `openvrs stats --json` says of うるま市 (the parts the scenarios read).
#[derive(Debug, serde::Deserialize)]
pub struct Stats {
    pub persons: u64,
    pub vouchers: u64,
    /// Doses given, by dose number.
    pub doses_by_number: BTreeMap<u32, u64>,
    pub use_suspended: u64,
    /// Persons, by the version of the data key that seals them.
    pub persons_by_key_version: BTreeMap<u32, u64>,
}

/// `openvrs stats` of うるま市.
pub fn stats(d: &Path) -> Stats {
    serde_json::from_str(&ok(d, &["stats", "--municipality", "472131", "--json"])).unwrap()
}
