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
            eprintln!("PostgreSQL scenario skipped: OPENVRS_TEST_DATABASE_URL is not set");
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
                c.batch_execute(&format!("SET search_path = {schema}; {sql}"))
                    .unwrap();
            }
        }
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

impl Drop for Harness {
    fn drop(&mut self) {
        if let Raw::Postgres { base_url, schema } = &self.raw
            && let Ok(mut c) = postgres::Client::connect(base_url, postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}
