//! The service crate's use cases, called directly on a real store (a temporary SQLite file on a
//! clock the test sets), as the pages, the API and the console call them.

#![allow(clippy::unwrap_used)] // tests panic on purpose: that is how they fail

use std::sync::Arc;

use openvrs_crypto::{MasterKey, credentials::secret_digest, credentials::verify_password};
use openvrs_domain::{
    audit::{Actor, Role, SecurityEventKind, Zone},
    date::{ManualClock, UnixMicros},
    ids::{AddressNumber, MunicipalityCode},
    person::Person,
};
use openvrs_service::{
    Failure, accounts,
    inquiry::{self, Limits, Refusal},
};
use openvrs_store::{BulkRow, Credential, InquiryRequest, InquiryStatus, Location, Store};
use openvrs_synth::Generator;

const URUMA: &str = "472131";
const NAHA: &str = "472018";
/// 2026-12-04T00:00:00Z.
const NOW: i64 = 1_796_342_400_000_000;

struct Town {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    /// Residents of Naha (the source of inquiries) and of Uruma (who moved there).
    naha: Vec<Person>,
    uruma: Vec<Person>,
}

fn code(c: &str) -> MunicipalityCode {
    MunicipalityCode::parse(c).unwrap()
}

fn staff(user: &str) -> Actor {
    Actor {
        user: user.into(),
        role: Role::MunicipalStaff,
        zone: Zone::Lgwan,
    }
}

/// Two towns on one store: Naha's residents, and Uruma's - the same people, moved.
fn town() -> Town {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(UnixMicros(NOW)));
    let store = openvrs_store::open_with_clock(
        &Location::Sqlite {
            path: dir.path().join("openvrs.sqlite"),
            create: true,
        },
        MasterKey::generate(),
        clock.clone(),
    )
    .unwrap();
    let console = Actor::console();
    store
        .add_municipality(code(NAHA), "那覇市", &console)
        .unwrap();
    store
        .add_municipality(code(URUMA), "うるま市", &console)
        .unwrap();
    let naha: Vec<Person> = {
        let mut g = Generator::new(code(NAHA), 7);
        (0..20).map(|_| g.person()).collect()
    };
    let uruma: Vec<Person> = {
        let mut g = Generator::new(code(URUMA), 8);
        naha.iter()
            .map(|p| Person {
                my_number: p.my_number.clone(),
                ..g.person()
            })
            .collect()
    };
    store.put_persons(code(NAHA), &naha, &console).unwrap();
    store.put_persons(code(URUMA), &uruma, &console).unwrap();
    Town {
        store,
        clock,
        _dir: dir,
        naha,
        uruma,
    }
}

fn request(t: &Town, i: usize) -> InquiryRequest {
    InquiryRequest {
        source: code(NAHA),
        my_number: t.naha[i].my_number.clone().unwrap(),
        address: t.uruma[i].address_number.clone(),
        basis: "予防接種法施行規則第2条の7".into(),
    }
}

fn limits(per_user_per_hour: u64) -> Limits {
    Limits {
        per_user_per_hour,
        ..Limits::default()
    }
}

#[test]
fn an_inquiry_is_answered_within_its_limits_then_refused_with_an_alert() {
    let t = town();
    let clerk = staff("clerk-1");
    for i in 0..2 {
        let asked =
            inquiry::ask(&*t.store, code(URUMA), &request(&t, i), &clerk, &limits(2)).unwrap();
        let answer = asked.answer.expect("answered within the limit");
        assert_eq!(answer.status, InquiryStatus::Found, "Naha holds the person");
        assert!(asked.alerts.is_empty());
    }
    let asked = inquiry::ask(&*t.store, code(URUMA), &request(&t, 2), &clerk, &limits(2)).unwrap();
    assert_eq!(asked.answer.unwrap_err(), Refusal::Volume);
    assert_eq!(
        asked.alerts.iter().map(|a| a.kind).collect::<Vec<_>>(),
        [SecurityEventKind::InquiryVolume]
    );
    // Another clerk is not held to the first one's count; an hour later neither is.
    let other = staff("clerk-2");
    assert!(
        inquiry::ask(&*t.store, code(URUMA), &request(&t, 2), &other, &limits(2))
            .unwrap()
            .answer
            .is_ok()
    );
    t.clock.advance_micros(3_600_000_001);
    assert!(
        inquiry::ask(&*t.store, code(URUMA), &request(&t, 3), &clerk, &limits(2))
            .unwrap()
            .answer
            .is_ok()
    );
}

#[test]
fn an_inquiry_about_someone_not_a_resident_is_refused_and_reported() {
    let t = town();
    let clerk = staff("clerk-1");
    let mut q = request(&t, 0);
    // Naha's own address number: not one of Uruma's residents.
    q.address = t.naha[0].address_number.clone();
    let asked = inquiry::ask(&*t.store, code(URUMA), &q, &clerk, &Limits::default()).unwrap();
    assert_eq!(asked.answer.unwrap_err(), Refusal::NotOwnResident);
    assert_eq!(asked.alerts.len(), 1);
    assert_eq!(
        asked.alerts[0].kind,
        SecurityEventKind::InquiryNotOwnResident
    );
    assert!(asked.alerts[0].detail.contains("clerk-1"));
}

