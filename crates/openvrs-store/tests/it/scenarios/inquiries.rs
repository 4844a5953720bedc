//! Inquiries between municipalities (照会・提供): a person's doses and nothing else, never
//! another town's, in single and bulk inquiries, with the provider's records of what it gave.

use openvrs_domain::{
    audit::{Actor, Role, Zone},
    date::parse_date,
    dose::DoseSource,
    ids::MunicipalityCode,
    person::{Flags, Person},
};
use openvrs_store::StoreError;

use super::fixtures::{code, dose, naha, people, staff, uruma, with_towns};
use crate::Harness;

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
