//! Venue tablets under load: every record the server acknowledged survives `kill -9` and a
//! graceful stop, and a backup taken while they write restores every record.

use std::process::Command;

use crate::{
    common::{SERVE_PLAIN, fails, http_post, ok, on_postgres, start},
    fixtures::{Residents, TabletLoad, papers, stats, town, town_with_keys_on, venue_token},
};

/// Every tablet record the server acknowledged survives `kill -9` of the server, none is
/// recorded twice (a retry with the same key after the restart is answered from the first), and
/// the audit chain verifies.
#[test]
fn acknowledged_tablet_records_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(
        d,
        None,
        Residents::Imported {
            count: 400,
            seed: 8,
        },
    );
    let token = venue_token(d);
    let papers = papers(d);
    let body = |i: usize| {
        serde_json::json!({
            "ocr_line": papers[i].0, "birth_date": papers[i].1, "product": "comirnaty",
            "lot": "FA1234", "date": "2021-06-01", "idempotency_key": format!("key-{i}"),
        })
        .to_string()
    };
    let (mut server, _, internet, _) = start(d, &SERVE_PLAIN);
    let (acks, acked) = std::sync::mpsc::channel::<usize>();
    let loader = {
        let token = token.clone();
        let bodies: Vec<String> = (0..papers.len()).map(body).collect();
        std::thread::spawn(move || {
            for (i, b) in bodies.iter().enumerate() {
                match http_post(internet, "/api/venue/doses", &token, b) {
                    Ok(r) if r.starts_with("HTTP/1.1 201") => {
                        if acks.send(i).is_err() {
                            break;
                        }
                    }
                    Ok(r) if r.is_empty() => break, // the server died mid-answer
                    Ok(r) => panic!("unexpected answer: {r}"),
                    Err(_) => break,
                }
            }
        })
    };
    // Kill the server with SIGKILL while the load runs, after some acknowledgements.
    let mut acknowledged: Vec<usize> = acked.iter().take(40).collect();
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    acknowledged.extend(acked.try_iter());
    loader.join().unwrap();
    acknowledged.extend(acked.try_iter());
    assert!(acknowledged.len() >= 40 && acknowledged.len() < papers.len());
    eprintln!(
        "kill -9 after {} of {} records acknowledged",
        acknowledged.len(),
        papers.len()
    );

    let (_server, _, internet, _) = start(d, &SERVE_PLAIN);
    // Each acknowledged record is there once: its retry answers from the first record.
    for &i in &acknowledged {
        let r = http_post(internet, "/api/venue/doses", &token, &body(i)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains(r#""replayed":true"#), "record {i} was lost: {r}");
    }
    let doses: u64 = stats(d).doses_by_number.values().sum();
    // Acknowledged, plus at most the one in flight when the server died.
    assert!(
        doses >= acknowledged.len() as u64 && doses <= acknowledged.len() as u64 + 1,
        "{doses} doses for {} acknowledged",
        acknowledged.len()
    );
    ok(d, &["audit", "verify", "--municipality", "472131"]);

    // SIGTERM (systemctl stop) under load: the server stops accepting, answers what is in
    // flight, flushes the group commit and exits cleanly - every acknowledged record is there,
    // and nothing that was not acknowledged.
    let (mut server, _, internet, _) = start(d, &SERVE_PLAIN);
    let (acks, acked) = std::sync::mpsc::channel::<usize>();
    let loader = {
        let token = token.clone();
        let bodies: Vec<(usize, String)> = (0..papers.len())
            .filter(|i| !acknowledged.contains(i))
            .map(|i| (i, body(i)))
            .collect();
        std::thread::spawn(move || {
            for (i, b) in &bodies {
                match http_post(internet, "/api/venue/doses", &token, b) {
                    Ok(r) if r.starts_with("HTTP/1.1 201") => {
                        if acks.send(*i).is_err() {
                            break;
                        }
                    }
                    Ok(r) if r.is_empty() => break,
                    Ok(r) => panic!("unexpected answer: {r}"),
                    Err(_) => break,
                }
            }
        })
    };
    let mut graceful: Vec<usize> = acked.iter().take(40).collect();
    let term = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "a clean exit after SIGTERM: {exit:?}");
    loader.join().unwrap();
    graceful.extend(acked.try_iter());
    let after: u64 = stats(d).doses_by_number.values().sum();
    assert_eq!(
        after,
        doses + graceful.len() as u64,
        "every acknowledged record, and only those"
    );
    ok(d, &["audit", "verify", "--municipality", "472131"]);
}

/// A backup taken while tablets record doses restores into a new data directory, checked
/// against its manifest (counts, every audit chain); taken again at rest, the restore holds
/// every record the original holds. Altered files, another master key and a non-empty target
/// are refused, and nothing is left behind.
#[test]
fn backup_under_write_load_restores_every_record_sqlite() {
    backup_under_write_load_restores_every_record(None);
}

#[test]
fn backup_under_write_load_restores_every_record_postgres() {
    on_postgres(backup_under_write_load_restores_every_record);
}

/// New empty PostgreSQL databases beside the test's own (a PostgreSQL backup restores into one),
/// dropped with this.
struct EmptyDatabases {
    base: String,
    made: Vec<String>,
}

impl EmptyDatabases {
    fn new(url: &str) -> Self {
        Self {
            base: url.to_owned(),
            made: Vec::new(),
        }
    }

