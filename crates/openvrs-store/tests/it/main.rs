//! The store's conformance suite: every scenario runs on SQLite, and on PostgreSQL whenever
//! `OPENVRS_TEST_DATABASE_URL` is set (`OPENVRS_REQUIRE_POSTGRES=1` makes its absence a failure).

#![allow(clippy::unwrap_used)] // tests panic on purpose: that is how they fail

mod citus;
mod harness;
mod scenarios;

use harness::Harness;

/// One test per scenario and backend (`sqlite::NAME`, `postgres::NAME`), from the scenarios of
/// each area of the store.
macro_rules! conformance {
    ($($area:ident: [$($name:ident),* $(,)?]),* $(,)?) => {
        mod sqlite {
            $($(#[test] fn $name() { super::scenarios::$area::$name(&super::Harness::sqlite()); })*)*
        }
        mod postgres {
            $($(#[test] fn $name() {
                if let Some(h) = super::Harness::postgres() { super::scenarios::$area::$name(&h); }
            })*)*
        }
    };
}

conformance! {
    municipalities: [municipalities_register_once, doses_are_counted_for_open_data],
    persons: [
        persons_round_trip_by_every_key,
        put_is_idempotent_and_reports_changes,
        tenants_are_isolated,
        my_number_conflict_writes_nothing,
        voucher_conflict_writes_nothing,
        duplicate_person_in_one_batch_writes_nothing,
        import_streams_in_one_transaction,
    ],
    records: [
        flags_are_stored,
        doses_are_stored_without_cap,
        dose_rules_block_errors_and_report_warnings,
        doses_are_corrected_and_deleted_with_history,
        ledger_import_is_all_or_nothing_and_idempotent,
        ledger_export_pages_through_everyone,
        quality_report_lists_findings,
        individual_rights_disclosure_correction_suspension,
        flags_by_file_are_all_or_nothing,
    ],
    audit: [
        audit_records_every_change_without_personal_values,
        audit_detects_modification,
        audit_detects_deletion,
        audit_detects_insertion,
        audit_detects_reordering,
        audit_detects_truncation,
        audit_search_finds_a_persons_trail,
    ],
    keys: [
        crypto_shredding_makes_data_unreadable,
        sealed_fields_cannot_be_swapped_between_rows,
        wrong_master_key_reads_nothing,
        no_plaintext_personal_data_at_rest,
        signing_keys_rotate_and_stay_sealed,
        data_and_master_keys_rotate_under_another_process,
    ],
    schema: [
        newer_schema_is_refused,
        upgrade_from_the_previous_schema_keeps_the_data,
    ],
    accounts: [accounts_sessions_and_security_events],
    tablets: [
        tablets_record_once_and_never_overwrite,
        misread_ocr_lines_never_reach_another_resident,
        tablet_batches_answer_each_record,
        staff_resolve_tablet_conflicts,
    ],
    inquiries: [
        inquiries_return_only_that_persons_doses,
        wrong_municipality_codes_never_match,
        bulk_inquiries_answer_every_row,
        inquiry_counts_see_volume_and_fishing,
    ],
    certificates: [certificates_are_recorded_listed_and_revoked_once],
}

#[test]
fn sqlite_missing_file_is_an_error_unless_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sqlite");
    let err = openvrs_store::open(
        &openvrs_store::Location::Sqlite {
            path: path.clone(),
            create: false,
        },
        openvrs_crypto::MasterKey::generate(),
    )
    .err()
    .expect("must fail");
    assert!(
        matches!(err, openvrs_store::StoreError::NoDatabase(_)),
        "{err}"
    );
    assert!(!path.exists(), "no empty database was created");
}

#[test]
fn location_from_parts() {
    use openvrs_store::Location;
    let p = std::path::PathBuf::from("x.sqlite");
    assert!(matches!(
        Location::from_parts(None, p.clone(), false),
        Ok(Location::Sqlite { .. })
    ));
    assert!(matches!(
        Location::from_parts(Some(""), p.clone(), false),
        Ok(Location::Sqlite { .. })
    ));
    assert!(matches!(
        Location::from_parts(Some("postgresql://h/db"), p.clone(), false),
        Ok(Location::Postgres { .. })
    ));
    assert!(Location::from_parts(Some("mysql://h/db"), p, false).is_err());
}

