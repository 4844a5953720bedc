//! A fresh store per test: a temporary SQLite file, or a fresh PostgreSQL schema.

use std::{path::PathBuf, process::Command, sync::Arc};

use openvrs_crypto::MasterKey;
use openvrs_store::{Location, Store};
use rand::Rng;

pub enum Raw {
    Sqlite {
        dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        base_url: String,
        schema: String,
    },
}

pub struct Harness {
    pub store: Arc<dyn Store>,
    pub master: MasterKey,
    pub raw: Raw,
}

fn schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

impl Harness {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openvrs.sqlite");
        let master = MasterKey::generate();
        let store = openvrs_store::open(
            &Location::Sqlite {
                path: path.clone(),
                create: true,
            },
            master.clone(),
        )
        .unwrap();
        Self {
            store,
            master,
            raw: Raw::Sqlite { dir, path },
        }
    }

    pub fn postgres() -> Option<Self> {
        let Ok(base_url) = std::env::var("OPENVRS_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("OPENVRS_REQUIRE_POSTGRES").is_err(),
                "OPENVRS_REQUIRE_POSTGRES is set but OPENVRS_TEST_DATABASE_URL is not"
            );
            skipped_loudly("every PostgreSQL scenario of the store");
            return None;
        };
        let schema = format!("t_{:016x}", rand::thread_rng().r#gen::<u64>());
        let mut client = postgres::Client::connect(&base_url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let master = MasterKey::generate();
        let store = openvrs_store::open(
            &Location::Postgres {
                url: schema_url(&base_url, &schema),
                max_connections: openvrs_store::DEFAULT_MAX_CONNECTIONS,
            },
            master.clone(),
        )
        .unwrap();
        Some(Self {
            store,
            master,
            raw: Raw::Postgres { base_url, schema },
        })
    }

    /// The same database opened again, with another master key if given.
    pub fn reopen(&self, master: &MasterKey) -> Result<Arc<dyn Store>, openvrs_store::StoreError> {
        openvrs_store::open(&self.location(), master.clone())
    }

    fn location(&self) -> Location {
        match &self.raw {
            Raw::Sqlite { path, .. } => Location::Sqlite {
                path: path.clone(),
                create: false,
            },
            Raw::Postgres { base_url, schema } => Location::Postgres {
                url: schema_url(base_url, schema),
                max_connections: openvrs_store::DEFAULT_MAX_CONNECTIONS,
            },
        }
    }

    /// Runs SQL directly against the database, behind the store's back (tampering).
    pub fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Raw::Postgres { base_url, schema } => {
                let mut c = postgres::Client::connect(base_url, postgres::NoTls).unwrap();
                c.batch_execute(&format!("SET search_path = {schema}"))
                    .unwrap();
                // One statement at a time: Citus passes DDL on to the workers as given, and a
                // worker takes one statement at a time (the tests' SQL quotes no semicolon).
                for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                    c.batch_execute(statement).unwrap();
                }
            }
        }
    }

    /// The schema as the database itself describes it: per table its columns, its unique keys
    /// (the primary key first, each as its ordered columns) and its foreign keys
    /// (`cols -> table`), for comparing the two backends' migrations.
    pub fn schema(&self) -> std::collections::BTreeMap<String, Table> {
        let mut out = std::collections::BTreeMap::<String, Table>::new();
        match &self.raw {
            Raw::Sqlite { path, .. } => {
                let c = rusqlite::Connection::open(path).unwrap();
                let strings = |sql: &str| -> Vec<Vec<String>> {
                    let mut st = c.prepare(sql).unwrap();
                    let n = st.column_count();
                    st.query_map([], |r| {
                        (0..n)
                            .map(|i| {
                                r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                                    rusqlite::types::Value::Text(t) => t,
                                    rusqlite::types::Value::Integer(i) => i.to_string(),
                                    _ => String::new(),
                                })
                            })
                            .collect()
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
                };
                for t in strings(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                ) {
                    let name = &t[0];
                    let table = out.entry(name.clone()).or_default();
                    let cols = strings(&format!("PRAGMA table_info({name})"));
                    table.columns = cols.iter().map(|c| c[1].clone()).collect();
                    let mut pk: Vec<(i64, String)> = cols
                        .iter()
                        .filter(|c| c[5] != "0")
                        .map(|c| (c[5].parse().unwrap(), c[1].clone()))
                        .collect();
                    pk.sort();
                    if !pk.is_empty() {
                        table.keys.insert(format!(
                            "pk({})",
                            pk.iter()
                                .map(|p| p.1.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        ));
                    }
                    for idx in strings(&format!("PRAGMA index_list({name})")) {
                        if idx[2] == "1" && idx[3] != "pk" {
                            let cols: Vec<String> =
                                strings(&format!("PRAGMA index_info({})", idx[1]))
                                    .into_iter()
                                    .map(|c| c[2].clone())
                                    .collect();
                            table.keys.insert(format!("unique({})", cols.join(",")));
                        }
                    }
                    let mut fks: std::collections::BTreeMap<String, (String, Vec<String>)> =
                        Default::default();
                    for fk in strings(&format!("PRAGMA foreign_key_list({name})")) {
                        let e = fks
                            .entry(fk[0].clone())
                            .or_insert((fk[2].clone(), Vec::new()));
                        e.1.push(fk[3].clone());
                    }
                    for (_, (to, cols)) in fks {
                        table
                            .foreign_keys
                            .insert(format!("({}) -> {to}", cols.join(",")));
                    }
                }
            }
            Raw::Postgres { base_url, schema } => {
                let mut c = postgres::Client::connect(base_url, postgres::NoTls).unwrap();
                for r in c
                    .query(
                        "SELECT table_name::text, column_name::text FROM information_schema.columns \
                         WHERE table_schema = $1",
                        &[schema],
                    )
                    .unwrap()
                {
                    out.entry(r.get(0)).or_default().columns.insert(r.get(1));
                }
                for r in c
                    .query(
                        "SELECT t.relname::text, i.indisprimary, \
                         array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o) \
                               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o) \
                         FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
                         JOIN pg_namespace s ON s.oid = t.relnamespace \
                         WHERE s.nspname = $1 AND i.indisunique",
                        &[schema],
                    )
                    .unwrap()
                {
                    let cols: Vec<String> = r.get(2);
                    let kind = if r.get::<_, bool>(1) { "pk" } else { "unique" };
                    out.entry(r.get(0))
                        .or_default()
                        .keys
                        .insert(format!("{kind}({})", cols.join(",")));
                }
                for r in c
                    .query(
                        "SELECT t.relname::text, f.relname::text, \
                         array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY x(n, o) \
                               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.n ORDER BY x.o) \
                         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid \
                         JOIN pg_class f ON f.oid = k.confrelid \
                         JOIN pg_namespace s ON s.oid = t.relnamespace \
                         WHERE s.nspname = $1 AND k.contype = 'f'",
                        &[schema],
                    )
                    .unwrap()
                {
                    let cols: Vec<String> = r.get(2);
                    let to: String = r.get(1);
                    out.entry(r.get(0))
                        .or_default()
                        .foreign_keys
                        .insert(format!("({}) -> {to}", cols.join(",")));
                }
            }
        }
        out
    }

    /// Every byte the database holds at rest: the SQLite files, or a `pg_dump` of the schema.
    pub fn bytes_at_rest(&self) -> Vec<u8> {
        match &self.raw {
            Raw::Sqlite { dir, .. } => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(dir.path()).unwrap() {
                    all.extend(std::fs::read(entry.unwrap().path()).unwrap());
                }
                all
            }
            Raw::Postgres { base_url, schema } => {
                let out = Command::new("pg_dump")
                    .args(["--no-owner", "--schema", schema, "--dbname", base_url])
                    .output()
                    .expect("pg_dump runs");
                assert!(
                    out.status.success(),
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }
}

/// One table as [`Harness::schema`] describes it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: std::collections::BTreeSet<String>,
    pub keys: std::collections::BTreeSet<String>,
    pub foreign_keys: std::collections::BTreeSet<String>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Raw::Postgres { base_url, schema } = &self.raw
            && let Ok(mut c) = postgres::Client::connect(base_url, postgres::NoTls)
        {
            // Under the migrations' lock: Citus's DDL of two schemas at once can deadlock.
            let _ = c.transaction().and_then(|mut t| {
                t.batch_execute(openvrs_store::MIGRATION_LOCK)?;
                t.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
                t.commit()
            });
        }
    }
}

/// Says once per test binary, past the test harness's capture (straight to standard error), what
/// a plain `cargo test` left untested.
pub fn skipped_loudly(what: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: {what}: OPENVRS_TEST_DATABASE_URL is not set (./scripts/test sets it) ***\n"
        );
    });
}
