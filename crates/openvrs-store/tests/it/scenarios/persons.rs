//! Persons: put and found by every key, within their own municipality only; a conflicting
//! batch writes nothing; a targets file streams in one transaction.

use openvrs_domain::{
    date::parse_date,
    ids::{AddressNumber, MyNumber},
    person::Person,
};
use openvrs_store::StoreError;
use openvrs_synth::Generator;

use super::fixtures::{code, naha, people, residents, staff, uruma, with_towns};
use crate::Harness;

pub fn persons_round_trip_by_every_key(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 25, 1);
    let s = h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    assert_eq!(s.inserted, 25);
    assert_eq!(h.store.count_persons(uruma()).unwrap(), 25);
    assert_eq!(h.store.count_persons(naha()).unwrap(), 0);
    for p in &ps {
        let by_address = h
            .store
            .person(uruma(), &p.address_number, &staff())
            .unwrap();
        assert_eq!(by_address.as_ref(), Some(p));
        for v in &p.vouchers {
            let by_voucher = h
                .store
                .person_by_voucher(uruma(), &v.number, &staff())
                .unwrap();
            assert_eq!(by_voucher.as_ref(), Some(p));
        }
        if let Some(n) = &p.my_number {
            let by_number = h.store.person_by_my_number(uruma(), n, &staff()).unwrap();
            assert_eq!(by_number.as_ref(), Some(p));
        }
    }
    let nobody = AddressNumber::parse("999").unwrap();
    assert_eq!(h.store.person(uruma(), &nobody, &staff()).unwrap(), None);
}

pub fn put_is_idempotent_and_reports_changes(h: &Harness) {
    let mut ps = residents(h, 10, 2);
    let again = h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 10));
    assert_eq!(again.vouchers_written, 0);
    ps[3].flags.deceased_on = Some(parse_date("2022-01-05").unwrap());
    let extra = Generator::new(uruma(), 99).person().vouchers.remove(0);
    ps[4].vouchers.push(extra);
    let changed = h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    assert_eq!(
        (changed.inserted, changed.updated, changed.unchanged),
        (0, 1, 9)
    );
    assert_eq!(changed.vouchers_written, 1, "the new voucher");
    let got = h
        .store
        .person(uruma(), &ps[4].address_number, &staff())
        .unwrap()
        .unwrap();
    assert_eq!(got.vouchers.len(), ps[4].vouchers.len());
    let got = h
        .store
        .person(uruma(), &ps[3].address_number, &staff())
        .unwrap()
        .unwrap();
    assert_eq!(got.flags.deceased_on, ps[3].flags.deceased_on);
}

pub fn tenants_are_isolated(h: &Harness) {
    let ps = residents(h, 30, 3);
    for p in &ps {
        assert_eq!(
            h.store.person(naha(), &p.address_number, &staff()).unwrap(),
            None
        );
        assert_eq!(
            h.store
                .person_by_voucher(naha(), &p.vouchers[0].number, &staff())
                .unwrap(),
            None
        );
        if let Some(n) = &p.my_number {
            assert_eq!(
                h.store.person_by_my_number(naha(), n, &staff()).unwrap(),
                None
            );
        }
        assert!(h.store.doses(naha(), &p.address_number).unwrap().is_empty());
    }
    // A My Number that is right in one town finds nobody when asked of the other: the keyed
    // indexes differ, so even the same person put into both towns is found only by each's key.
    let same = ps.iter().find(|p| p.my_number.is_some()).unwrap().clone();
    h.store
        .put_persons(naha(), std::slice::from_ref(&same), &staff())
        .unwrap();
    let n = same.my_number.as_ref().unwrap();
    assert_eq!(
        h.store.person_by_my_number(naha(), n, &staff()).unwrap(),
        Some(same.clone())
    );
    assert_eq!(h.store.count_persons(naha()).unwrap(), 1);
    // An unregistered but valid code answers as unknown, never with another town's data.
    let other = code("131016");
    assert!(matches!(
        h.store.person_by_my_number(other, n, &staff()),
        Err(StoreError::UnknownMunicipality(_))
    ));
}

fn assert_nothing_written(h: &Harness, before_audit: usize) {
    assert_eq!(h.store.count_persons(uruma()).unwrap(), 0);
    assert_eq!(h.store.audit_log(uruma()).unwrap().len(), before_audit);
    h.store.verify_audit(uruma()).unwrap();
}

pub fn my_number_conflict_writes_nothing(h: &Harness) {
    with_towns(h);
    let mut ps = people(uruma(), 20, 4);
    let n = MyNumber::parse("123456789018").unwrap();
    ps[0].my_number = Some(n.clone());
    ps[19].my_number = Some(n);
    let before = h.store.audit_log(uruma()).unwrap().len();
    let err = h.store.put_persons(uruma(), &ps, &staff()).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(!err.to_string().contains("123456789018"));
    assert_nothing_written(h, before);
}

pub fn voucher_conflict_writes_nothing(h: &Harness) {
    with_towns(h);
    let mut ps = people(uruma(), 20, 5);
    let v = ps[0].vouchers[0].clone();
    ps[18].vouchers.push(v);
    let before = h.store.audit_log(uruma()).unwrap().len();
    let err = h.store.put_persons(uruma(), &ps, &staff()).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_nothing_written(h, before);
}

pub fn duplicate_person_in_one_batch_writes_nothing(h: &Harness) {
    with_towns(h);
    let mut ps = people(uruma(), 5, 14);
    ps.push(ps[2].clone());
    let before = h.store.audit_log(uruma()).unwrap().len();
    let err = h.store.put_persons(uruma(), &ps, &staff()).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_nothing_written(h, before);
}

pub fn import_streams_in_one_transaction(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 300, 15);
    // One row per voucher, as a targets file has it: a person comes once per voucher.
    let rows: Vec<Person> = ps
        .iter()
        .flat_map(|p| {
            p.vouchers.iter().map(move |v| Person {
                vouchers: vec![v.clone()],
                ..p.clone()
            })
        })
        .collect();
    let s = h
        .store
        .import_persons(uruma(), &mut rows.iter().cloned().map(Ok), &staff())
        .unwrap();
    assert_eq!(s.inserted, 300);
    assert_eq!(s.vouchers_written as usize, rows.len());
    for p in ps.iter().step_by(37) {
        assert_eq!(
            h.store
                .person(uruma(), &p.address_number, &staff())
                .unwrap()
                .as_ref(),
            Some(p)
        );
    }
    // The same rows again: nothing changes.
    let again = h
        .store
        .import_persons(uruma(), &mut rows.iter().cloned().map(Ok), &staff())
        .unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.vouchers_written),
        (0, 0, 0)
    );
    // A failure late in the stream rolls everything back.
    let before = h.store.audit_log(uruma()).unwrap().len();
    let fresh = people(uruma(), 200, 16);
    let mut failing = fresh
        .iter()
        .cloned()
        .map(Ok)
        .chain(std::iter::once(Err(StoreError::Corrupt("reader failed"))));
    assert!(
        h.store
            .import_persons(uruma(), &mut failing, &staff())
            .is_err()
    );
    assert_eq!(h.store.count_persons(uruma()).unwrap(), 300);
    assert_eq!(h.store.audit_log(uruma()).unwrap().len(), before);
}
