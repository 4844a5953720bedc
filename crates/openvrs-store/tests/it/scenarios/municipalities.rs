//! Municipalities: each registered once, and what is counted of each for open data.

use openvrs_domain::{audit::Actor, date::parse_date, dose::DoseStatus, person::Flags};
use openvrs_store::StoreError;

use super::fixtures::{code, dose, naha, people, staff, uruma, with_towns};
use crate::Harness;

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
