//! Scenarios run on every backend.

use std::collections::HashSet;

use openvrs_crypto::MasterKey;
use openvrs_domain::{
    audit::{Actor, Role, Zone},
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::{AddressNumber, MunicipalityCode, MyNumber},
    person::{Flags, MovedOut, Person},
};
use openvrs_store::StoreError;
use openvrs_synth::Generator;

use crate::Harness;

fn code(s: &str) -> MunicipalityCode {
    MunicipalityCode::parse(s).unwrap()
}
fn uruma() -> MunicipalityCode {
    code("472131")
}
fn naha() -> MunicipalityCode {
    code("472018")
}
fn staff() -> Actor {
    Actor {
        user: "staff-0001".into(),
        role: Role::MunicipalStaff,
        zone: Zone::Lgwan,
    }
}

fn with_towns(h: &Harness) {
    h.store
        .add_municipality(uruma(), "うるま市", &Actor::console())
        .unwrap();
    h.store
        .add_municipality(naha(), "那覇市", &Actor::console())
        .unwrap();
}

fn people(m: MunicipalityCode, n: usize, seed: u64) -> Vec<Person> {
    Generator::new(m, seed).take(n).collect()
}

fn dose(n: u32, date: &str) -> Dose {
    Dose {
        number: DoseNumber::new(n).unwrap(),
        status: DoseStatus::Given,
        date: parse_date(date).unwrap(),
        product: Short::parse("comirnaty").unwrap(),
        lot: Short::parse("FF1234").unwrap(),
        venue: Short::parse("うるま市民体育館").unwrap(),
        doctor: Short::parse("医師 一郎").unwrap(),
        source: DoseSource::Staff,
        voucher: None,
        given_in: None,
    }
}

pub fn municipalities_register_once(h: &Harness) {
    with_towns(h);
    let list = h.store.municipalities().unwrap();
    let codes: Vec<String> = list.iter().map(|m| m.code.to_string()).collect();
    assert_eq!(codes, ["472018", "472131"]);
    assert_eq!(list[1].name, "うるま市");
    let again = h
        .store
        .add_municipality(uruma(), "うるま市", &Actor::console());
    assert!(matches!(again, Err(StoreError::MunicipalityExists(_))));
    let unknown = h
        .store
        .put_persons(code("131016"), &people(code("131016"), 1, 1), &staff());
    assert!(matches!(unknown, Err(StoreError::UnknownMunicipality(_))));
}

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
    with_towns(h);
    let mut ps = people(uruma(), 10, 2);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
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
    with_towns(h);
    let ps = people(uruma(), 30, 3);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
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

pub fn flags_are_stored(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 3, 6);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    let flags = Flags {
        moved_out: Some(MovedOut {
            on: parse_date("R4.4.1").unwrap(),
            to: Some(naha()),
        }),
        deceased_on: None,
        use_suspended: true,
    };
    h.store
        .set_flags(uruma(), &ps[1].address_number, flags, "転出届", &staff())
        .unwrap();
    let got = h
        .store
        .person(uruma(), &ps[1].address_number, &staff())
        .unwrap()
        .unwrap();
    assert_eq!(got.flags, flags);
    let nobody = AddressNumber::parse("1").unwrap();
    assert!(matches!(
        h.store
            .set_flags(uruma(), &nobody, flags, "転出届", &staff()),
        Err(StoreError::NotFound(_))
    ));
}

pub fn doses_are_stored_without_cap(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 2, 7);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    let a = &ps[0].address_number;
    let dates = [
        "2021-05-01",
        "2021-05-22",
        "2022-01-10",
        "2022-07-01",
        "2022-12-01",
        "2023-06-01",
        "2023-12-01",
    ];
    for (i, d) in dates.iter().enumerate() {
        h.store
            .add_dose(uruma(), a, &dose(i as u32 + 1, d), &staff())
            .unwrap();
    }
    let got = h.store.doses(uruma(), a).unwrap();
    assert_eq!(got.len(), 7);
    assert_eq!(got[6].dose, dose(7, "2023-12-01"));
    assert_eq!(got[0].recorded_by, "staff-0001");
    let stats = h.store.stats(uruma()).unwrap();
    assert_eq!(stats.persons, 2);
    assert_eq!(
        stats.vouchers as usize,
        ps.iter().map(|p| p.vouchers.len()).sum::<usize>()
    );
    assert_eq!(
        stats.doses_by_number,
        (1..=7).map(|n| (n, 1)).collect::<Vec<_>>()
    );
    let ids: HashSet<i64> = got.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), 7);
    assert!(
        h.store
            .doses(uruma(), &ps[1].address_number)
            .unwrap()
            .is_empty()
    );
    let nobody = AddressNumber::parse("1").unwrap();
    assert!(matches!(
        h.store
            .add_dose(uruma(), &nobody, &dose(1, "2021-05-01"), &staff()),
        Err(StoreError::NotFound(_))
    ));
    // Doses of Naha are numbered independently.
    let nps = people(naha(), 1, 7);
    h.store.put_persons(naha(), &nps, &staff()).unwrap();
    let id = h
        .store
        .add_dose(
            naha(),
            &nps[0].address_number,
            &dose(1, "2021-06-01"),
            &staff(),
        )
        .unwrap()
        .id;
    assert_eq!(id, 1);
}

pub fn audit_records_every_change_without_personal_values(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 5, 8);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
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
    with_towns(h);
    let ps = people(uruma(), 2, 9);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
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

pub fn crypto_shredding_makes_data_unreadable(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 10, 10);
    let nps = people(naha(), 3, 10);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    h.store.put_persons(naha(), &nps, &staff()).unwrap();
    h.store.shred(uruma(), &Actor::console()).unwrap();
    for store in [h.store.clone(), h.reopen(&h.master).unwrap()] {
        for p in &ps {
            let err = store
                .person(uruma(), &p.address_number, &staff())
                .unwrap_err();
            assert!(matches!(err, StoreError::Shredded(_)), "{err}");
            if let Some(n) = &p.my_number {
                assert!(matches!(
                    store.person_by_my_number(uruma(), n, &staff()),
                    Err(StoreError::Shredded(_))
                ));
            }
        }
        assert!(matches!(
            store.put_persons(uruma(), &ps, &staff()),
            Err(StoreError::Shredded(_))
        ));
        // Naha is untouched, and Uruma's audit chain still verifies, ending with the shred.
        assert_eq!(
            store
                .person(naha(), &nps[0].address_number, &staff())
                .unwrap()
                .as_ref(),
            Some(&nps[0])
        );
        store.verify_audit(uruma()).unwrap();
    }
    let log = h.store.audit_log(uruma()).unwrap();
    assert_eq!(log.last().unwrap().action, "municipality.shred");
}

pub fn sealed_fields_cannot_be_swapped_between_rows(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 2, 11);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    let (a, b) = (ps[0].address_number.as_str(), ps[1].address_number.as_str());
    h.exec(&format!(
        "UPDATE persons SET name_sealed = (SELECT name_sealed FROM persons WHERE address_number = '{b}') \
         WHERE municipality_code = '472131' AND address_number = '{a}'"
    ));
    let store = h.reopen(&h.master).unwrap();
    let err = store
        .person(uruma(), &ps[0].address_number, &staff())
        .unwrap_err();
    assert!(matches!(err, StoreError::Crypto(_)), "{err}");
    assert_eq!(
        store
            .person(uruma(), &ps[1].address_number, &staff())
            .unwrap()
            .as_ref(),
        Some(&ps[1])
    );
}

pub fn wrong_master_key_reads_nothing(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 2, 12);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    let store = h.reopen(&MasterKey::generate()).unwrap();
    let err = store
        .person(uruma(), &ps[0].address_number, &staff())
        .unwrap_err();
    assert!(matches!(err, StoreError::Crypto(_)), "{err}");
}

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

