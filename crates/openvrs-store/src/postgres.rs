//! PostgreSQL, selected by a `postgres://` URL: a small pool of connections, prepared statements
//! cached per connection.

use std::{collections::HashMap, str::FromStr, sync::Mutex};

use postgres::{
    Client, NoTls, Statement,
    binary_copy::BinaryCopyInWriter,
    types::{IsNull, ToSql, Type, to_sql_checked},
};

use crate::{
    StoreError,
    sql::{Backend, Row, Tx, Value},
};

const MAX_IDLE: usize = 16;

struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

pub(crate) struct Postgres {
    config: postgres::Config,
    idle: Mutex<Vec<Conn>>,
    /// Connections taken out of `idle` (or opened) and not yet back.
    in_use: std::sync::atomic::AtomicUsize,
    /// Every transaction reads this exported snapshot, read-only (a backup's view).
    snapshot: Option<String>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Postgres(..)")
    }
}

impl Postgres {
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut config =
            postgres::Config::from_str(url).map_err(|_| StoreError::BadUrl(redact_url(url)))?;
        config.application_name("openvrs");
        let pg = Self {
            config,
            idle: Mutex::new(Vec::new()),
            in_use: std::sync::atomic::AtomicUsize::new(0),
            snapshot: None,
        };
        let conn = pg.connect()?;
        pg.put_back(conn);
        Ok(pg)
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let mut client = self.config.connect(NoTls)?;
        // Statements (and the foreign-key checks PostgreSQL runs for them) are prepared once
        // per connection. A generic plan made while a table was small (a fresh municipality, a
        // long import transaction) scans it sequentially forever after, which made a 100,000
        // resident load quadratic; planning each execution is cheap and keeps the index scans.
        client.batch_execute("SET plan_cache_mode = force_custom_plan")?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn take(&self) -> Result<Conn, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => self.connect(),
        }
    }

    fn put_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE && !conn.client.is_closed() {
            idle.push(conn);
        }
    }
}

/// A URL without its password, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
            Value::Date(d) => d.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

struct PgTx<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Tx for PgTx<'_, '_> {
    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        Ok(self.tx.execute(&stmt, &params(values))?)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        let rows = self.tx.query(&stmt, &params(values))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let ty = row.columns()[i].type_();
                        Ok(match *ty {
                            Type::INT2 => row.get::<_, Option<i16>>(i).map(i64::from).into(),
                            Type::INT4 => row.get::<_, Option<i32>>(i).map(i64::from).into(),
                            Type::INT8 => row.get::<_, Option<i64>>(i).into(),
                            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                                row.get::<_, Option<String>>(i).into()
                            }
                            Type::BYTEA => row.get::<_, Option<Vec<u8>>>(i).into(),
                            Type::DATE => row.get::<_, Option<time::Date>>(i).into(),
                            _ => return Err(StoreError::Corrupt("unexpected column type")),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.tx.batch_execute(sql)?)
    }

    fn copy_in(
        &mut self,
        table: &str,
        columns: &[&str],
        values: &[Value],
    ) -> Result<(), StoreError> {
        let columns = columns.join(", ");
        // The column types, as the binary format needs them (prepared once per connection).
        let types: Vec<Type> = self
            .statement(&format!("SELECT {columns} FROM {table}"))?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let sink = self.tx.copy_in(&format!(
            "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
        ))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for row in values.chunks(types.len()) {
            writer.write(&params(row))?;
        }
        writer.finish()?;
        Ok(())
    }
}

impl Backend for Postgres {
    const NAME: &'static str = "postgres";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    const BULK_COPY: bool = true;
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/postgres/0001_init.sql")),
        (2, include_str!("../migrations/postgres/0002_accounts.sql")),
        (3, include_str!("../migrations/postgres/0003_records.sql")),
        (4, include_str!("../migrations/postgres/0004_tablets.sql")),
        (5, include_str!("../migrations/postgres/0005_inquiries.sql")),
        (
            6,
            include_str!("../migrations/postgres/0006_signing_keys.sql"),
        ),
        (
            7,
            include_str!("../migrations/postgres/0007_certificates.sql"),
        ),
        (8, include_str!("../migrations/postgres/0008_channels.sql")),
        (
            9,
            include_str!("../migrations/postgres/0009_key_rotation.sql"),
        ),
        (
            10,
            include_str!("../migrations/postgres/0010_audit_by_object.sql"),
        ),
    ];

    fn pool(&self) -> crate::PoolStatus {
        crate::PoolStatus {
            in_use: self.in_use.load(std::sync::atomic::Ordering::Relaxed),
            idle: self.idle.lock().unwrap_or_else(|p| p.into_inner()).len(),
            waiting: 0,
        }
    }

    fn transaction<T>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _counted = crate::sql::Counted::enter(&self.in_use);
        let mut conn = self.take()?;
        let result = (|| {
            let mut tx = match &self.snapshot {
                None => conn.client.transaction()?,
                Some(id) => {
                    let mut tx = conn
                        .client
                        .build_transaction()
                        .isolation_level(postgres::IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start()?;
                    tx.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{id}'"))?;
                    tx
                }
            };
            let out = f(&mut PgTx {
                tx: &mut tx,
                statements: &mut conn.statements,
            })?;
            tx.commit()?;
            Ok(out)
        })();
        self.put_back(conn);
        result
    }
}

/// A moment of a PostgreSQL database held still: a read-only transaction whose snapshot is
/// exported, so that `pg_dump --snapshot` and a store opened on it see exactly the same data,
/// however much is written meanwhile. Released when dropped.
pub struct PgSnapshot {
    /// Holds the exporting transaction open.
    _client: Client,
    id: String,
    url: String,
    schema: String,
}

/// Exports a snapshot of the database at `url` (`postgres_snapshot`).
pub fn export_snapshot(url: &str) -> Result<PgSnapshot, StoreError> {
    let config =
        postgres::Config::from_str(url).map_err(|_| StoreError::BadUrl(redact_url(url)))?;
    let mut client = config.connect(NoTls)?;
    client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    let row = client.query_one("SELECT pg_export_snapshot(), current_schema()", &[])?;
    let id: String = row.get(0);
    let schema: Option<String> = row.get(1);
    // Spliced into SQL and a command line: it must be what PostgreSQL makes (hex and dashes).
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(StoreError::Corrupt("snapshot id"));
    }
    Ok(PgSnapshot {
        _client: client,
        id,
        url: url.to_owned(),
        schema: schema.ok_or(StoreError::Corrupt("no current schema"))?,
    })
}

impl std::fmt::Debug for PgSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgSnapshot({})", self.id)
    }
}

impl PgSnapshot {
    /// For `pg_dump --snapshot`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The schema the store's tables are in (`pg_dump --schema`).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A read-only store that sees the snapshot (its schema must be this program's).
    pub fn store(
        &self,
        master: openvrs_crypto::MasterKey,
    ) -> Result<std::sync::Arc<dyn crate::Store>, StoreError> {
        let mut pg = Postgres::open(&self.url)?;
        pg.snapshot = Some(self.id.clone());
        Ok(std::sync::Arc::new(crate::engine::Engine::open(
            pg, master, false,
        )?))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            super::redact_url("postgres://u:secret@host/db"),
            "postgres://***@host/db"
        );
        assert_eq!(
            super::redact_url("postgres://host/db"),
            "postgres://host/db"
        );
    }
}
