//! The little SQL both backends speak: positional `$n` parameters, a few value types, and
//! transactions. The store's logic is written once against these traits.

use time::Date;

use crate::StoreError;

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// DATE in PostgreSQL, ISO 8601 text in SQLite.
    Date(Date),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl From<Date> for Value {
    fn from(v: Date) -> Self {
        Value::Date(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row.
#[derive(Debug)]
pub(crate) struct Row(pub Vec<Value>);

const CORRUPT: StoreError = StoreError::Corrupt("unexpected column type");

impl Row {
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or(CORRUPT)
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.0.get(i) {
            Some(Value::Int(v)) => Ok(Some(*v)),
            Some(Value::Null) => Ok(None),
            _ => Err(CORRUPT),
        }
    }
    pub fn text(&self, i: usize) -> Result<&str, StoreError> {
        self.opt_text(i)?.ok_or(CORRUPT)
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(Some(v)),
            Some(Value::Null) => Ok(None),
            _ => Err(CORRUPT),
        }
    }
    pub fn bytes(&self, i: usize) -> Result<&[u8], StoreError> {
        self.opt_bytes(i)?.ok_or(CORRUPT)
    }
    pub fn opt_bytes(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        match self.0.get(i) {
            Some(Value::Bytes(v)) => Ok(Some(v)),
            Some(Value::Null) => Ok(None),
            _ => Err(CORRUPT),
        }
    }
    pub fn opt_date(&self, i: usize) -> Result<Option<Date>, StoreError> {
        match self.0.get(i) {
            Some(Value::Date(d)) => Ok(Some(*d)),
            Some(Value::Text(s)) => openvrs_domain::date::parse_date(s)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("bad stored date")),
            Some(Value::Null) => Ok(None),
            _ => Err(CORRUPT),
        }
    }
    pub fn date(&self, i: usize) -> Result<Date, StoreError> {
        self.opt_date(i)?.ok_or(CORRUPT)
    }
}

/// A transaction (or, for reads, a connection). SQL uses `$1`, `$2`, ... for parameters.
pub(crate) trait Tx {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Appends rows (`values`, `columns.len()` per row) to `table` in bulk: `COPY ... FROM
    /// STDIN (FORMAT binary)` on PostgreSQL.
    fn copy_in(
        &mut self,
        table: &str,
        columns: &[&str],
        values: &[Value],
    ) -> Result<(), StoreError>;

    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// One more in a count for as long as it lives (counted back when a transaction fails or
/// panics too): connections in use, for [`crate::PoolStatus`].
pub(crate) struct Counted<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Counted<'a> {
    pub(crate) fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A database behind the store.
pub(crate) trait Backend: Send + Sync + 'static {
    const NAME: &'static str;
    /// Row locking for `SELECT`: ` FOR UPDATE` where the database has it.
    const FOR_UPDATE: &'static str;
    /// Text compared byte by byte (` COLLATE "C"` on PostgreSQL, SQLite's default).
    const BYTE_ORDER: &'static str;
    /// Whether bulk loads go through a staging table filled by [`Tx::copy_in`] (PostgreSQL),
    /// rather than multi-row upserts (SQLite, where statements are cheap).
    const BULK_COPY: bool;
    /// Whether a batch's keys are matched as a joined table ([`match_keys`]; PostgreSQL, whose
    /// planner can read an `IN` list as a filter when its statistics are stale) or as an `IN`
    /// list (SQLite, whose planner scans the table for a join with a `VALUES` table).
    const KEYS_AS_TABLE: bool;
    /// The embedded migrations, in order; `(version, sql)`.
    const MIGRATIONS: &'static [(i64, &'static str)];
    /// Its connections now.
    fn pool(&self) -> crate::PoolStatus;
    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back otherwise.
    fn transaction<T>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
}

/// Parameters per statement at most: below both PostgreSQL's 65,535 and SQLite's 32,766.
const MAX_PARAMETERS: usize = 30_000;

/// `INSERT INTO table (columns) VALUES (...), (...)`: placeholders numbered row by row.
pub(crate) fn multi_insert(table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * columns.len() + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// Inserts `values` (whole rows of `columns`, one after another) in as few multi-row statements
/// as the databases' parameter limits allow.
pub(crate) fn insert_rows(
    tx: &mut dyn Tx,
    table: &str,
    columns: &[&str],
    values: Vec<Value>,
) -> Result<(), StoreError> {
    let per = (MAX_PARAMETERS / columns.len()).max(1) * columns.len();
    for chunk in values.chunks(per) {
        tx.execute(
            &multi_insert(table, columns, chunk.len() / columns.len()),
            chunk,
        )?;
    }
    Ok(())
}

/// How a statement finds the rows of a batch of keys, each key the values of `columns` (of the
/// table aliased `alias`) in the parameters from `$from` on, one key after another: `(with,
/// join, condition)` to splice as `{with}SELECT ... FROM table alias{join} WHERE ...{condition}`.
/// As a joined table (`WITH k AS (VALUES ...)`: looked up key by key on the index whatever the
/// statistics say) or as an `IN` list.
pub(crate) fn match_keys(
    as_table: bool,
    alias: &str,
    columns: &[&str],
    from: usize,
    rows: usize,
) -> (String, String, String) {
    let width = columns.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let row: Vec<String> = (0..width)
                .map(|c| format!("${}", from + r * width + c))
                .collect();
            row.join(", ")
        })
        .collect();
    if as_table && rows > 1 {
        let on: Vec<String> = columns
            .iter()
            .map(|c| format!("{alias}.{c} = k.{c}"))
            .collect();
        (
            format!(
                "WITH k({}) AS (VALUES ({})) ",
                columns.join(", "),
                values.join("), (")
            ),
            format!(" JOIN k ON {}", on.join(" AND ")),
            String::new(),
        )
    } else if width == 1 {
        (
            String::new(),
            String::new(),
            format!(" AND {alias}.{} IN ({})", columns[0], values.join(", ")),
        )
    } else {
        let lhs: Vec<String> = columns.iter().map(|c| format!("{alias}.{c}")).collect();
        (
            String::new(),
            String::new(),
            format!(
                " AND ({}) IN (VALUES ({}))",
                lhs.join(", "),
                values.join("), (")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::match_keys;

    #[test]
    fn keys_are_matched_as_a_table_or_a_list() {
        assert_eq!(
            match_keys(true, "t", &["a", "b"], 2, 2),
            (
                "WITH k(a, b) AS (VALUES ($2, $3), ($4, $5)) ".to_owned(),
                " JOIN k ON t.a = k.a AND t.b = k.b".to_owned(),
                String::new()
            )
        );
        assert_eq!(
            match_keys(false, "t", &["a", "b"], 2, 2).2,
            " AND (t.a, t.b) IN (VALUES ($2, $3), ($4, $5))"
        );
        assert_eq!(
            match_keys(false, "d", &["a"], 2, 3).2,
            " AND d.a IN ($2, $3, $4)"
        );
        // One key is an equality either way.
        assert_eq!(match_keys(true, "d", &["a"], 2, 1).2, " AND d.a IN ($2)");
    }
}