pub fn no_plaintext_personal_data_at_rest(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 10_000, 13);
    for chunk in ps.chunks(2_500) {
        h.store.put_persons(uruma(), chunk, &staff()).unwrap();
    }
    assert_eq!(h.store.count_persons(uruma()).unwrap(), 10_000);
    let bytes = h.bytes_at_rest();
    // Sanity: the search finds what is stored in plain text (voucher numbers, the town's name).
    let voucher = ps[0].vouchers[0].number.to_string();
    assert!(memchr::memmem::find(&bytes, voucher.as_bytes()).is_some());
    assert!(memchr::memmem::find(&bytes, "うるま市".as_bytes()).is_some());

    let mut needles: HashSet<String> = HashSet::new();
    for p in &ps {
        needles.insert(p.name.as_str().to_owned());
        needles.insert(p.name_kana.as_str().to_owned());
        for part in p
            .name
            .as_str()
            .split('\u{3000}')
            .chain(p.name_kana.as_str().split('\u{3000}'))
        {
            if part.chars().count() >= 2 {
                needles.insert(part.to_owned());
            }
        }
    }
    for needle in &needles {
        assert!(
            memchr::memmem::find(&bytes, needle.as_bytes()).is_none(),
            "a name is stored in plain text"
        );
    }
    let numbers: HashSet<String> = ps
        .iter()
        .filter_map(|p| p.my_number.as_ref().map(MyNumber::expose))
        .collect();
    assert!(numbers.len() > 9_000);
    let mut run = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 12 {
            let window = std::str::from_utf8(&bytes[i + 1 - 12..=i]).unwrap();
            assert!(
                !numbers.contains(window),
                "a My Number is stored in plain text"
            );
        }
    }
    // Birth dates as written by the store (ISO) appear nowhere next to a person's row either:
    // spot-check a few that are not also dose or voucher dates.
    let voucher_dates: HashSet<String> = ps
        .iter()
        .flat_map(|p| {
            p.vouchers
                .iter()
                .filter_map(|v| v.issued_on.map(|d| d.to_string()))
        })
        .chain(
            ps.iter()
                .filter_map(|p| p.flags.deceased_on.map(|d| d.to_string())),
        )
        .chain(
            ps.iter()
                .filter_map(|p| p.flags.moved_out.map(|m| m.on.to_string())),
        )
        .collect();
    let births: Vec<String> = ps
        .iter()
        .map(|p| p.birth_date.0.to_string())
        .filter(|d| !voucher_dates.contains(d))
        .take(200)
        .collect();
    for b in &births {
        assert!(
            memchr::memmem::find(&bytes, b.as_bytes()).is_none(),
            "a birth date is stored in plain text"
        );
    }
}

pub fn accounts_sessions_and_security_events(h: &Harness) {
    use openvrs_domain::account::{Account, Binding, UserId};
    use openvrs_store::{Credential, SecurityEvent, Session};
    with_towns(h);
    let staff_id = UserId::parse("staff-472131").unwrap();
    let staff = Account {
        id: staff_id.clone(),
        binding: Binding::Municipality(uruma()),
        disabled: false,
    };
    let hash = Credential::PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$x$y".into());
    h.store
        .add_account(&staff, &hash, &Actor::console())
        .unwrap();
    assert!(matches!(
        h.store.add_account(&staff, &hash, &Actor::console()),
        Err(StoreError::Conflict(_))
    ));
    let venue = Account {
        id: UserId::parse("venue-001").unwrap(),
        binding: Binding::Venue {
            municipality: uruma(),
            venue: Short::parse("会場A").unwrap(),
        },
        disabled: false,
    };
    h.store
        .add_account(&venue, &Credential::TokenDigest([7; 32]), &Actor::console())
        .unwrap();
    let national = Account {
        id: UserId::parse("kuni").unwrap(),
        binding: Binding::National,
        disabled: false,
    };
    h.store
        .add_account(&national, &hash, &Actor::console())
        .unwrap();
    // An account for an unregistered municipality is refused.
    let stray = Account {
        id: UserId::parse("stray").unwrap(),
        binding: Binding::Municipality(code("131016")),
        disabled: false,
    };
    assert!(
        h.store
            .add_account(&stray, &hash, &Actor::console())
            .is_err()
    );

    assert_eq!(
        h.store.account(&staff_id).unwrap(),
        Some((staff.clone(), hash.clone()))
    );
    assert_eq!(
        h.store.account_by_token(&[7; 32]).unwrap(),
        Some(venue.clone())
    );
    assert_eq!(h.store.account_by_token(&[8; 32]).unwrap(), None);
    assert_eq!(h.store.accounts().unwrap().len(), 3);
    let log = h.store.audit_log(uruma()).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "account.add" && e.object == "account:staff-472131")
    );

    let s = Session {
        user: staff_id.clone(),
        csrf_token: "csrf".into(),
        created_at: 10,
        last_seen: 10,
    };
    h.store.create_session(&[1; 32], &s).unwrap();
    h.store.touch_session(&[1; 32], 20).unwrap();
    assert_eq!(h.store.session(&[1; 32]).unwrap().unwrap().last_seen, 20);
    h.store.delete_session(&[1; 32]).unwrap();
    assert_eq!(h.store.session(&[1; 32]).unwrap(), None);

    // Disabling revokes the token and ends the sessions.
    h.store.create_session(&[2; 32], &s).unwrap();
    h.store
        .disable_account(&staff_id, &Actor::console())
        .unwrap();
    assert_eq!(h.store.session(&[2; 32]).unwrap(), None);
    assert!(h.store.account(&staff_id).unwrap().unwrap().0.disabled);
    h.store
        .disable_account(&venue.id, &Actor::console())
        .unwrap();
    assert_eq!(h.store.account_by_token(&[7; 32]).unwrap(), None);
    let (revoked, credential) = h.store.account(&venue.id).unwrap().unwrap();
    assert!(revoked.disabled);
    assert_eq!(credential, Credential::Revoked);
    assert_eq!(h.store.accounts().unwrap().len(), 3);

    use openvrs_domain::audit::SecurityEventKind as Kind;
    let event = |kind: Kind, m: Option<MunicipalityCode>, at: i64| SecurityEvent {
        id: 0,
        at,
        kind,
        municipality: m,
        user: Some("staff-472131".into()),
        client: Some("127.0.0.1".into()),
        detail: "test".into(),
    };
    let a = h
        .store
        .record_security_event(&event(Kind::LoginFailed, Some(uruma()), 100))
        .unwrap();
    let b = h
        .store
        .record_security_event(&event(Kind::LoginFailed, Some(uruma()), 200))
        .unwrap();
    h.store
        .record_security_event(&event(Kind::WrongZone, Some(naha()), 300))
        .unwrap();
    assert!(b > a);
    assert_eq!(h.store.security_events(None, 10).unwrap().len(), 3);
    let own = h.store.security_events(Some(uruma()), 10).unwrap();
    assert_eq!(own.iter().map(|e| e.id).collect::<Vec<_>>(), [b, a]);
    assert_eq!(
        h.store
            .count_security_events(Kind::LoginFailed, "staff-472131", 150)
            .unwrap(),
        1
    );
    assert_eq!(
        h.store
            .count_security_events(Kind::LoginFailed, "staff-472131", 0)
            .unwrap(),
        2
    );
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

fn rules_of(err: StoreError) -> Vec<&'static str> {
    match err {
        StoreError::Quality(f) => f.into_iter().map(|f| f.rule.code()).collect(),
        other => panic!("expected a quality error, got {other}"),
    }
}

/// One person born 1980-01-01 in Uruma, and another with a voucher.
fn two_people(h: &Harness) -> Vec<Person> {
    with_towns(h);
    let mut ps = people(uruma(), 2, 21);
    ps[0].birth_date = openvrs_domain::person::BirthDate(parse_date("1980-01-01").unwrap());
    ps[0].flags = Flags::default();
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    ps
}

pub fn dose_rules_block_errors_and_report_warnings(h: &Harness) {
    let ps = two_people(h);
    let a = &ps[0].address_number;
    let audit = h.store.audit_log(uruma()).unwrap().len();
    let with = |f: &dyn Fn(&mut Dose)| {
        let mut d = dose(1, "2021-06-01");
        f(&mut d);
        d
    };
    let table: Vec<(Dose, Vec<&str>)> = vec![
        (
            with(&|d| d.date = parse_date("2099-01-01").unwrap()),
            vec!["future_date"],
        ),
        (
            with(&|d| d.date = parse_date("1979-12-31").unwrap()),
            vec!["before_birth"],
        ),
        (
            with(&|d| d.product = Short::parse("nothing").unwrap()),
            vec!["unknown_product"],
        ),
        (
            with(&|d| d.voucher = Some(ps[1].vouchers[0].number)),
            vec!["foreign_voucher"],
        ),
    ];
    for (d, want) in table {
        let err = h.store.add_dose(uruma(), a, &d, &staff()).unwrap_err();
        assert!(err.to_string().contains(" / "), "{err}");
        assert_eq!(rules_of(err), want);
    }
    assert_eq!(
        h.store.audit_log(uruma()).unwrap().len(),
        audit,
        "nothing written"
    );
    assert!(h.store.doses(uruma(), a).unwrap().is_empty());

    // A warning is reported and the dose is written.
    let first = h
        .store
        .add_dose(uruma(), a, &dose(1, "2021-06-01"), &staff())
        .unwrap();
    assert!(first.warnings.is_empty());
    let mut short = dose(2, "2021-06-05");
    short.lot = Short::parse("bad-lot").unwrap();
    let second = h.store.add_dose(uruma(), a, &short, &staff()).unwrap();
    let codes: Vec<_> = second.warnings.iter().map(|f| f.rule.code()).collect();
    assert_eq!(codes, ["interval_too_short", "lot_format"]);
    // Two records for one dose.
    assert_eq!(
        rules_of(
            h.store
                .add_dose(uruma(), a, &dose(2, "2021-07-01"), &staff())
                .unwrap_err()
        ),
        ["duplicate_dose"]
    );
    // A dose after death.
    let died = Flags {
        deceased_on: Some(parse_date("2021-12-31").unwrap()),
        ..Flags::default()
    };
    h.store
        .set_flags(uruma(), a, died, "死亡届", &staff())
        .unwrap();
    assert_eq!(
        rules_of(
            h.store
                .add_dose(uruma(), a, &dose(3, "2022-01-10"), &staff())
                .unwrap_err()
        ),
        ["after_death"]
    );
    // The person's own voucher is fine.
    let b = &ps[1].address_number;
    let mut own = dose(1, "2021-06-01");
    own.voucher = Some(ps[1].vouchers[0].number);
    h.store.add_dose(uruma(), b, &own, &staff()).unwrap();
}

