//! The schema: a newer one is refused, the previous release's is upgraded with its data.

use openvrs_domain::audit::Actor;
use openvrs_store::StoreError;

use super::fixtures::{dose, residents, staff, uruma};
use crate::Harness;

pub fn newer_schema_is_refused(h: &Harness) {
    // Reopening applies nothing new.
    h.reopen(&h.master).unwrap();
    h.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)");
    let err = h.reopen(&h.master).err().expect("must refuse");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 9999, .. }),
        "{err}"
    );
}

/// A database as the previous release left it (its migrations stop at 8: persons without
/// `key_version`, no index of the audit log by object), with data in it, opened by this
/// program: migrations 9 to 11 are applied, everything written before reads back, and what
/// they are for (data key rotation, a person's audit trail) works on it. The previous release's
/// state is made by writing with this program and then undoing migrations 9 to 11 exactly
/// (they only add that column, that index and the shared counters' table).
pub fn upgrade_from_the_previous_schema_keeps_the_data(h: &Harness) {
    let ps = residents(h, 30, 41);
    h.store
        .add_dose(
            uruma(),
            &ps[0].address_number,
            &dose(1, "2021-06-01"),
            &staff(),
        )
        .unwrap();
    h.exec(
        "DROP TABLE shared_counts; DROP INDEX audit_log_object; \
         ALTER TABLE persons DROP COLUMN key_version; \
         DELETE FROM schema_migrations WHERE version >= 9;",
    );
    let head = h.store.verify_audit(uruma()).unwrap();
    assert!(
        h.store.stats(uruma()).is_err(),
        "it really is the previous schema"
    );

    let upgraded = h.reopen(&h.master).unwrap();
    assert_eq!(upgraded.verify_audit(uruma()).unwrap(), head);
    assert_eq!(upgraded.count_persons(uruma()).unwrap(), 30);
    for p in &ps {
        let back = upgraded
            .person(uruma(), &p.address_number, &staff())
            .unwrap()
            .unwrap();
        assert_eq!(back, *p);
        if let Some(n) = &p.my_number {
            let found = upgraded.person_by_my_number(uruma(), n, &staff()).unwrap();
            assert_eq!(found.unwrap().address_number, p.address_number);
        }
    }
    let doses = upgraded.doses(uruma(), &ps[0].address_number).unwrap();
    assert_eq!(doses.len(), 1);
    // Migration 9: every existing row is known to be sealed with data key version 1.
    let versions = |s: &dyn openvrs_store::Store| s.stats(uruma()).unwrap().persons_by_key_version;
    assert_eq!(versions(&*upgraded), [(1, 30)]);
    upgraded
        .begin_data_key_rotation(uruma(), &Actor::console())
        .unwrap();
    assert!(
        upgraded
            .reseal_batch(uruma(), "", 100)
            .unwrap()
            .next
            .is_none()
    );
    assert!(
        upgraded
            .finish_data_key_rotation(uruma(), &Actor::console())
            .unwrap()
    );
    assert_eq!(versions(&*upgraded), [(2, 30)]);
    let trail = upgraded
        .audit_search(
            uruma(),
            &openvrs_store::AuditFilter {
                person: Some(ps[0].address_number.clone()),
                ..Default::default()
            },
            100,
        )
        .unwrap();
    assert!(trail.iter().any(|e| e.action == "dose.add"), "{trail:?}");
    assert_eq!(
        upgraded
            .person(uruma(), &ps[0].address_number, &staff())
            .unwrap()
            .as_ref(),
        Some(&ps[0])
    );
    upgraded.verify_audit(uruma()).unwrap();
}
