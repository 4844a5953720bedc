//! Citus: when the PostgreSQL database has the `citus` extension, the migrations distribute the
//! schema themselves. Every municipality table is hash-distributed by `municipality_code` in one
//! co-location group (a municipality's rows of every table on one worker, so each statement of
//! one municipality routes to one shard and joins stay local); the national tables are
//! reference tables (a copy on every node); `sessions` and `security_events` stay on the
//! coordinator. A plain PostgreSQL database is left as it is.
//!
//! Citus refuses a foreign key between a local and a distributed table, so the tables a
//! migration created are distributed at the end of that migration, in its transaction: their
//! foreign keys are taken off, the tables distributed, and the same keys put back.

use crate::{StoreError, sql::Tx};

/// Taken by a migration's transaction on PostgreSQL (and Citus): one schema change at a time
/// in a database. Take it around any other DDL run beside the store (tests dropping schemas).
pub const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7955925058806395763)";

/// Hash-distributed by `municipality_code`, co-located with the first.
pub(crate) const DISTRIBUTED: &[&str] = &[
    "audit_heads",
    "tenant_keys",
    "persons",
    "vouchers",
    "doses",
    "dose_history",
    "person_changes",
    "tablet_requests",
    "dose_conflicts",
    "inquiries",
    "inquiry_doses",
    "provisions",
    "dose_provenance",
    "inquiry_jobs",
    "certificates",
    "audit_log",
];

/// National tables, small and read everywhere: a copy on every node.
pub(crate) const REFERENCE: &[&str] = &[
    "municipalities",
    "products",
    "signing_keys",
    "revocations",
    "accounts",
];

/// Whether the database is a Citus coordinator.
pub(crate) fn present(tx: &mut dyn Tx) -> Result<bool, StoreError> {
    Ok(tx
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])?
        .is_some())
}

/// Before a migration on Citus: the migration's statements and the distribution run over one
/// connection per node, which Citus needs when distributed tables reference reference tables
/// in the same transaction.
pub(crate) fn prepare(tx: &mut dyn Tx) -> Result<(), StoreError> {
    tx.batch("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")?;
    // A schema change spans every shard by nature; the tests make any other statement that
    // does an error (`citus.multi_task_query_log_level`).
    tx.batch("SET LOCAL citus.multi_task_query_log_level TO 'off'")
}

/// A migration's statements, one by one: Citus sends a DDL statement to the workers as the text
/// it was given, and a worker refuses several statements in one. Splits at `;` outside quotes
/// and `--` comments (the migrations have no dollar-quoted bodies).
pub(crate) fn statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote, mut comment) = (0, false, false);
    let bytes = sql.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' if comment => comment = false,
            _ if comment => {}
            b'\'' => quote = !quote,
            b'-' if !quote && bytes.get(i + 1) == Some(&b'-') => comment = true,
            b';' if !quote => {
                out.push(&sql[start..=i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&sql[start..]);
    out.retain(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    });
    out
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Distributes the tables of [`DISTRIBUTED`] and [`REFERENCE`] that exist and are not yet
/// distributed (in the schema the connection's `search_path` names).
pub(crate) fn distribute(tx: &mut dyn Tx) -> Result<(), StoreError> {
    let mut pending = Vec::new();
    for &table in REFERENCE.iter().chain(DISTRIBUTED) {
        // A table with a foreign key to a reference table was made a Citus local table by
        // Citus itself: it is still to be distributed.
        let state = tx.query_opt(
            "SELECT COALESCE((SELECT CASE WHEN partmethod = 'h' THEN 'distributed' \
                WHEN repmodel = 't' THEN 'reference' ELSE 'local' END \
                FROM pg_catalog.pg_dist_partition WHERE logicalrelid = c.oid), 'none') \
             FROM pg_class c WHERE c.oid = to_regclass($1)",
            &[table.into()],
        )?;
        if let Some(row) = state
            && matches!(row.text(0)?, "none" | "local")
        {
            pending.push(table);
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    // The foreign keys from or to a table about to be distributed, as the catalogue writes them.
    let names: Vec<String> = pending.iter().map(|t| format!("'{t}'")).collect();
    let keys = tx.query(
        &format!(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) \
             FROM pg_constraint c \
             WHERE c.contype = 'f' AND (c.conrelid = ANY(ARRAY[{list}]::regclass[]) \
                OR c.confrelid = ANY(ARRAY[{list}]::regclass[])) \
             ORDER BY c.conrelid::regclass::text, c.conname",
            list = names.join(",")
        ),
        &[],
    )?;
    let keys = keys
        .iter()
        .map(|r| {
            Ok((
                r.text(0)?.to_owned(),
                r.text(1)?.to_owned(),
                r.text(2)?.to_owned(),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    for (table, name, _) in &keys {
        tx.batch(&format!(
            "ALTER TABLE {table} DROP CONSTRAINT {}",
            quoted(name)
        ))?;
    }
    let anchor = DISTRIBUTED[0];
    for &table in &pending {
        if REFERENCE.contains(&table) {
            tx.batch(&format!("SELECT create_reference_table('{table}')"))?;
        } else if table == anchor {
            tx.batch(&format!(
                "SELECT create_distributed_table('{table}', 'municipality_code')"
            ))?;
        } else {
            tx.batch(&format!(
                "SELECT create_distributed_table('{table}', 'municipality_code', \
                 colocate_with => '{anchor}')"
            ))?;
        }
        // Rows a table held before (the seeded product catalogue) were copied to the shards.
        tx.batch(&format!(
            "SELECT truncate_local_data_after_distributing_table('{table}')"
        ))?;
    }
    for (table, name, definition) in &keys {
        tx.batch(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} {definition}",
            quoted(name)
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        let sql = "-- a; comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n\n-- end;\nALTER TABLE a ADD y INT;\n-- trailing\n";
        let got: Vec<String> = statements(sql)
            .iter()
            .map(|s| s.trim().to_owned())
            .collect();
        assert_eq!(
            got,
            [
                "-- a; comment\nCREATE TABLE a (x TEXT DEFAULT ';');",
                "-- end;\nALTER TABLE a ADD y INT;"
            ]
        );
    }

    #[test]
    fn every_migration_splits_into_statements_that_end_with_a_semicolon() {
        for (_, sql) in <crate::postgres::Postgres as crate::sql::Backend>::MIGRATIONS {
            for s in statements(sql) {
                assert!(s.trim_end().ends_with(';'), "{s}");
            }
        }
    }
}