pub fn doses_are_corrected_and_deleted_with_history(h: &Harness) {
    let ps = two_people(h);
    let a = &ps[0].address_number;
    let one = h
        .store
        .add_dose(uruma(), a, &dose(1, "2021-06-01"), &staff())
        .unwrap()
        .id;
    let two = h
        .store
        .add_dose(uruma(), a, &dose(2, "2021-06-29"), &staff())
        .unwrap()
        .id;
    let mut fixed = dose(2, "2021-06-30");
    fixed.lot = Short::parse("FG0001").unwrap();
    // A reason is required.
    for blank in ["", "   ", "\u{3000}"] {
        assert!(matches!(
            h.store
                .correct_dose(uruma(), a, two, &fixed, blank, &staff()),
            Err(StoreError::Invalid(_))
        ));
    }
    h.store
        .correct_dose(uruma(), a, two, &fixed, "予診票と照合し訂正", &staff())
        .unwrap();
    let now = h.store.doses(uruma(), a).unwrap();
    assert_eq!(now[1].dose, fixed);
    assert_eq!((now[1].id, now[1].version), (two, 2));
    // Correcting into a duplicate of another dose is refused.
    assert_eq!(
        rules_of(
            h.store
                .correct_dose(uruma(), a, two, &dose(1, "2021-06-30"), "誤り", &staff())
                .unwrap_err()
        ),
        ["duplicate_dose"]
    );
    h.store
        .delete_dose(uruma(), a, two, "二重登録", &staff())
        .unwrap();
    let now = h.store.doses(uruma(), a).unwrap();
    assert_eq!(now.iter().map(|d| d.id).collect::<Vec<_>>(), [one]);
    let history = h.store.dose_history(uruma(), a).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].was.dose, dose(2, "2021-06-29"));
    assert_eq!(history[0].change.code(), "corrected");
    assert_eq!(history[0].reason, "予診票と照合し訂正");
    assert_eq!(
        (history[1].was.version, history[1].change.code()),
        (2, "deleted")
    );
    assert_eq!(history[1].changed_by, "staff-0001");
    // The id of a deleted dose is not used again.
    let three = h
        .store
        .add_dose(uruma(), a, &dose(2, "2021-07-01"), &staff())
        .unwrap()
        .id;
    assert!(three > two);
    // Unknown ids, and ids of another person or municipality, are not found.
    for (m, who, id) in [
        (uruma(), a, 999),
        (uruma(), &ps[1].address_number, one),
        (naha(), a, one),
    ] {
        assert!(matches!(
            h.store.delete_dose(m, who, id, "誤り", &staff()),
            Err(StoreError::NotFound(_) | StoreError::UnknownMunicipality(_))
        ));
    }
    let actions: Vec<String> = h
        .store
        .audit_log(uruma())
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("dose."))
        .collect();
    assert_eq!(
        actions,
        [
            "dose.add",
            "dose.add",
            "dose.correct",
            "dose.delete",
            "dose.add"
        ]
    );
    h.store.verify_audit(uruma()).unwrap();
}

fn ledger(
    row: u64,
    p: &Person,
    doses: Vec<Dose>,
) -> Result<openvrs_store::LedgerRecord, StoreError> {
    Ok(openvrs_store::LedgerRecord {
        row,
        address: p.address_number.clone(),
        doses: doses
            .into_iter()
            .map(|d| (d, Some(1_622_505_600_000_000)))
            .collect(),
    })
}

fn csv_dose(n: u32, date: &str) -> Dose {
    Dose {
        source: DoseSource::Csv,
        ..dose(n, date)
    }
}

pub fn ledger_import_is_all_or_nothing_and_idempotent(h: &Harness) {
    let ps = two_people(h);
    let records = || {
        vec![
            ledger(
                2,
                &ps[0],
                vec![csv_dose(1, "2021-06-01"), csv_dose(2, "2021-06-29")],
            ),
            ledger(3, &ps[1], vec![csv_dose(1, "2021-07-01")]),
        ]
    };
    let first = h
        .store
        .import_ledger(uruma(), &mut records().into_iter(), &staff())
        .unwrap();
    assert_eq!((first.rows, first.inserted, first.unchanged), (2, 3, 0));
    let got = h.store.doses(uruma(), &ps[0].address_number).unwrap();
    assert_eq!(
        got[0].recorded_at, 1_622_505_600_000_000,
        "the file's registration time"
    );
    let again = h
        .store
        .import_ledger(uruma(), &mut records().into_iter(), &staff())
        .unwrap();
    assert_eq!((again.inserted, again.unchanged), (0, 3));

    // A bad file: every bad row is named, nothing is written.
    let audit = h.store.audit_log(uruma()).unwrap().len();
    let mut stranger = ps[0].clone();
    stranger.address_number = AddressNumber::parse("999999").unwrap();
    let mut odd_lot = csv_dose(3, "2022-01-10");
    odd_lot.lot = Short::parse("x").unwrap();
    let bad = vec![
        ledger(2, &ps[0], vec![odd_lot, csv_dose(4, "2099-01-01")]),
        ledger(3, &stranger, vec![csv_dose(1, "2021-07-01")]),
        ledger(4, &ps[1], vec![csv_dose(1, "2021-07-02")]),
        ledger(5, &ps[1], vec![]),
    ];
    let err = h
        .store
        .import_ledger(uruma(), &mut bad.into_iter(), &staff())
        .unwrap_err();
    let StoreError::Rejected(rows) = err else {
        panic!("expected a rejection")
    };
    let got: Vec<(u64, Option<u32>, &str)> = rows
        .iter()
        .map(|r| (r.row, r.dose_number, r.code))
        .collect();
    assert_eq!(
        got,
        [
            (2, Some(4), "future_date"),
            (3, None, "ledger.unknown_person"),
            (4, Some(1), "duplicate_dose"),
            (5, None, "ledger.duplicate_person"),
        ]
    );
    assert!(
        rows[0].to_string().starts_with("2行目 4回目: "),
        "{}",
        rows[0]
    );
    assert_eq!(h.store.audit_log(uruma()).unwrap().len(), audit);
    assert_eq!(
        h.store.doses(uruma(), &ps[0].address_number).unwrap().len(),
        2
    );
    // Warnings alone do not block.
    let mut odd_lot = csv_dose(3, "2022-01-10");
    odd_lot.lot = Short::parse("x").unwrap();
    let warned = h
        .store
        .import_ledger(
            uruma(),
            &mut vec![ledger(2, &ps[0], vec![odd_lot])].into_iter(),
            &staff(),
        )
        .unwrap();
    assert_eq!(warned.inserted, 1);
    assert_eq!(warned.warnings[0].code, "lot_format");
    assert_eq!(warned.warnings[0].dose_number, Some(3));
}

pub fn ledger_export_pages_through_everyone(h: &Harness) {
    with_towns(h);
    let mut ps = people(uruma(), 2_050, 22);
    for p in &mut ps {
        p.flags = Flags::default();
    }
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    // Everyone but the last 10 has a dose; some have two.
    let records: Vec<_> = ps[..2_040]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut doses = vec![csv_dose(1, "2021-06-01")];
            if i % 3 == 0 {
                doses.push(csv_dose(2, "2021-07-01"));
            }
            ledger(i as u64 + 2, p, doses)
        })
        .collect();
    h.store
        .import_ledger(uruma(), &mut records.into_iter(), &staff())
        .unwrap();
    let mut seen = Vec::new();
    let mut doses = 0;
    let persons = h
        .store
        .export_ledger(uruma(), &staff(), &mut |a, ds| {
            seen.push(a.clone());
            doses += ds.len();
            Ok(())
        })
        .unwrap();
    assert_eq!(persons, 2_040);
    assert_eq!(doses, 2_040 + 680);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    sorted.dedup();
    assert_eq!(sorted, seen, "in address order, each once");
    // A failing sink stops the export with its error.
    let err = h
        .store
        .export_ledger(uruma(), &staff(), &mut |_, _| {
            Err(StoreError::Sink("disk full".into()))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Sink(_)));
    let last = h.store.audit_log(uruma()).unwrap().pop().unwrap();
    assert_eq!(last.object, "ledger persons=2040");
}

