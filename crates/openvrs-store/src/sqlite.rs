//! The embedded default: one SQLite file in WAL mode, one writer connection, and a second
//! connection that checkpoints the WAL in the background.
//!
//! Durability: in WAL mode with `synchronous = NORMAL` a commit is in the WAL file before it
//! returns, so it survives a crash or `kill -9` of the process; the WAL is fsynced at each
//! checkpoint, so an OS crash or power cut can lose the commits since the last one (at most
//! [`BUSY`] under load). Reads of pages not in the WAL go through a memory map, so the page
//! cache is small (a large one costs every commit a scan of it). Checkpoints never run on the
//! writer's commit path (`wal_autocheckpoint = 0`): a thread copies the WAL back with passive
//! checkpoints, which neither wait for nor block the writer.

use std::{
    path::Path,
    sync::{Mutex, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use rusqlite::{
    Connection, OpenFlags, TransactionBehavior,
    types::{ToSqlOutput, ValueRef},
};

use crate::{
    StoreError,
    sql::{Backend, Row, Tx, Value},
};

#[derive(Debug)]
pub(crate) struct Sqlite {
    conn: Mutex<Connection>,
    /// Transactions waiting for, or holding, the writer connection.
    wanted: std::sync::atomic::AtomicUsize,
    /// Declared after `conn`: dropped after it, so the checkpointer's connection is the last
    /// one to close, which checkpoints the whole WAL and removes it.
    _checkpointer: Checkpointer,
}

/// How often the background thread checkpoints the WAL: often while there are writes, so that
/// it catches up between two commits and the writer can start the WAL file over (instead of
/// growing it), and seldom when idle.
const BUSY: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_millis(250);

/// The background checkpoint thread; stopped and joined on drop.
#[derive(Debug)]
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;")?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut pause = IDLE;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
                    // (busy, frames in the WAL, frames copied back). Busy or failed, the next
                    // round tries again; nothing here can lose data.
                    let frames = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
                        .unwrap_or(0);
                    pause = if frames > 0 { BUSY } else { IDLE };
                }
            })
            .map_err(|e| StoreError::Database(format!("checkpoint thread: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Sqlite {
    /// Opens the database file; it must exist unless `create` is set (a typo in a path is an
    /// error, not a new empty database).
    pub fn open(path: &Path, create: bool) -> Result<Self, StoreError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        } else if !path.is_file() {
            return Err(StoreError::NoDatabase(path.display().to_string()));
        }
        let conn = Connection::open_with_flags(path, flags)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA mmap_size = 4294967296;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -16384;
             PRAGMA temp_store = MEMORY;",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
            wanted: std::sync::atomic::AtomicUsize::new(0),
            _checkpointer: Checkpointer::start(path)?,
        })
    }
}

/// A consistent copy of the database at `from` in a new file `to` (SQLite's `VACUUM INTO`, from
/// a read-only connection of its own): one snapshot, taken while a server may be writing.
pub fn snapshot(from: &Path, to: &Path) -> Result<(), StoreError> {
    if !from.is_file() {
        return Err(StoreError::NoDatabase(from.display().to_string()));
    }
    let conn = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let to = to
        .to_str()
        .ok_or(StoreError::Corrupt("a snapshot path that is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [to])?;
    Ok(())
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Date(d) => ToSqlOutput::Owned(rusqlite::types::Value::Text(d.to_string())),
        })
    }
}

struct SqliteTx<'a>(&'a Connection);

/// `$1` is a named parameter to SQLite; `?1` is the numbered one we mean.
fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Tx for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(&dialect(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(&dialect(sql))?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Text(t) => Value::Text(
                        std::str::from_utf8(t)
                            .map_err(|_| StoreError::Corrupt("text is not UTF-8"))?
                            .to_owned(),
                    ),
                    ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                    ValueRef::Real(_) => return Err(StoreError::Corrupt("unexpected REAL")),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn copy_in(
        &mut self,
        table: &str,
        columns: &[&str],
        values: &[Value],
    ) -> Result<(), StoreError> {
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            marks.join(", ")
        );
        for row in values.chunks(columns.len()) {
            self.execute(&sql, row)?;
        }
        Ok(())
    }
}

impl Backend for Sqlite {
    const NAME: &'static str = "sqlite";
    // The write transaction (BEGIN IMMEDIATE) already holds the only write lock.
    const FOR_UPDATE: &'static str = "";
    const BYTE_ORDER: &'static str = "";
    const BULK_COPY: bool = false;
    const KEYS_AS_TABLE: bool = false;
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/sqlite/0001_init.sql")),
        (2, include_str!("../migrations/sqlite/0002_accounts.sql")),
        (3, include_str!("../migrations/sqlite/0003_records.sql")),
        (4, include_str!("../migrations/sqlite/0004_tablets.sql")),
        (5, include_str!("../migrations/sqlite/0005_inquiries.sql")),
        (
            6,
            include_str!("../migrations/sqlite/0006_signing_keys.sql"),
        ),
        (
            7,
            include_str!("../migrations/sqlite/0007_certificates.sql"),
        ),
        (8, include_str!("../migrations/sqlite/0008_channels.sql")),
        (
            9,
            include_str!("../migrations/sqlite/0009_key_rotation.sql"),
        ),
        (
            10,
            include_str!("../migrations/sqlite/0010_audit_by_object.sql"),
        ),
        (
            11,
            include_str!("../migrations/sqlite/0011_shared_counts.sql"),
        ),
    ];

    fn pool(&self) -> crate::PoolStatus {
        let wanted = self.wanted.load(std::sync::atomic::Ordering::Relaxed);
        crate::PoolStatus {
            in_use: wanted.min(1),
            idle: usize::from(wanted == 0),
            waiting: wanted.saturating_sub(1),
        }
    }

    fn transaction<T>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _counted = crate::sql::Counted::enter(&self.wanted);
        // A panic inside an earlier transaction rolled it back when it unwound; the connection
        // itself is still sound.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&mut SqliteTx(&tx))?;
        tx.commit()?;
        Ok(out)
    }
}
