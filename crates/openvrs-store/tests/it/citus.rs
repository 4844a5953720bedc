//! On a Citus cluster (`scripts/test` starts one and sets `OPENVRS_TEST_CITUS=1`): the schema
//! the migrations distributed, and where a municipality's rows are. That no store statement
//! spans municipalities is shown by the whole conformance suite, which runs on the cluster with
//! `citus.multi_task_query_log_level = error` (any statement that would run on more than one
//! shard fails).

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    Harness,
    harness::Raw,
    scenarios::fixtures::{dose, naha, people, residents, staff, uruma},
};

/// The tables that hold national data though they name a municipality.
const NATIONAL: &[&str] = &["accounts", "municipalities", "security_events"];

fn cluster() -> Option<(Harness, String, String)> {
    let citus = std::env::var_os("OPENVRS_TEST_CITUS").is_some();
    let h = Harness::postgres()?;
    let Raw::Postgres { base_url, schema } = &h.raw else {
        unreachable!("a PostgreSQL harness")
    };
    let (base_url, schema) = (base_url.clone(), schema.clone());
    let mut c = postgres::Client::connect(&base_url, postgres::NoTls).unwrap();
    let has = c
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .unwrap()
        .is_some();
    assert!(
        has || !citus,
        "OPENVRS_TEST_CITUS is set but the database has no citus extension"
    );
    if !has {
        crate::harness::skipped_loudly("the Citus layout (OPENVRS_TEST_CITUS, a Citus URL)");
        return None;
    }
    Some((h, base_url, schema))
}

#[test]
fn citus_distributes_by_municipality_and_keeps_each_on_one_worker() {
    let Some((h, base_url, schema)) = cluster() else {
        return;
    };
    let ps = residents(&h, 40, 51);
    let theirs = people(naha(), 25, 52);
    h.store.put_persons(naha(), &theirs, &staff()).unwrap();
    for p in ps.iter().take(10) {
        h.store
            .add_dose(uruma(), &p.address_number, &dose(1, "2021-06-01"), &staff())
            .unwrap();
    }
    let mut c = postgres::Client::connect(&base_url, postgres::NoTls).unwrap();

    // What the migrations made: every table naming a municipality distributed by it, all in one
    // co-location group; the national tables reference tables; sessions and security events on
    // the coordinator.
    let kinds: BTreeMap<String, (String, Option<String>, i32)> = c
        .query(
            "SELECT table_name::regclass::text, citus_table_type, distribution_column, \
             colocation_id::int4 FROM citus_tables WHERE table_name::text LIKE $1 || '.%'",
            &[&schema],
        )
        .unwrap()
        .into_iter()
        .map(|r| {
            let name: String = r.get(0);
            let bare = name.rsplit('.').next().unwrap().to_owned();
            (bare, (r.get(1), r.get(2), r.get(3)))
        })
        .collect();
    let with_code: BTreeSet<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND column_name = 'municipality_code'",
            &[&schema],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut groups = BTreeSet::new();
    for table in with_code.iter().filter(|t| !NATIONAL.contains(&t.as_str())) {
        let (kind, column, group) = kinds
            .get(table)
            .unwrap_or_else(|| panic!("{table} is not distributed"));
        assert_eq!(
            (kind.as_str(), column.as_deref()),
            ("distributed", Some("municipality_code")),
            "{table}"
        );
        groups.insert(*group);
    }
    assert_eq!(groups.len(), 1, "one co-location group: {kinds:?}");
    for table in [
        "municipalities",
        "products",
        "signing_keys",
        "revocations",
        "accounts",
    ] {
        assert_eq!(kinds[table].0, "reference", "{table}");
    }
    for table in ["sessions", "security_events"] {
        assert!(
            kinds.get(table).is_none_or(|k| k.0 == "local"),
            "{table} stays on the coordinator: {kinds:?}"
        );
    }

    // Each municipality's shards of every table are on one worker, and its rows are there.
    for (m, count) in [(uruma(), 40i64), (naha(), 25)] {
        let mut nodes = BTreeSet::new();
        let mut persons_shard = None;
        for table in with_code.iter().filter(|t| !NATIONAL.contains(&t.as_str())) {
            let row = c
                .query_one(
                    "SELECT s.shardid, p.nodeport FROM pg_dist_shard s \
                     JOIN pg_dist_shard_placement p USING (shardid) \
                     WHERE s.shardid = get_shard_id_for_distribution_column($1::text::regclass, $2::text)",
                    &[&format!("{schema}.{table}"), &m.to_string()],
                )
                .unwrap();
            let (shard, port): (i64, i32) = (row.get(0), row.get(1));
            nodes.insert(port);
            if table == "persons" {
                persons_shard = Some((shard, port));
            }
        }
        assert_eq!(nodes.len(), 1, "{m}: every table's rows on one worker");
        let (shard, port) = persons_shard.unwrap();
        // The coordinator's URL with the worker's port.
        let (head, rest) = base_url.split_once('@').unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        let worker_url = format!("{head}@{host}:{port}/{path}");
        let mut w = postgres::Client::connect(&worker_url, postgres::NoTls).unwrap();
        let on_worker: i64 = w
            .query_one(
                &format!(
                    "SELECT count(*) FROM {schema}.persons_{shard} WHERE municipality_code = $1"
                ),
                &[&m.to_string()],
            )
            .unwrap()
            .get(0);
        assert_eq!(on_worker, count, "{m}'s residents are on worker {port}");
    }
    // The audit chains verify through the coordinator.
    for m in [uruma(), naha()] {
        h.store.verify_audit(m).unwrap();
    }
}
