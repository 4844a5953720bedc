//! Venue tablets: a dose recorded once and never overwritten, idempotent retries, group
//! commits, misread OCR lines, and conflicts resolved by staff.

use openvrs_domain::{
    audit::{Actor, Role, Zone},
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, Short},
    person::{Flags, Person},
};
use openvrs_store::StoreError;

use super::fixtures::{dose, naha, people, staff, two_people, uruma, with_towns};
use crate::Harness;

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