pub fn quality_report_lists_findings(h: &Harness) {
    let ps = two_people(h);
    let a = &ps[0].address_number;
    let mut odd = csv_dose(1, "2021-06-01");
    odd.lot = Short::parse("x").unwrap();
    h.store
        .import_ledger(
            uruma(),
            &mut vec![ledger(2, &ps[0], vec![odd, csv_dose(2, "2021-06-29")])].into_iter(),
            &staff(),
        )
        .unwrap();
    // A death recorded later makes the second dose an error in the report.
    let died = Flags {
        deceased_on: Some(parse_date("2021-06-15").unwrap()),
        ..Flags::default()
    };
    h.store
        .set_flags(uruma(), a, died, "死亡届", &staff())
        .unwrap();
    let report = h.store.quality_report(uruma(), &staff()).unwrap();
    let got: Vec<(u32, &str, &str)> = report
        .iter()
        .map(|l| {
            (
                l.dose_number,
                l.finding.severity.code(),
                l.finding.rule.code(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(1, "warning", "lot_format"), (2, "error", "after_death")]
    );
    assert!(report.iter().all(|l| &l.address == a));
    let last = h.store.audit_log(uruma()).unwrap().pop().unwrap();
    assert_eq!(last.action, "quality.report");
}

pub fn individual_rights_disclosure_correction_suspension(h: &Harness) {
    let ps = two_people(h);
    let (a, b) = (&ps[0].address_number, &ps[1].address_number);
    let id = h
        .store
        .add_dose(uruma(), a, &dose(1, "2021-06-01"), &staff())
        .unwrap()
        .id;
    h.store
        .add_dose(uruma(), b, &dose(1, "2021-06-01"), &staff())
        .unwrap();
    h.store
        .correct_dose(
            uruma(),
            a,
            id,
            &dose(1, "2021-06-02"),
            "接種日の誤記",
            &staff(),
        )
        .unwrap();
    // Correction of identity, with a reason.
    let mut fixed = ps[0].clone();
    fixed.name = openvrs_domain::name::Name::parse("訂正　太郎").unwrap();
    fixed.my_number = Some(MyNumber::from_first_eleven([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]).unwrap());
    assert!(matches!(
        h.store.correct_person(uruma(), &fixed, "", &staff()),
        Err(StoreError::Invalid(_))
    ));
    let fields = h
        .store
        .correct_person(uruma(), &fixed, "本人からの訂正請求", &staff())
        .unwrap();
    assert_eq!(fields, ["name", "my_number"]);
    let found = h
        .store
        .person_by_my_number(uruma(), fixed.my_number.as_ref().unwrap(), &staff())
        .unwrap()
        .unwrap();
    assert_eq!(found.name, fixed.name);
    assert_eq!(found.vouchers, ps[0].vouchers, "vouchers kept");
    if let Some(old) = &ps[0].my_number {
        assert!(
            h.store
                .person_by_my_number(uruma(), old, &staff())
                .unwrap()
                .is_none()
        );
    }
    // Suspension.
    let suspended = Flags {
        use_suspended: true,
        ..Flags::default()
    };
    h.store
        .set_flags(uruma(), a, suspended, "利用停止請求", &staff())
        .unwrap();
    // Disclosure: everything about this person, nothing about the other.
    let d = h.store.disclosure(uruma(), a, &staff()).unwrap().unwrap();
    assert_eq!(d.person.name, fixed.name);
    assert!(d.person.flags.use_suspended);
    assert_eq!(d.doses.len(), 1);
    assert_eq!(d.history.len(), 1);
    assert_eq!(d.history[0].reason, "接種日の誤記");
    let kinds: Vec<(&str, &str)> = d
        .changes
        .iter()
        .map(|c| (c.kind.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("correct", "本人からの訂正請求"), ("flags", "利用停止請求")]
    );
    assert_eq!(d.changes[1].fields, ["use_suspended"]);
    let actions: Vec<&str> = d.audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "dose.add",
            "dose.correct",
            "person.correct",
            "person.read",
            "person.flags"
        ]
    );
    assert!(
        d.audit
            .iter()
            .all(|e| e.object.starts_with(&format!("person:{a}")))
    );
    let last = h.store.audit_log(uruma()).unwrap().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.object.clone()),
        ("person.disclose", format!("person:{a}"))
    );
    assert!(
        h.store
            .disclosure(uruma(), &AddressNumber::parse("424242").unwrap(), &staff())
            .unwrap()
            .is_none()
    );
}

pub fn flags_by_file_are_all_or_nothing(h: &Harness) {
    use openvrs_domain::person::FlagChange;
    use openvrs_store::FlagUpdate;
    let ps = two_people(h);
    let died = parse_date("2023-01-31").unwrap();
    let update = |row, p: &Person, change| FlagUpdate {
        row,
        address: p.address_number.clone(),
        change,
        reason: "住基連携".into(),
    };
    let deceased = FlagChange {
        deceased_on: Some(Some(died)),
        ..FlagChange::default()
    };
    let suspend = FlagChange {
        use_suspended: Some(true),
        ..FlagChange::default()
    };
    let mut stranger = ps[0].clone();
    stranger.address_number = AddressNumber::parse("999999").unwrap();
    let audit = h.store.audit_log(uruma()).unwrap().len();
    let err = h
        .store
        .update_flags(
            uruma(),
            &[update(2, &ps[0], deceased), update(3, &stranger, suspend)],
            &staff(),
        )
        .unwrap_err();
    let StoreError::Rejected(rows) = err else {
        panic!("expected a rejection")
    };
    assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [3]);
    assert_eq!(h.store.audit_log(uruma()).unwrap().len(), audit);
    let before = h
        .store
        .person(uruma(), &ps[0].address_number, &staff())
        .unwrap()
        .unwrap();
    assert_eq!(before.flags.deceased_on, None);

    let batch = [update(2, &ps[0], deceased), update(3, &ps[1], suspend)];
    assert_eq!(h.store.update_flags(uruma(), &batch, &staff()).unwrap(), 2);
    assert_eq!(
        h.store.update_flags(uruma(), &batch, &staff()).unwrap(),
        0,
        "idempotent"
    );
    let a = h
        .store
        .person(uruma(), &ps[0].address_number, &staff())
        .unwrap()
        .unwrap();
    assert_eq!(a.flags.deceased_on, Some(died));
    assert!(!a.flags.use_suspended, "untouched flags stay");
    let b = h
        .store
        .person(uruma(), &ps[1].address_number, &staff())
        .unwrap()
        .unwrap();
    assert!(b.flags.use_suspended);
    // Clearing.
    let clear = FlagChange {
        deceased_on: Some(None),
        ..FlagChange::default()
    };
    h.store
        .update_flags(uruma(), &[update(2, &ps[0], clear)], &staff())
        .unwrap();
    let a = h
        .store
        .person(uruma(), &ps[0].address_number, &staff())
        .unwrap()
        .unwrap();
    assert_eq!(a.flags.deceased_on, None);
}

fn tablet() -> Actor {
    Actor {
        user: "venue-0001".into(),
        role: Role::VenueDevice,
        zone: Zone::Internet,
    }
}

fn tablet_record(p: &Person, key: &str) -> openvrs_store::TabletRecord {
    openvrs_store::TabletRecord {
        voucher: p.vouchers[0].number,
        birth_date: p.birth_date.0,
        dose: Dose {
            source: DoseSource::Tablet,
            ..dose(1, "2021-06-01")
        },
        idempotency_key: key.into(),
    }
}