#[test]
fn a_bulk_job_reports_rows_naming_non_residents_once() {
    let t = town();
    let clerk = staff("clerk-1");
    let row = |i: usize, q: InquiryRequest| BulkRow {
        row: i as u64 + 2,
        input: Ok(q),
    };
    let clean: Vec<BulkRow> = (0..5).map(|i| row(i, request(&t, i))).collect();
    let job = t.store.create_inquiry_job(code(URUMA), 5, &clerk).unwrap();
    let alert =
        inquiry::run_bulk(&*t.store, code(URUMA), job, &clean, &clerk, &mut |_, _| {}).unwrap();
    assert_eq!(alert, None, "every row names a resident");

    let mut progress = Vec::new();
    let mut hostile: Vec<BulkRow> = (0..5).map(|i| row(i, request(&t, i))).collect();
    for r in hostile.iter_mut().take(2) {
        if let Ok(q) = &mut r.input {
            q.address = AddressNumber::parse("999999999999999").unwrap();
        }
    }
    let job = t.store.create_inquiry_job(code(URUMA), 5, &clerk).unwrap();
    let alert = inquiry::run_bulk(
        &*t.store,
        code(URUMA),
        job,
        &hostile,
        &clerk,
        &mut |d, n| progress.push((d, n)),
    )
    .unwrap()
    .expect("an alert");
    assert_eq!(alert.kind, SecurityEventKind::InquiryNotOwnResident);
    assert!(alert.detail.contains("2 of 5"), "{}", alert.detail);
    assert_eq!(progress.last(), Some(&(5, 5)));
    let j = t.store.inquiry_job(code(URUMA), job).unwrap().unwrap();
    assert_eq!(j.state, "done");
    assert_eq!(inquiry::refused(&j.counts), 2);
}

#[test]
fn a_security_event_is_stamped_by_the_stores_clock() {
    let t = town();
    t.clock.set(UnixMicros(NOW + 42));
    let event = openvrs_service::security_event(
        &*t.store,
        SecurityEventKind::InquiryFishing,
        Some(code(URUMA)),
        Some("clerk-1".into()),
        None,
        "detail".into(),
    )
    .unwrap();
    assert_eq!(event.at, NOW + 42);
    let stored = t.store.security_events(Some(code(URUMA)), 10).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].id, stored[0].at), (event.id, NOW + 42));
}

#[test]
fn an_account_is_stored_with_a_hash_and_its_secret_shown_once() {
    let t = town();
    let national = Actor {
        user: "kuni".into(),
        role: Role::National,
        zone: Zone::Lgwan,
    };
    let issued = accounts::issue(
        &*t.store,
        accounts::Request {
            user: "clerk-9".into(),
            role: "staff".into(),
            municipality: Some(URUMA.into()),
            prefecture: None,
            venue: None,
            password: None,
        },
        &national,
    )
    .unwrap();
    let password = issued.shown_once.expect("a generated password");
    let (account, credential) = t.store.account(&issued.account.id).unwrap().unwrap();
    assert_eq!(account.binding.municipality(), Some(code(URUMA)));
    match credential {
        Credential::PasswordHash(phc) => assert!(verify_password(&password, &phc)),
        _ => panic!("a person has a password"),
    }
    let device = accounts::issue(
        &*t.store,
        accounts::Request {
            user: "tablet-1".into(),
            role: "venue".into(),
            municipality: Some(URUMA.into()),
            prefecture: None,
            venue: Some("うるま市民体育館".into()),
            password: None,
        },
        &national,
    )
    .unwrap();
    let token = device.shown_once.expect("a device token");
    let found = t
        .store
        .account_by_token(&secret_digest(&token))
        .unwrap()
        .unwrap();
    assert_eq!(found.id, device.account.id);
    // A refused request stores nothing.
    let before = t.store.accounts().unwrap().len();
    let refused = accounts::issue(
        &*t.store,
        accounts::Request {
            user: "clerk-10".into(),
            role: "staff".into(),
            municipality: Some("999999".into()),
            prefecture: None,
            venue: None,
            password: None,
        },
        &national,
    );
    assert!(refused.is_err());
    assert_eq!(t.store.accounts().unwrap().len(), before);
}

#[test]
fn a_targets_file_with_one_bad_row_imports_nothing_and_names_the_row() {
    let t = town();
    let mut csv = Vec::new();
    let mut g = Generator::new(code(URUMA), 99);
    openvrs_synth::write_targets_csv(&mut g, 30, openvrs_synth::Encoding::Utf8, &mut csv).unwrap();
    let mut text = String::from_utf8(csv).unwrap();
    // The 16th row after the header: a birth date that is no date.
    let lines: Vec<&str> = text.lines().collect();
    let bad = lines[16]
        .replacen(",19", ",1X", 1)
        .replacen(",20", ",2X", 1);
    assert_ne!(bad, lines[16], "the row was changed");
    text = text.replace(lines[16], &bad);
    let before = t.store.count_persons(code(URUMA)).unwrap();
    let bytes = text.into_bytes();
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(bytes.clone())))
    };
    let failed = openvrs_service::import_targets(
        &*t.store,
        &open,
        code(URUMA),
        openvrs_csv::Encoding::Auto,
        &Actor::console(),
    )
    .unwrap_err();
    match failed {
        Failure::Rows(rows) => {
            assert!(
                rows.iter()
                    .all(|r| r.starts_with("16行目") && r.contains("row 16")),
                "{rows:?}"
            );
            assert!(rows.iter().any(|r| r.contains("生年月日")), "{rows:?}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(t.store.count_persons(code(URUMA)).unwrap(), before);
}
