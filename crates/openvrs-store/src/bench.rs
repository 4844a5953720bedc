//! The ceiling for the store benchmark: the same persons inserted into SQLite as plain rows,
//! without sealing, keyed index, digest or audit. Used only by `openvrs bench store`.

use std::path::Path;

use openvrs_domain::{ids::MunicipalityCode, person::Person};
use rusqlite::{Connection, params};

use crate::StoreError;

/// Creates a fresh SQLite file at `path` (same pragmas as the store) and inserts `persons` with
/// their vouchers in plain text, in batches of `batch` per transaction.
pub fn plain_sqlite_insert(
    path: &Path,
    m: MunicipalityCode,
    persons: &[Person],
    batch: usize,
) -> Result<(), StoreError> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;
         CREATE TABLE persons (municipality_code TEXT NOT NULL, address_number TEXT NOT NULL,
            name TEXT NOT NULL, name_kana TEXT NOT NULL, birth_date TEXT NOT NULL, my_number TEXT,
            sex INTEGER NOT NULL, PRIMARY KEY (municipality_code, address_number));
         CREATE UNIQUE INDEX persons_my_number ON persons (municipality_code, my_number);
         CREATE TABLE vouchers (municipality_code TEXT NOT NULL, voucher_number TEXT NOT NULL,
            address_number TEXT NOT NULL, PRIMARY KEY (municipality_code, voucher_number),
            FOREIGN KEY (municipality_code, address_number)
                REFERENCES persons (municipality_code, address_number));",
    )?;
    let code = m.to_string();
    for chunk in persons.chunks(batch.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut person =
                tx.prepare_cached("INSERT INTO persons VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
            let mut voucher = tx.prepare_cached("INSERT INTO vouchers VALUES (?1, ?2, ?3)")?;
            for p in chunk {
                person.execute(params![
                    code,
                    p.address_number.as_str(),
                    p.name.as_str(),
                    p.name_kana.as_str(),
                    p.birth_date.0.to_string(),
                    p.my_number.as_ref().map(|n| n.expose()),
                    p.sex.iso5218(),
                ])?;
                for v in &p.vouchers {
                    voucher.execute(params![code, v.number.as_str(), p.address_number.as_str()])?;
                }
            }
        }
        tx.commit()?;
    }
    Ok(())
}

/// A fresh schema in a PostgreSQL database for one benchmark run, dropped afterwards.
#[derive(Debug)]
pub struct PgScratch {
    base: String,
    schema: String,
}

impl PgScratch {
    pub fn create(base_url: &str) -> Result<Self, StoreError> {
        let schema = format!("openvrs_bench_{}", std::process::id());
        let mut c = postgres::Client::connect(base_url, postgres::NoTls)?;
        // One statement at a time (Citus passes DDL on to its workers as given).
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
        c.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
        Ok(Self {
            base: base_url.to_owned(),
            schema,
        })
    }

    /// The URL that puts the store's tables in the scratch schema.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-c%20search_path%3D{}",
            self.base, self.schema
        )
    }
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}
