//! PostgreSQL, selected by a `postgres://` URL: a small pool of connections, prepared statements
//! cached per connection.

use std::{
    collections::HashMap,
    sync::{Condvar, Mutex},
};

use postgres::{
    Client, Statement,
    binary_copy::BinaryCopyInWriter,
    types::{IsNull, ToSql, Type, to_sql_checked},
};

use crate::{
    StoreError,
    pg_tls::{self, Target},
    sql::{Backend, Row, Tx, Value},
};

const MAX_IDLE: usize = 16;
/// How long a transaction waits for a connection when every one is in use, before the caller
/// is told the database is busy ([`StoreError::Busy`], a 503 on the API).
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// The connections: the idle ones, and how many are out.
#[derive(Default)]
struct Pool {
    idle: Vec<Conn>,
    out: usize,
    waiting: usize,
}

pub(crate) struct Postgres {
    target: Target,
    pool: Mutex<Pool>,
    returned: Condvar,
    /// At most this many connections at once (`[database] max_connections`).
    limit: usize,
    /// How long to wait for one when all are out ([`WAIT`]).
    wait: std::time::Duration,
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
    /// Connects to the database at `url` (TLS as its `sslmode` says) with at most `limit`
    /// connections at once.
    pub fn open(url: &str, limit: usize) -> Result<Self, StoreError> {
        let mut target = pg_tls::target(url)?;
        target.config.application_name("openvrs");
        let pg = Self {
            target,
            pool: Mutex::default(),
            returned: Condvar::new(),
            limit: limit.max(1),
            wait: WAIT,
            in_use: std::sync::atomic::AtomicUsize::new(0),
            snapshot: None,
        };
        let conn = pg.take()?;
        pg.put_back(conn);
        Ok(pg)
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let mut client = self.target.connect()?;
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, a new one while fewer than `limit` are out, or - when all are - the
    /// next one returned within [`WAIT`].
    fn take(&self) -> Result<Conn, StoreError> {
        let deadline = std::time::Instant::now() + self.wait;
        let mut pool = self.lock();
        loop {
            while let Some(c) = pool.idle.pop() {
                if !c.client.is_closed() {
                    pool.out += 1;
                    return Ok(c);
                }
            }
            if pool.out < self.limit {
                pool.out += 1;
                drop(pool);
                return self.connect().inspect_err(|_| self.give_back(None));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            pool.waiting += 1;
            let (next, _) = self
                .returned
                .wait_timeout(pool, left)
                .unwrap_or_else(|p| p.into_inner());
            pool = next;
            pool.waiting -= 1;
        }
    }

    /// A connection back (or the place of one that failed), for the next taker.
    fn give_back(&self, conn: Option<Conn>) {
        let mut pool = self.lock();
        pool.out = pool.out.saturating_sub(1);
        if let Some(conn) = conn
            && pool.idle.len() < MAX_IDLE
            && !conn.client.is_closed()
        {
            pool.idle.push(conn);
        }
        drop(pool);
        self.returned.notify_one();
    }

    fn put_back(&self, conn: Conn) {
        self.give_back(Some(conn));
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
    const KEYS_AS_TABLE: bool = true;
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
        (
            11,
            include_str!("../migrations/postgres/0011_shared_counts.sql"),
        ),
    ];

    fn pool(&self) -> crate::PoolStatus {
        let pool = self.lock();
        crate::PoolStatus {
            in_use: self.in_use.load(std::sync::atomic::Ordering::Relaxed),
            idle: pool.idle.len(),
            waiting: pool.waiting,
        }
    }

    fn transaction<T>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _counted = crate::sql::Counted::enter(&self.in_use);
        let mut lease = Lease {
            pg: self,
            conn: Some(self.take()?),
        };
        let Some(conn) = lease.conn.as_mut() else {
            return Err(StoreError::Busy);
        };
        (|| {
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
        })()
    }
}

/// A connection taken from the pool, given back when dropped - also when the work panicked,
/// so that a capped pool never loses its places.
struct Lease<'a> {
    pg: &'a Postgres,
    conn: Option<Conn>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pg.give_back(self.conn.take());
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
    let mut client = pg_tls::target(url)?.connect()?;
    // A Citus coordinator holds no rows of the distributed tables: a dump of it would be a
    // backup without data, and one snapshot does not span the workers.
    if client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])?
        .is_some()
    {
        return Err(StoreError::CitusBackup);
    }
    // One backup of a database at a time, whichever host's timer starts it: held by this
    // connection until the snapshot is let go.
    let alone: bool = client
        .query_one("SELECT pg_try_advisory_lock(7955925058806395764)", &[])?
        .get(0);
    if !alone {
        return Err(StoreError::Conflict(
            "このデータベースのバックアップが実行中です / a backup of this database is running",
        ));
    }
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
        let mut pg = Postgres::open(&self.url, 4)?;
        pg.snapshot = Some(self.id.clone());
        Ok(std::sync::Arc::new(crate::engine::Engine::open(
            pg,
            master,
            false,
            std::sync::Arc::new(crate::SystemClock),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg_tls::redact_url;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://u:secret@host/db"),
            "postgres://***@host/db"
        );
        assert_eq!(redact_url("postgres://host/db"), "postgres://host/db");
    }

    /// The pool never opens more than its limit: a taker finding every connection out waits,
    /// gets the next one returned, or is told the database is busy. (Needs the test database:
    /// `OPENVRS_TEST_DATABASE_URL`, which scripts/test sets.)
    #[test]
    fn the_pool_is_capped_and_says_busy() {
        let Ok(url) = std::env::var("OPENVRS_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("OPENVRS_REQUIRE_POSTGRES").is_err(),
                "OPENVRS_TEST_DATABASE_URL is required"
            );
            eprintln!("SKIPPED (no OPENVRS_TEST_DATABASE_URL): the pool cap");
            return;
        };
        let mut pg = Postgres::open(&url, 2).unwrap();
        pg.wait = std::time::Duration::from_millis(200);
        let a = pg.take().unwrap();
        let b = pg.take().unwrap();
        assert!(matches!(pg.take(), Err(StoreError::Busy)));
        assert_eq!(pg.lock().out, 2);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| pg.take().map(|c| pg.put_back(c)));
            pg.put_back(a);
            waiter.join().unwrap().unwrap();
        });
        pg.put_back(b);
        let pool = pg.lock();
        assert_eq!((pool.out, pool.idle.len()), (0, 2));
        drop(pool);
        // Work that panics still gives its connection back: the pool keeps its places.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pg.transaction(|_| -> Result<(), StoreError> { panic!("boom") })
        }));
        assert!(panicked.is_err());
        assert_eq!(pg.lock().out, 0);
        pg.transaction(|tx| tx.batch("SELECT 1")).unwrap();
    }
}