pub fn tablets_record_once_and_never_overwrite(h: &Harness) {
    use openvrs_store::TabletOutcome::*;
    let ps = two_people(h);
    let p = &ps[0];
    let first = h
        .store
        .record_from_tablet(uruma(), &tablet_record(p, "k1"), &tablet())
        .unwrap();
    assert_eq!(
        (first.outcome, first.dose_number, first.replayed),
        (Recorded, 1, false)
    );
    assert_eq!(first.masked_name, p.name_kana.masked());
    assert!(!first.masked_name.contains(&p.name_kana.as_str()[3..]));
    let doses = h.store.doses(uruma(), &p.address_number).unwrap();
    assert_eq!(doses.len(), 1);
    assert_eq!(doses[0].dose.source, DoseSource::Tablet);
    assert_eq!(doses[0].dose.voucher, Some(p.vouchers[0].number));
    // A retry after a lost answer: the first answer again, nothing new.
    let retry = h
        .store
        .record_from_tablet(uruma(), &tablet_record(p, "k1"), &tablet())
        .unwrap();
    assert_eq!(
        (retry.outcome, retry.id, retry.replayed),
        (Recorded, first.id, true)
    );
    // The same record under a new key: already recorded.
    let again = h
        .store
        .record_from_tablet(uruma(), &tablet_record(p, "k2"), &tablet())
        .unwrap();
    assert_eq!((again.outcome, again.id), (AlreadyRecorded, first.id));
    // A different record of the same dose: queued, never overwritten.
    let mut other = tablet_record(p, "k3");
    other.dose.lot = Short::parse("FZ9999").unwrap();
    let conflict = h
        .store
        .record_from_tablet(uruma(), &other, &tablet())
        .unwrap();
    assert_eq!(conflict.outcome, Conflict);
    assert_eq!(h.store.doses(uruma(), &p.address_number).unwrap(), doses);
    let queue = h.store.dose_conflicts(uruma()).unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(
        (queue[0].id, queue[0].existing_dose_id),
        (conflict.id, first.id)
    );
    assert_eq!(queue[0].proposed.lot.as_str(), "FZ9999");
    assert!(h.store.dose_conflicts(naha()).unwrap().is_empty());
    // The same key with other content is refused.
    assert!(matches!(
        h.store
            .record_from_tablet(uruma(), &other.clone_with_key("k1"), &tablet()),
        Err(StoreError::Conflict(_))
    ));
    // The second factor, an unknown voucher, another town, a blank key, a quality error.
    let mut wrong_birth = tablet_record(p, "k4");
    wrong_birth.birth_date = parse_date("1980-01-02").unwrap();
    let audit = h.store.audit_log(uruma()).unwrap().len();
    assert!(matches!(
        h.store.record_from_tablet(uruma(), &wrong_birth, &tablet()),
        Err(StoreError::BirthDateMismatch)
    ));
    let log = h.store.audit_log(uruma()).unwrap();
    assert_eq!(log.len(), audit + 1, "a failed attempt is audited");
    assert_eq!(log[audit].outcome, openvrs_domain::audit::Outcome::Failed);
    assert!(!format!("{:?}", log[audit]).contains("1980"));
    let mut unknown = tablet_record(p, "k5");
    unknown.voucher = openvrs_domain::ids::VoucherNumber::parse("9999999999").unwrap();
    assert!(matches!(
        h.store.record_from_tablet(uruma(), &unknown, &tablet()),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        h.store
            .record_from_tablet(naha(), &tablet_record(p, "k6"), &tablet()),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        h.store
            .record_from_tablet(uruma(), &tablet_record(p, " "), &tablet()),
        Err(StoreError::Invalid(_))
    ));
    let mut future = tablet_record(&ps[1], "k7");
    future.birth_date = ps[1].birth_date.0;
    future.voucher = ps[1].vouchers[0].number;
    future.dose.date = parse_date("2099-01-01").unwrap();
    assert!(matches!(
        h.store.record_from_tablet(uruma(), &future, &tablet()),
        Err(StoreError::Quality(_))
    ));
    h.store.verify_audit(uruma()).unwrap();
}

trait WithKey {
    fn clone_with_key(&self, key: &str) -> Self;
}

impl WithKey for openvrs_store::TabletRecord {
    fn clone_with_key(&self, key: &str) -> Self {
        Self {
            idempotency_key: key.into(),
            ..self.clone()
        }
    }
}

/// The 2021 misread test: every single-digit misread of every position of the OCR lines of
/// residents whose vouchers are numbered in sequence (so a misread often names another real
/// voucher), tried with the true resident's date of birth. Not one dose may reach another
/// resident.
pub fn misread_ocr_lines_never_reach_another_resident(h: &Harness) {
    use openvrs_domain::ids::{OcrLine, VoucherNumber};
    with_towns(h);
    let mut ps = people(uruma(), 60, 31);
    for (i, p) in ps.iter_mut().enumerate() {
        p.birth_date = openvrs_domain::person::BirthDate(
            parse_date("1950-01-01").unwrap() + time::Duration::days(i as i64 * 97),
        );
        p.flags = Flags::default();
        p.vouchers.truncate(1);
        p.vouchers[0].number = VoucherNumber::parse(&format!("{:010}", 100_000 + i)).unwrap();
    }
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    let mut counts = std::collections::BTreeMap::<&str, u32>::new();
    for (i, p) in ps.iter().enumerate() {
        let line = format!("11{}{}", uruma(), p.vouchers[0].number);
        for pos in 0..18 {
            for digit in b'0'..=b'9' {
                let mut misread = line.clone().into_bytes();
                if misread[pos] == digit {
                    continue;
                }
                misread[pos] = digit;
                let misread = String::from_utf8(misread).unwrap();
                let parsed = match OcrLine::parse(&misread) {
                    Ok(l) => l,
                    Err(e) if e.kind == "municipality_code.check_digit" => {
                        *counts.entry("check_digit").or_default() += 1;
                        continue;
                    }
                    Err(_) => {
                        *counts.entry("format").or_default() += 1;
                        continue;
                    }
                };
                let record = openvrs_store::TabletRecord {
                    voucher: parsed.voucher,
                    birth_date: p.birth_date.0,
                    dose: Dose {
                        number: DoseNumber::new(u32::from(parsed.dose_number)).unwrap(),
                        // Marks whose paper this was.
                        doctor: Short::parse(&format!("true:{i}")).unwrap(),
                        source: DoseSource::Tablet,
                        ..dose(1, "2021-06-01")
                    },
                    idempotency_key: format!("{i}-{pos}-{digit}"),
                };
                let outcome = h
                    .store
                    .record_from_tablet(parsed.municipality, &record, &tablet());
                let kind = match outcome {
                    Ok(_) => "recorded_for_the_true_resident",
                    Err(StoreError::NotFound(_) | StoreError::UnknownMunicipality(_)) => {
                        "not_found"
                    }
                    Err(StoreError::BirthDateMismatch) => "birth_date",
                    Err(e) => panic!("unexpected: {e}"),
                };
                *counts.entry(kind).or_default() += 1;
            }
        }
    }
    // Every dose any resident has came from their own paper.
    for (j, p) in ps.iter().enumerate() {
        for d in h.store.doses(uruma(), &p.address_number).unwrap() {
            assert_eq!(
                d.dose.doctor.as_str(),
                format!("true:{j}"),
                "a dose reached another resident"
            );
        }
    }
    eprintln!(
        "misread test ({} lines, {} misreads): {counts:?}",
        ps.len(),
        counts.values().sum::<u32>()
    );
    assert!(
        counts["birth_date"] > 0,
        "the test must hit other residents' vouchers"
    );
    assert!(counts["check_digit"] > 0 && counts["not_found"] > 0);
}

/// Group commit: one transaction, one answer per record, one record's failure leaves the others.
pub fn tablet_batches_answer_each_record(h: &Harness) {
    let ps = two_people(h);
    let nps = people(naha(), 1, 32);
    let mut nps = nps;
    nps[0].flags = Flags::default();
    h.store.put_persons(naha(), &nps, &staff()).unwrap();
    let mut wrong_birth = tablet_record(&ps[1], "b2");
    wrong_birth.birth_date = parse_date("1900-01-01").unwrap();
    let mut future = tablet_record(&ps[1], "b3");
    future.dose.date = parse_date("2099-01-01").unwrap();
    let batch = vec![
        (uruma(), tablet_record(&ps[0], "b1"), tablet()),
        (uruma(), wrong_birth, tablet()),
        (uruma(), future, tablet()),
        (naha(), tablet_record(&nps[0], "b4"), tablet()),
        (uruma(), tablet_record(&ps[0], "b1"), tablet()),
        (uruma(), tablet_record(&ps[1], "b5"), tablet()),
    ];
    let answers = h.store.record_from_tablets(&batch).unwrap();
    let kinds: Vec<String> = answers
        .iter()
        .map(|a| match a {
            Ok(a) => format!(
                "{}{}",
                a.outcome.code(),
                if a.replayed { "+replayed" } else { "" }
            ),
            Err(StoreError::BirthDateMismatch) => "birth".into(),
            Err(StoreError::Quality(_)) => "quality".into(),
            Err(e) => format!("{e}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "recorded",
            "birth",
            "quality",
            "recorded",
            "recorded+replayed",
            "recorded"
        ]
    );
    assert_eq!(
        h.store.doses(uruma(), &ps[0].address_number).unwrap().len(),
        1
    );
    assert_eq!(
        h.store.doses(uruma(), &ps[1].address_number).unwrap().len(),
        1
    );
    assert_eq!(
        h.store.doses(naha(), &nps[0].address_number).unwrap().len(),
        1
    );
    h.store.verify_audit(uruma()).unwrap();
    h.store.verify_audit(naha()).unwrap();
    let actions: Vec<_> = h
        .store
        .audit_log(uruma())
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "tablet.record")
        .map(|e| e.outcome)
        .collect();
    use openvrs_domain::audit::Outcome::{Failed, Ok as Done};
    assert_eq!(
        actions,
        [Done, Failed, Done, Done],
        "the quality failure left no trace"
    );
}

