//! The audit log: every change recorded without personal values, in a hash chain that shows
//! any tampering, and searchable by person.

use openvrs_domain::audit::{Actor, Zone};
use openvrs_store::StoreError;

use super::fixtures::{dose, naha, people, residents, staff, uruma, with_towns};
use crate::Harness;

pub fn audit_records_every_change_without_personal_values(h: &Harness) {
    let ps = residents(h, 5, 8);
    let n = ps.iter().find_map(|p| p.my_number.clone()).unwrap();
    h.store.person_by_my_number(uruma(), &n, &staff()).unwrap();
    h.store
        .add_dose(
            uruma(),
            &ps[0].address_number,
            &dose(1, "2021-05-01"),
            &staff(),
        )
        .unwrap();
    let log = h.store.audit_log(uruma()).unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["municipality.add", "persons.put", "person.read", "dose.add"]
    );
    assert_eq!(log[1].actor, "staff-0001");
    assert_eq!(log[1].zone, Zone::Lgwan);
    let text = format!("{log:?}");
    assert!(!text.contains(&n.expose()));
    for p in &ps {
        assert!(!text.contains(p.name.as_str()));
        assert!(!text.contains(&p.birth_date.0.to_string()));
    }
    let head = h.store.verify_audit(uruma()).unwrap();
    assert_eq!(head.seq, 4);
    assert_eq!(head.link.len(), 64);
    // Naha's chain is its own.
    assert_eq!(h.store.verify_audit(naha()).unwrap().seq, 1);
}

/// Four entries in Uruma's chain: add, put, read, dose.
fn chain_of_four(h: &Harness) {
    let ps = residents(h, 2, 9);
    h.store
        .person(uruma(), &ps[0].address_number, &staff())
        .unwrap();
    h.store
        .add_dose(
            uruma(),
            &ps[0].address_number,
            &dose(1, "2021-05-01"),
            &staff(),
        )
        .unwrap();
    assert_eq!(h.store.verify_audit(uruma()).unwrap().seq, 4);
}

fn broken_at(h: &Harness) -> i64 {
    // A fresh store, so nothing cached can hide what is on disk.
    let store = h.reopen(&h.master).unwrap();
    match store.verify_audit(uruma()) {
        Err(StoreError::AuditBroken { seq, .. }) => seq,
        other => panic!("tampering not detected: {other:?}"),
    }
}

pub fn audit_detects_modification(h: &Harness) {
    chain_of_four(h);
    h.exec("UPDATE audit_log SET actor = 'someone-else' WHERE municipality_code = '472131' AND seq = 2");
    assert_eq!(broken_at(h), 2);
}

pub fn audit_detects_deletion(h: &Harness) {
    chain_of_four(h);
    h.exec("DELETE FROM audit_log WHERE municipality_code = '472131' AND seq = 3");
    assert_eq!(broken_at(h), 3);
}

pub fn audit_detects_insertion(h: &Harness) {
    chain_of_four(h);
    // Make room after entry 2 and insert a copy of entry 2 as entry 3.
    h.exec(
        "UPDATE audit_log SET seq = seq + 100 WHERE municipality_code = '472131' AND seq > 2;
         UPDATE audit_log SET seq = seq - 99 WHERE municipality_code = '472131' AND seq > 100;
         INSERT INTO audit_log (municipality_code, seq, at, actor, role, zone, action, object, outcome, link)
           SELECT municipality_code, 3, at, actor, role, zone, 'person.read', object, outcome, link
           FROM audit_log WHERE municipality_code = '472131' AND seq = 2;",
    );
    assert_eq!(broken_at(h), 3);
}

pub fn audit_detects_reordering(h: &Harness) {
    chain_of_four(h);
    h.exec(
        "UPDATE audit_log SET seq = 100 WHERE municipality_code = '472131' AND seq = 2;
         UPDATE audit_log SET seq = 2 WHERE municipality_code = '472131' AND seq = 3;
         UPDATE audit_log SET seq = 3 WHERE municipality_code = '472131' AND seq = 100;",
    );
    assert_eq!(broken_at(h), 2);
}

pub fn audit_detects_truncation(h: &Harness) {
    chain_of_four(h);
    h.exec("DELETE FROM audit_log WHERE municipality_code = '472131' AND seq = 4");
    assert_eq!(broken_at(h), 4);
}

/// A person's trail is theirs alone (not that of a person whose number starts the same), other
/// filters narrow it, and pages follow each other without overlap.
pub fn audit_search_finds_a_persons_trail(h: &Harness) {
    with_towns(h);
    let mut ps = people(uruma(), 2, 51);
    ps[0].address_number = openvrs_domain::ids::AddressNumber::parse("12").unwrap();
    ps[1].address_number = openvrs_domain::ids::AddressNumber::parse("123").unwrap();
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    for p in &ps {
        h.store
            .add_dose(uruma(), &p.address_number, &dose(1, "2021-06-01"), &staff())
            .unwrap();
    }
    h.store
        .person(uruma(), &ps[0].address_number, &Actor::console())
        .unwrap();
    let search = |filter: openvrs_store::AuditFilter, limit| {
        h.store.audit_search(uruma(), &filter, limit).unwrap()
    };
    let of = |a: &str| openvrs_store::AuditFilter {
        person: Some(openvrs_domain::ids::AddressNumber::parse(a).unwrap()),
        ..Default::default()
    };
    let trail: Vec<(String, String)> = search(of("12"), 50)
        .into_iter()
        .map(|e| (e.action, e.actor))
        .collect();
    assert_eq!(
        trail,
        [
            ("person.read".to_owned(), "console".to_owned()),
            ("dose.add".to_owned(), "staff-0001".to_owned())
        ],
        "newest first, and nothing of person 123"
    );
    assert_eq!(search(of("123"), 50).len(), 1);
    let by_console = openvrs_store::AuditFilter {
        actor: Some("console".into()),
        ..of("12")
    };
    assert_eq!(search(by_console, 50).len(), 1);
    let doses = openvrs_store::AuditFilter {
        action: Some("dose".into()),
        ..Default::default()
    };
    assert_eq!(search(doses, 50).len(), 2);
    let everything = search(Default::default(), 1000);
    let first = search(Default::default(), 3);
    let next = search(
        openvrs_store::AuditFilter {
            before: Some(first.last().unwrap().seq),
            ..Default::default()
        },
        1000,
    );
    assert_eq!([first, next].concat(), everything);
}
