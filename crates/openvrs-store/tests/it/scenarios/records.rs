//! Records: doses (no cap, quality rules, corrections and deletions with their history), the
//! vaccination ledger in and out, the quality report, flags, and the individual's rights.

use std::collections::HashSet;

use openvrs_domain::{
    date::parse_date,
    dose::{Dose, DoseSource, Short},
    ids::{AddressNumber, MyNumber},
    person::{Flags, MovedOut, Person},
};
use openvrs_store::StoreError;

use super::fixtures::{dose, naha, people, residents, staff, two_people, uruma, with_towns};
use crate::Harness;

pub fn flags_are_stored(h: &Harness) {
    let ps = residents(h, 3, 6);
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
    let ps = residents(h, 2, 7);
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

fn rules_of(err: StoreError) -> Vec<&'static str> {
    match err {
        StoreError::Quality(f) => f.into_iter().map(|f| f.rule.code()).collect(),
        other => panic!("expected a quality error, got {other}"),
    }
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