pub fn staff_resolve_tablet_conflicts(h: &Harness) {
    let ps = two_people(h);
    let p = &ps[0];
    let first = h
        .store
        .record_from_tablet(uruma(), &tablet_record(p, "r1"), &tablet())
        .unwrap();
    let conflict = |key: &str, lot: &str| {
        let mut other = tablet_record(p, key);
        other.dose.lot = Short::parse(lot).unwrap();
        h.store
            .record_from_tablet(uruma(), &other, &tablet())
            .unwrap()
            .id
    };
    let keep = conflict("r2", "FB0001");
    assert!(matches!(
        h.store
            .resolve_dose_conflict(uruma(), keep, false, " ", &staff()),
        Err(StoreError::Invalid(_))
    ));
    h.store
        .resolve_dose_conflict(
            uruma(),
            keep,
            false,
            "予診票を確認、元の記録が正しい",
            &staff(),
        )
        .unwrap();
    let doses = h.store.doses(uruma(), &p.address_number).unwrap();
    assert_eq!(
        (doses[0].id, doses[0].version),
        (first.id, 1),
        "kept as it was"
    );
    assert_eq!(doses[0].dose.lot.as_str(), "FF1234");
    let replace = conflict("r3", "FC0002");
    h.store
        .resolve_dose_conflict(uruma(), replace, true, "タブレットの記録が正しい", &staff())
        .unwrap();
    let doses = h.store.doses(uruma(), &p.address_number).unwrap();
    assert_eq!(
        (doses[0].dose.lot.as_str(), doses[0].version),
        ("FC0002", 2)
    );
    let history = h.store.dose_history(uruma(), &p.address_number).unwrap();
    assert_eq!(history[0].reason, "タブレットの記録が正しい");
    assert!(h.store.dose_conflicts(uruma()).unwrap().is_empty());
    for id in [keep, replace, 999] {
        assert!(matches!(
            h.store
                .resolve_dose_conflict(uruma(), id, true, "再度", &staff()),
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(matches!(
        h.store
            .resolve_dose_conflict(naha(), replace, true, "他団体", &staff()),
        Err(StoreError::NotFound(_))
    ));
    h.store.verify_audit(uruma()).unwrap();
}

// ---- inquiry and provision between municipalities -----------------------------------------

fn naha_staff() -> Actor {
    Actor {
        user: "staff-naha".into(),
        role: Role::MunicipalStaff,
        zone: Zone::Lgwan,
    }
}

/// Uruma's residents (the source): A with two doses, B suspended, C deceased with a dose; and
/// Naha's own records of the same people after they moved (the asker).
fn movers(h: &Harness) -> (Vec<Person>, Vec<Person>) {
    with_towns(h);
    let mut ps = people(uruma(), 3, 31);
    for p in &mut ps {
        p.birth_date = openvrs_domain::person::BirthDate(parse_date("1980-01-01").unwrap());
        p.flags = Flags::default();
        assert!(p.my_number.is_some());
    }
    ps[1].flags.use_suspended = true;
    ps[2].flags.deceased_on = Some(parse_date("2022-01-01").unwrap());
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    for (p, doses) in ps.iter().zip([vec![1, 2], vec![1], vec![1]]) {
        for n in doses {
            let mut d = dose(n, if n == 1 { "2021-06-01" } else { "2021-06-22" });
            d.given_in = Some(uruma());
            h.store
                .add_dose(uruma(), &p.address_number, &d, &staff())
                .unwrap();
        }
    }
    let mut theirs = people(naha(), 3, 32);
    for (t, p) in theirs.iter_mut().zip(&ps) {
        t.birth_date = p.birth_date;
        t.flags = Flags::default();
    }
    h.store.put_persons(naha(), &theirs, &naha_staff()).unwrap();
    (ps, theirs)
}

fn ask(source: MunicipalityCode, p: &Person, ours: &Person) -> openvrs_store::InquiryRequest {
    openvrs_store::InquiryRequest {
        source,
        my_number: p.my_number.clone().unwrap(),
        address: ours.address_number.clone(),
        basis: "番号法第19条第16号(転入)".into(),
    }
}

pub fn inquiries_return_only_that_persons_doses(h: &Harness) {
    use openvrs_store::InquiryStatus::*;
    let (ps, ours) = movers(h);
    let a = h
        .store
        .inquire(naha(), &ask(uruma(), &ps[0], &ours[0]), &naha_staff())
        .unwrap();
    assert_eq!(a.status, Found);
    assert_eq!(a.address.as_ref(), Some(&ours[0].address_number));
    let numbers: Vec<u32> = a.doses.iter().map(|d| d.dose.number.get()).collect();
    assert_eq!(numbers, [1, 2], "that person's doses, nothing else");
    let b = h
        .store
        .inquire(naha(), &ask(uruma(), &ps[1], &ours[1]), &naha_staff())
        .unwrap();
    assert_eq!((b.status, b.doses.len()), (Suspended, 0));
    let c = h
        .store
        .inquire(naha(), &ask(uruma(), &ps[2], &ours[2]), &naha_staff())
        .unwrap();
    assert_eq!(
        (c.status, c.doses.len()),
        (Found, 1),
        "deceased does not block"
    );

    // Nobody, and a municipality that is not registered: the same answer.
    let mut stranger = ps[0].clone();
    stranger.my_number = Some(people(uruma(), 1, 99)[0].my_number.clone().unwrap());
    let nobody = h
        .store
        .inquire(naha(), &ask(uruma(), &stranger, &ours[0]), &naha_staff())
        .unwrap();
    let nowhere = h
        .store
        .inquire(
            naha(),
            &ask(code("131016"), &ps[0], &ours[0]),
            &naha_staff(),
        )
        .unwrap();
    assert_eq!((nobody.status, nobody.doses.len()), (NotFound, 0));
    assert_eq!((nowhere.status, nowhere.doses.len()), (NotFound, 0));
    assert_eq!(
        (nobody.message.clone(), nobody.basis.clone()),
        (nowhere.message.clone(), nowhere.basis.clone())
    );

    // Refused: no basis, or asking oneself.
    let mut no_basis = ask(uruma(), &ps[0], &ours[0]);
    no_basis.basis = " ".into();
    assert!(matches!(
        h.store.inquire(naha(), &no_basis, &naha_staff()),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        h.store
            .inquire(naha(), &ask(naha(), &ps[0], &ours[0]), &naha_staff()),
        Err(StoreError::Invalid(_))
    ));

    // One provision record per answered person, kept by the provider.
    let provisions = h.store.provisions(uruma(), None).unwrap();
    let mut answered: Vec<(String, openvrs_store::InquiryStatus, u64, i64)> = provisions
        .iter()
        .map(|p| {
            assert_eq!(p.asked_by_municipality, naha());
            assert_eq!(p.asked_by, "staff-naha");
            (
                p.address.to_string(),
                p.status,
                p.record_count,
                p.inquiry_id,
            )
        })
        .collect();
    answered.sort();
    let mut expected = vec![
        (ps[0].address_number.to_string(), Found, 2, a.id),
        (ps[1].address_number.to_string(), Suspended, 0, b.id),
        (ps[2].address_number.to_string(), Found, 1, c.id),
    ];
    expected.sort();
    assert_eq!(answered, expected);
    assert!(h.store.provisions(naha(), None).unwrap().is_empty());

    // The asker keeps its inquiries, newest first, without a My Number.
    let kept = h.store.inquiries(naha(), None).unwrap();
    assert_eq!(kept.len(), 5);
    assert_eq!(kept[0].id, nowhere.id);
    assert_eq!(kept.iter().find(|i| i.id == a.id).unwrap(), &a);

    // Attach: the records become the asker's own, marked as received by inquiry.
    let done = h
        .store
        .attach_inquiries(naha(), &[a.id], None, &naha_staff())
        .unwrap();
    assert_eq!((done.inquiries, done.doses, done.unchanged), (1, 2, 0));
    let attached = h.store.doses(naha(), &ours[0].address_number).unwrap();
    assert_eq!(attached.len(), 2);
    assert!(
        attached
            .iter()
            .all(|d| d.dose.source == DoseSource::Inquiry && d.dose.given_in == Some(uruma()))
    );
    assert!(matches!(
        h.store
            .attach_inquiries(naha(), &[a.id], None, &naha_staff()),
        Err(StoreError::Conflict(_))
    ));
    for id in [b.id, nobody.id, 999] {
        assert!(
            h.store
                .attach_inquiries(naha(), &[id], None, &naha_staff())
                .is_err()
        );
    }

    // Both disclosures show it; both audit chains verify; no My Number in either log.
    let theirs = h
        .store
        .disclosure(uruma(), &ps[0].address_number, &staff())
        .unwrap()
        .unwrap();
    assert_eq!(theirs.provisions.len(), 1);
    let mine = h
        .store
        .disclosure(naha(), &ours[0].address_number, &naha_staff())
        .unwrap()
        .unwrap();
    assert_eq!(
        mine.inquiries.len(),
        3,
        "found, nobody and nowhere were asked for this person"
    );
    for m in [uruma(), naha()] {
        h.store.verify_audit(m).unwrap();
        for e in h.store.audit_log(m).unwrap() {
            for p in &ps {
                assert!(!e.object.contains(&p.my_number.as_ref().unwrap().expose()));
            }
        }
    }
    assert!(
        h.store
            .audit_log(uruma())
            .unwrap()
            .iter()
            .any(|e| e.action == "inquiry.provide" && e.actor == "staff-naha")
    );
}

pub fn wrong_municipality_codes_never_match(h: &Harness) {
    use rand::{Rng, SeedableRng};
    let (ps, ours) = movers(h);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut tried = 0;
    while tried < 60 {
        let five = rng.gen_range(1_000..48_000);
        let Ok(wrong) = MunicipalityCode::from_five(five) else {
            continue;
        };
        if wrong == uruma() || wrong == naha() {
            continue;
        }
        tried += 1;
        let p = &ps[rng.gen_range(0..ps.len())];
        let answer = h
            .store
            .inquire(naha(), &ask(wrong, p, &ours[0]), &naha_staff())
            .unwrap();
        assert_eq!(
            answer.status,
            openvrs_store::InquiryStatus::NotFound,
            "{wrong}"
        );
        assert!(answer.doses.is_empty());
    }
    // Uruma's people asked of Naha (registered, but not where they live): nobody.
    for p in &ps {
        let answer = h
            .store
            .inquire(uruma(), &ask(naha(), p, &ps[0]), &staff())
            .unwrap();
        assert_eq!(answer.status, openvrs_store::InquiryStatus::NotFound);
    }
    assert!(h.store.provisions(uruma(), None).unwrap().is_empty());
    assert!(h.store.provisions(naha(), None).unwrap().is_empty());
}

pub fn bulk_inquiries_answer_every_row(h: &Harness) {
    use openvrs_store::{BulkRow, InquiryStatus::*, Malformed};
    let (ps, ours) = movers(h);
    let rows = [
        BulkRow {
            row: 2,
            input: Ok(ask(uruma(), &ps[0], &ours[0])),
        },
        BulkRow {
            row: 3,
            input: Err(Malformed {
                address: Some(ours[1].address_number.clone()),
                message: "3行目 個人番号: 検査用数字が一致しません / row 3 my_number: check digit"
                    .into(),
            }),
        },
        BulkRow {
            row: 4,
            input: Ok(ask(code("131016"), &ps[1], &ours[1])),
        },
        BulkRow {
            row: 5,
            input: Ok(ask(uruma(), &ps[1], &ours[1])),
        },
        BulkRow {
            row: 6,
            input: Ok(ask(naha(), &ps[2], &ours[2])),
        },
        BulkRow {
            row: 7,
            input: Ok(ask(uruma(), &ps[2], &ours[2])),
        },
    ];
    let job = h
        .store
        .create_inquiry_job(naha(), 6, &naha_staff())
        .unwrap();
    h.store
        .inquire_rows(naha(), job, &rows[..3], &naha_staff())
        .unwrap();
    let half = h.store.inquiry_job(naha(), job).unwrap().unwrap();
    assert_eq!((half.state.as_str(), half.done_rows), ("running", 3));
    h.store
        .inquire_rows(naha(), job, &rows[3..], &naha_staff())
        .unwrap();
    h.store.finish_inquiry_job(naha(), job, None).unwrap();
    let done = h.store.inquiry_job(naha(), job).unwrap().unwrap();
    assert_eq!(
        (done.state.as_str(), done.done_rows, done.total_rows),
        ("done", 6, 6)
    );
    assert_eq!(
        done.counts,
        [(Found, 2), (NotFound, 1), (Suspended, 1), (FormatError, 2)]
    );
    let answers = h.store.inquiries(naha(), Some(job)).unwrap();
    let statuses: Vec<_> = answers.iter().map(|i| (i.row.unwrap(), i.status)).collect();
    assert_eq!(
        statuses,
        [
            (2, Found),
            (3, FormatError),
            (4, NotFound),
            (5, Suspended),
            (6, FormatError),
            (7, Found)
        ]
    );
    assert!(answers[1].message.as_deref().unwrap().contains("3行目"));
    // Not part of the single inquiries' list.
    assert!(h.store.inquiries(naha(), None).unwrap().is_empty());
    // One provision per answered person.
    assert_eq!(h.store.provisions(uruma(), None).unwrap().len(), 3);
    // Attach every found row in one action; a second time finds nothing left.
    let attached = h
        .store
        .attach_inquiries(naha(), &[], Some(job), &naha_staff())
        .unwrap();
    assert_eq!((attached.inquiries, attached.doses), (2, 3));
    let again = h
        .store
        .attach_inquiries(naha(), &[], Some(job), &naha_staff())
        .unwrap();
    assert_eq!(again.inquiries, 0);
    // A job of another municipality is not found.
    assert!(matches!(
        h.store.inquire_rows(uruma(), job, &rows[..1], &staff()),
        Err(StoreError::NotFound(_))
    ));
    for m in [uruma(), naha()] {
        h.store.verify_audit(m).unwrap();
    }
}

pub fn inquiry_counts_see_volume_and_fishing(h: &Harness) {
    let (ps, ours) = movers(h);
    let within = 3_600_000_000;
    for source in ["472131", "131016", "271004", "011002"] {
        h.store
            .inquire(naha(), &ask(code(source), &ps[0], &ours[0]), &naha_staff())
            .unwrap();
    }
    h.store
        .inquire(naha(), &ask(uruma(), &ps[1], &ours[1]), &naha_staff())
        .unwrap();
    let counts = h
        .store
        .inquiry_counts(naha(), "staff-naha", ps[0].my_number.as_ref(), within)
        .unwrap();
    assert_eq!(
        (
            counts.by_user,
            counts.by_municipality,
            counts.sources_for_person
        ),
        (5, 5, 4)
    );
    let other = h
        .store
        .inquiry_counts(naha(), "someone-else", ps[1].my_number.as_ref(), within)
        .unwrap();
    assert_eq!(
        (
            other.by_user,
            other.by_municipality,
            other.sources_for_person
        ),
        (0, 5, 1)
    );
}

pub fn signing_keys_rotate_and_stay_sealed(h: &Harness) {
    assert!(h.store.active_signing_key("shc").unwrap().is_none());
    h.store
        .add_signing_key(
            "shc",
            "kid-a",
            r#"{"kid":"kid-a"}"#,
            b"secret-a-32-bytes-long-000000000",
            &Actor::console(),
        )
        .unwrap();
    let (kid, secret) = h.store.active_signing_key("shc").unwrap().unwrap();
    assert_eq!(
        (kid.as_str(), secret.as_slice()),
        ("kid-a", &b"secret-a-32-bytes-long-000000000"[..])
    );
    h.store
        .add_signing_key(
            "shc",
            "kid-b",
            r#"{"kid":"kid-b"}"#,
            b"secret-b-32-bytes-long-000000000",
            &Actor::console(),
        )
        .unwrap();
    let (kid, _) = h.store.active_signing_key("shc").unwrap().unwrap();
    assert_eq!(kid, "kid-b", "the newest key signs");
    let all = h.store.signing_keys("shc").unwrap();
    let kids: Vec<(&str, bool)> = all
        .iter()
        .map(|k| (k.kid.as_str(), k.retired_at.is_some()))
        .collect();
    assert_eq!(
        kids,
        [("kid-b", false), ("kid-a", true)],
        "retired keys stay published"
    );
    assert!(h.store.signing_keys("vds").unwrap().is_empty());
    // Sealed under the master key: another master key opens nothing.
    let other = h.reopen(&MasterKey::generate()).unwrap();
    assert!(matches!(
        other.active_signing_key("shc"),
        Err(StoreError::Crypto(_))
    ));
}

pub fn certificates_are_recorded_listed_and_revoked_once(h: &Harness) {
    use openvrs_domain::certificate::{Channel, Format, Kind};
    with_towns(h);
    let ps = people(uruma(), 2, 31);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    let record = |id: &str, p: &Person, format: Format, rid: Option<&str>| {
        openvrs_store::CertificateRecord {
            id: id.into(),
            address_number: p.address_number.clone(),
            kind: Kind::Domestic,
            format,
            channel: Channel::Counter,
            kid: "kid-a".into(),
            rid: rid.map(str::to_owned),
            issued_at: 0,
            issued_by: "ignored".into(),
            revoked_at: Some(1),
            revoked_by: None,
            revocation_reason: None,
            application: None,
        }
    };
    let a = h
        .store
        .record_certificate(
            uruma(),
            &record("CERT00000001", &ps[0], Format::Shc, Some("rid-a")),
            &staff(),
        )
        .unwrap();
    assert_eq!(a.issued_by, "staff-0001", "the store says who and when");
    assert!(a.issued_at > 0 && a.revoked_at.is_none());
    h.store
        .record_certificate(
            uruma(),
            &record("CERT00000002", &ps[1], Format::Vds, None),
            &staff(),
        )
        .unwrap();
    // The same id twice, a person of another town, an unknown town: refused, nothing written.
    assert!(matches!(
        h.store.record_certificate(
            uruma(),
            &record("CERT00000001", &ps[1], Format::Shc, None),
            &staff()
        ),
        Err(StoreError::Conflict(_))
    ));
    let stranger = people(naha(), 1, 32);
    assert!(matches!(
        h.store.record_certificate(
            uruma(),
            &record("CERT00000003", &stranger[0], Format::Shc, None),
            &staff()
        ),
        Err(StoreError::NotFound("person"))
    ));
    assert!(
        h.store
            .record_certificate(
                code("011002"),
                &record("CERT00000004", &ps[0], Format::Shc, None),
                &staff()
            )
            .is_err()
    );
    assert_eq!(h.store.certificates(uruma(), None).unwrap().len(), 2);
    let mine = h
        .store
        .certificates(uruma(), Some(&ps[0].address_number))
        .unwrap();
    assert_eq!(mine, vec![a.clone()]);
    assert!(
        h.store.certificates(naha(), None).unwrap().is_empty(),
        "per municipality"
    );

    // Revocation: once, with a reason; the rid joins its key's list; another town cannot.
    assert!(
        h.store
            .revoke_certificate(naha(), "CERT00000001", "誤発行", &staff())
            .is_err()
    );
    assert!(matches!(
        h.store
            .revoke_certificate(uruma(), "CERT00000001", "", &staff()),
        Err(StoreError::Invalid(_))
    ));
    let r = h
        .store
        .revoke_certificate(uruma(), "CERT00000001", "誤発行", &staff())
        .unwrap();
    assert_eq!(r.revocation_reason.as_deref(), Some("誤発行"));
    assert!(matches!(
        h.store
            .revoke_certificate(uruma(), "CERT00000001", "誤発行", &staff()),
        Err(StoreError::Conflict(_))
    ));
    h.store
        .revoke_certificate(uruma(), "CERT00000002", "誤発行", &staff())
        .unwrap();
    let list = h.store.revocations("kid-a").unwrap();
    assert_eq!(list.len(), 1, "only a certificate with a rid is listed");
    assert_eq!(list[0].0, "rid-a");
    assert!(h.store.revocations("kid-b").unwrap().is_empty());
    let log = h.store.audit_log(uruma()).unwrap();
    let acts: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        acts.iter().filter(|a| **a == "certificate.issue").count(),
        2
    );
    assert_eq!(
        acts.iter().filter(|a| **a == "certificate.revoke").count(),
        2
    );
    h.store.verify_audit(uruma()).unwrap();
}

/// A database as the previous release left it (its migrations stop at 8: persons without
/// `key_version`, no index of the audit log by object), with data in it, opened by this
/// program: migrations 9 and 10 are applied, everything written before reads back, and what
/// they are for (data key rotation, a person's audit trail) works on it. The previous release's
/// state is made by writing with this program and then undoing migrations 9 and 10 exactly
/// (they only add that column and that index).
pub fn upgrade_from_the_previous_schema_keeps_the_data(h: &Harness) {
    with_towns(h);
    let ps = people(uruma(), 30, 41);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    h.store
        .add_dose(
            uruma(),
            &ps[0].address_number,
            &dose(1, "2021-06-01"),
            &staff(),
        )
        .unwrap();
    h.exec(
        "DROP INDEX audit_log_object; ALTER TABLE persons DROP COLUMN key_version; \
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

/// A data key rotation while another process (a second store on the same database, its keys
/// cached) reads and writes; then the master key is rotated. Nobody's data changes, nothing
/// becomes unreadable, and every act is in the chains.
pub fn data_and_master_keys_rotate_under_another_process(h: &Harness) {
    with_towns(h);
    let mut ps = people(uruma(), 25, 31);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    h.store
        .put_persons(naha(), &people(naha(), 3, 31), &staff())
        .unwrap();
    h.store
        .add_signing_key("shc", "kid-a", "{}", b"secret-a", &Actor::console())
        .unwrap();
    let other = h.reopen(&h.master).unwrap();
    let read_all = |store: &dyn openvrs_store::Store, ps: &[Person]| {
        for p in ps {
            let got = store.person(uruma(), &p.address_number, &staff()).unwrap();
            assert_eq!(got.as_ref(), Some(p));
        }
    };
    read_all(&*other, &ps);

    let began = h
        .store
        .begin_data_key_rotation(uruma(), &Actor::console())
        .unwrap();
    assert_eq!((began.version, began.resumed), (2, false));
    let again = h
        .store
        .begin_data_key_rotation(uruma(), &Actor::console())
        .unwrap();
    assert_eq!(
        (again.version, again.resumed),
        (2, true),
        "taken up, not begun twice"
    );
    let first = h.store.reseal_batch(uruma(), "", 10).unwrap();
    assert_eq!(first.resealed, 10);
    let after = first.next.clone().unwrap();
    // The other process, its keys cached before the rotation, writes a changed person: it is
    // sealed with the new key, and everyone reads both kinds of row.
    ps[20].name = openvrs_domain::name::Name::parse("新名 太郎").unwrap();
    other.put_persons(uruma(), &ps[20..21], &staff()).unwrap();
    let versions = |m| h.store.stats(m).unwrap().persons_by_key_version;
    assert_eq!(versions(uruma()), [(1, 14), (2, 11)]);
    read_all(&*other, &ps);
    read_all(&*h.store, &ps);
    assert!(
        !h.store
            .finish_data_key_rotation(uruma(), &Actor::console())
            .unwrap(),
        "not while rows need the old key"
    );
    let mut next = Some(after);
    while let Some(after) = next {
        next = h.store.reseal_batch(uruma(), &after, 10).unwrap().next;
    }
    assert!(
        h.store
            .finish_data_key_rotation(uruma(), &Actor::console())
            .unwrap()
    );
    assert_eq!(versions(uruma()), [(2, 25)]);
    assert_eq!(versions(naha()), [(1, 3)], "another town's key is its own");
    read_all(&*other, &ps);
    let log = h.store.audit_log(uruma()).unwrap();
    let rotation: Vec<&str> = log
        .iter()
        .filter(|e| e.action == "keys.data.rotate")
        .map(|e| e.object.as_str())
        .collect();
    assert_eq!(
        rotation,
        [
            "data key v2 (begun)",
            "data key v2 (resumed)",
            "data key v2 (finished; destroyed v1)"
        ]
    );

    // The master key: every key rewrapped, the old master opens nothing, the data is the same.
    let new = MasterKey::generate();
    assert_eq!(
        h.store.rewrap_master_key(&new, &Actor::console()).unwrap(),
        6 + 1,
        "two towns' data, index and audit keys, and one signing key"
    );
    let old = h.reopen(&h.master).unwrap();
    assert!(matches!(old.check_master_key(), Err(StoreError::Crypto(_))));
    let renewed = h.reopen(&new).unwrap();
    renewed.check_master_key().unwrap();
    read_all(&*renewed, &ps);
    assert_eq!(
        renewed
            .active_signing_key("shc")
            .unwrap()
            .unwrap()
            .1
            .as_slice(),
        b"secret-a"
    );
    for m in [uruma(), naha()] {
        renewed.verify_audit(m).unwrap();
        let actions: Vec<String> = renewed
            .audit_log(m)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        for action in ["keys.signing.add", "keys.master.rotate"] {
            assert!(actions.iter().any(|a| a == action), "{m}: {action}");
        }
    }
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

/// Doses counted by date, sex, age group on the date and dose number; other towns and doses
/// not given are not counted.
pub fn doses_are_counted_for_open_data(h: &Harness) {
    with_towns(h);
    let mut ps = people(uruma(), 3, 61);
    ps[0].birth_date = openvrs_domain::person::BirthDate(parse_date("1956-06-01").unwrap());
    ps[1].birth_date = openvrs_domain::person::BirthDate(parse_date("1990-01-01").unwrap());
    ps[2].birth_date = openvrs_domain::person::BirthDate(parse_date("1950-01-01").unwrap());
    ps[0].sex = openvrs_domain::sex::Sex::parse("2").unwrap();
    ps[1].sex = openvrs_domain::sex::Sex::parse("2").unwrap();
    ps[2].sex = openvrs_domain::sex::Sex::parse("1").unwrap();
    for p in &mut ps {
        p.flags = Flags::default();
    }
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    for (p, date) in [(0, "2021-05-31"), (1, "2021-05-31"), (2, "2021-05-31")] {
        h.store
            .add_dose(uruma(), &ps[p].address_number, &dose(1, date), &staff())
            .unwrap();
    }
    h.store
        .add_dose(
            uruma(),
            &ps[0].address_number,
            &dose(2, "2021-06-21"),
            &staff(),
        )
        .unwrap();
    let mut not_given = dose(3, "2021-12-01");
    not_given.status = DoseStatus::NotGiven;
    h.store
        .add_dose(uruma(), &ps[1].address_number, &not_given, &staff())
        .unwrap();
    h.store
        .put_persons(naha(), &people(naha(), 2, 61), &staff())
        .unwrap();
    let counts: Vec<(String, char, &str, u32, u64)> = h
        .store
        .dose_counts(uruma())
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.date.to_string(),
                c.sex.open_data(),
                c.age.code(),
                c.dose_number,
                c.count,
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("2021-05-31".to_owned(), 'M', "65-", 1, 1),
            ("2021-05-31".to_owned(), 'F', "-64", 1, 2),
            ("2021-06-21".to_owned(), 'F', "65-", 2, 1),
        ]
    );
    assert!(h.store.dose_counts(naha()).unwrap().is_empty());
}