    /// The URL of a new, empty database (same server, user and options).
    fn make(&mut self) -> String {
        let name = format!(
            "restore_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut client = postgres::Client::connect(&self.base, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.made.push(name.clone());
        let (path, options) = self.base.split_once('?').unwrap_or((&self.base, ""));
        let (server, _) = path.rsplit_once('/').unwrap();
        format!("{server}/{name}?{options}")
    }
}

impl Drop for EmptyDatabases {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            for name in &self.made {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

fn backup_under_write_load_restores_every_record(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town_with_keys_on(d, database_url);
    let mut databases = database_url.map(EmptyDatabases::new);
    // Where a restore goes: a data directory, and for PostgreSQL a new empty database too.
    let mut into = |dir: &str| -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), dir.to_owned()];
        if let Some(dbs) = databases.as_mut() {
            args.extend(["--database-url".to_owned(), dbs.make()]);
        }
        args
    };
    let restore = |target: &[String], file: &str, key: &str| -> Vec<String> {
        let mut args = target.to_vec();
        args.extend(["restore", file, "--master-key-file", key].map(str::to_owned));
        args
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let token = venue_token(d);
    let papers = papers(d);
    let (_server, _, internet, _) = start(d, &SERVE_PLAIN);
    let load = TabletLoad::start(internet, token, papers);
    // Under load: the copy is one consistent snapshot while records keep being written.
    load.wait_for(20);
    if std::env::var_os("OPENVRS_TEST_CITUS").is_some() {
        // A Citus coordinator holds no rows: the command refuses and says what to do instead.
        let refused = fails(d, &["backup", "--out", "under-load.bak"]);
        assert!(refused.contains("pg_basebackup"), "{refused}");
        assert!(!d.join("under-load.bak").exists());
        return;
    }
    let before = load.written();
    ok(d, &["backup", "--out", "under-load.bak"]);
    assert!(
        load.written() > before,
        "records were written during the backup"
    );
    load.stop();
    let key = d.join("openvrs-data/master.key");
    let key = key.to_str().unwrap();
    let r1 = into("r1");
    let restored = ok(d, &strs(&restore(&r1, "under-load.bak", key)));
    assert!(
        restored.contains("verified counts and audit logs"),
        "{restored}"
    );
    ok(
        d,
        &[
            "--data-dir",
            "r1",
            "audit",
            "verify",
            "--municipality",
            "472131",
        ],
    );

    // At rest: every record is the same.
    ok(d, &["backup", "--out", "at-rest.bak"]);
    ok(d, &strs(&restore(&into("r2"), "at-rest.bak", key)));
    for (dir, out) in [("openvrs-data", "a.csv"), ("r2", "b.csv")] {
        ok(
            d,
            &[
                "--data-dir",
                dir,
                "export",
                "ledger",
                "--municipality",
                "472131",
                "--out",
                out,
            ],
        );
    }
    assert_eq!(
        std::fs::read(d.join("a.csv")).unwrap(),
        std::fs::read(d.join("b.csv")).unwrap()
    );
    let stats = |dir: &str| {
        ok(
            d,
            &[
                "--data-dir",
                dir,
                "stats",
                "--municipality",
                "472131",
                "--json",
            ],
        )
    };
    assert_eq!(stats("openvrs-data"), stats("r2"));
    let certificates = |dir: &str| {
        ok(
            d,
            &[
                "--data-dir",
                dir,
                "certificate",
                "list",
                "--municipality",
                "472131",
            ],
        )
    };
    assert_eq!(certificates("openvrs-data"), certificates("r2"));

    // Refusals: nothing is left behind.
    let file = std::fs::read(d.join("at-rest.bak")).unwrap();
    assert!(
        !String::from_utf8_lossy(&file).contains("うるま"),
        "no names in the clear"
    );
    let mut altered = file.clone();
    let at = altered.len() - 100;
    altered[at] ^= 1;
    std::fs::write(d.join("altered.bak"), &altered).unwrap();
    std::fs::write(d.join("other.key"), "11".repeat(32)).unwrap();
    std::fs::write(d.join("short.bak"), &file[..file.len() / 2]).unwrap();
    let r3 = into("r3");
    let e = fails(d, &strs(&restore(&r3, "altered.bak", key)));
    assert!(e.contains("cannot be decrypted"), "{e}");
    let e = fails(d, &strs(&restore(&r3, "at-rest.bak", "other.key")));
    assert!(e.contains("cannot be decrypted"), "{e}");
    fails(d, &strs(&restore(&r3, "short.bak", key)));
    fails(d, &strs(&restore(&r3, "t.csv", key)));
    // The other backend's way of restoring is refused.
    let e = match database_url {
        None => fails(
            d,
            &strs(&restore(
                &["--data-dir", "r3", "--database-url", "postgres://h/db"].map(str::to_owned),
                "at-rest.bak",
                key,
            )),
        ),
        Some(_) => fails(
            d,
            &strs(&restore(
                &["--data-dir", "r3"].map(str::to_owned),
                "at-rest.bak",
                key,
            )),
        ),
    };
    assert!(e.contains("--database-url"), "{e}");
    assert!(!d.join("r3").exists() && !d.join("r3.restoring").exists());
    let e = fails(d, &strs(&restore(&r1, "at-rest.bak", key)));
    assert!(e.contains("not empty"), "{e}");
    if database_url.is_some() {
        // A new data directory, but the database r1 was restored into: refused, left as it was.
        let mut r4 = r1.clone();
        r4[1] = "r4".into();
        let e = fails(d, &strs(&restore(&r4, "at-rest.bak", key)));
        assert!(e.contains("must be empty"), "{e}");
        assert!(!d.join("r4").exists() && !d.join("r4.restoring").exists());
        ok(
            d,
            &[
                "--data-dir",
                "r1",
                "audit",
                "verify",
                "--municipality",
                "472131",
            ],
        );
    }
}