/// PostgreSQL over TLS, as a national deployment reaches its database over a network:
/// `sslmode=verify-full` with the CA that signed the server's certificate (scripts/test gives
/// the local server one and sets `OPENVRS_TEST_DATABASE_TLS_CA`). The server itself says the
/// store's connection is encrypted; a CA that did not sign the server's certificate is refused;
/// `require` encrypts without one.
#[test]
fn postgres_over_tls_checks_who_answers() {
    let (Ok(base), Ok(ca)) = (
        std::env::var("OPENVRS_TEST_DATABASE_URL"),
        std::env::var("OPENVRS_TEST_DATABASE_TLS_CA"),
    ) else {
        assert!(
            std::env::var("OPENVRS_REQUIRE_POSTGRES").is_err(),
            "OPENVRS_REQUIRE_POSTGRES is set but OPENVRS_TEST_DATABASE_TLS_CA is not"
        );
        harness::skipped_loudly("PostgreSQL over TLS (and OPENVRS_TEST_DATABASE_TLS_CA)");
        return;
    };
    use openvrs_store::Location;
    let sep = if base.contains('?') { '&' } else { '?' };
    let open = |query: String| {
        openvrs_store::open(
            &Location::Postgres {
                url: format!("{base}{sep}{query}"),
                max_connections: 2,
            },
            openvrs_crypto::MasterKey::generate(),
        )
    };
    let store = open(format!("sslmode=verify-full&sslrootcert={ca}")).unwrap();
    store.municipalities().unwrap();
    let mut plain = ::postgres::Client::connect(&base, ::postgres::NoTls).unwrap();
    let encrypted: i64 = plain
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'openvrs' AND s.ssl",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the server sees an encrypted connection");

    // Another CA (a stranger's) does not vouch for this server: refused, and the error says
    // nothing of the URL's password.
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger.pem");
    let pki = openvrs_crypto::pki::dev_pki(&["127.0.0.1"], 1_790_000_000).unwrap();
    std::fs::write(&stranger, pki.ca_cert_pem).unwrap();
    let refused = open(format!(
        "sslmode=verify-full&sslrootcert={}",
        stranger.display()
    ));
    assert!(refused.is_err(), "a stranger's CA must not be trusted");
    // `require` and `verify-ca` connect too.
    open("sslmode=require".into()).unwrap();
    open(format!("sslmode=verify-ca&sslrootcert={ca}")).unwrap();
}

/// The SQLite and PostgreSQL migrations describe one schema: the same tables, columns, unique
/// keys (primary first) and foreign keys, as each database reports them after migrating.
#[test]
fn sqlite_and_postgres_migrations_make_the_same_schema() {
    let Some(pg) = Harness::postgres() else {
        return;
    };
    let sqlite = Harness::sqlite().schema();
    let postgres = pg.schema();
    assert!(sqlite.len() > 20, "{} tables", sqlite.len());
    let found = drift(&sqlite, &postgres);
    assert!(
        found.is_empty(),
        "the migrations drift apart:\n{}",
        found.join("\n")
    );
    // It reads keys and foreign keys, not only columns.
    let doses = &sqlite["doses"];
    assert!(
        doses
            .keys
            .iter()
            .any(|k| k.starts_with("pk(municipality_code,"))
            && doses.foreign_keys.iter().any(|f| f.ends_with("-> persons")),
        "{doses:?}"
    );
    // A planted difference is found: a column only one side has.
    let mut planted = postgres;
    planted
        .get_mut("persons")
        .unwrap()
        .columns
        .insert("nickname".into());
    assert_eq!(
        drift(&sqlite, &planted),
        ["persons: columns differ: [] vs [\"nickname\"]"]
    );
}

fn drift(
    a: &std::collections::BTreeMap<String, harness::Table>,
    b: &std::collections::BTreeMap<String, harness::Table>,
) -> Vec<String> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) => {
                let only = |p: &std::collections::BTreeSet<String>,
                            q: &std::collections::BTreeSet<String>| {
                    p.difference(q).cloned().collect::<Vec<_>>()
                };
                for (what, p, q) in [
                    ("columns", &x.columns, &y.columns),
                    ("keys", &x.keys, &y.keys),
                    ("foreign keys", &x.foreign_keys, &y.foreign_keys),
                ] {
                    if p != q {
                        out.push(format!(
                            "{name}: {what} differ: {:?} vs {:?}",
                            only(p, q),
                            only(q, p)
                        ));
                    }
                }
            }
            (x, _) => out.push(format!(
                "{name}: only in {}",
                if x.is_some() { "SQLite" } else { "PostgreSQL" }
            )),
        }
    }
    out
}
