//! Keys: personal data sealed at rest under per-municipality keys wrapped by the master key;
//! crypto-shredding, data and master key rotations, and the certificate signing keys.

use std::collections::HashSet;

use openvrs_crypto::MasterKey;
use openvrs_domain::{audit::Actor, ids::MyNumber, person::Person};
use openvrs_store::StoreError;

use super::fixtures::{naha, people, residents, staff, uruma, with_towns};
use crate::Harness;

pub fn crypto_shredding_makes_data_unreadable(h: &Harness) {
    let ps = residents(h, 10, 10);
    let nps = people(naha(), 3, 10);
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
    let ps = residents(h, 2, 11);
    let (a, b) = (ps[0].address_number.as_str(), ps[1].address_number.as_str());
    h.exec(&format!(
        "UPDATE persons SET name_sealed = (SELECT name_sealed FROM persons \
         WHERE municipality_code = '472131' AND address_number = '{b}') \
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
    let ps = residents(h, 2, 12);
    let store = h.reopen(&MasterKey::generate()).unwrap();
    let err = store
        .person(uruma(), &ps[0].address_number, &staff())
        .unwrap_err();
    assert!(matches!(err, StoreError::Crypto(_)), "{err}");
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

/// A data key rotation while another process (a second store on the same database, its keys
/// cached) reads and writes; then the master key is rotated. Nobody's data changes, nothing
/// becomes unreadable, and every act is in the chains.
pub fn data_and_master_keys_rotate_under_another_process(h: &Harness) {
    let mut ps = residents(h, 25, 31);
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
