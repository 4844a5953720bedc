//! What the scenarios start from: the two towns, their staff, synthetic residents and doses.

use openvrs_domain::{
    audit::{Actor, Role, Zone},
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::MunicipalityCode,
    person::{Flags, Person},
};
use openvrs_synth::Generator;

use crate::Harness;

/// The municipality code `s`, which must be valid.
pub fn code(s: &str) -> MunicipalityCode {
    MunicipalityCode::parse(s).unwrap()
}

/// うるま市, where most scenarios' residents live.
pub fn uruma() -> MunicipalityCode {
    code("472131")
}

/// 那覇市, the other town.
pub fn naha() -> MunicipalityCode {
    code("472018")
}

/// A municipal staff member on the LGWAN.
pub fn staff() -> Actor {
    Actor {
        user: "staff-0001".into(),
        role: Role::MunicipalStaff,
        zone: Zone::Lgwan,
    }
}

/// Both towns registered.
pub fn with_towns(h: &Harness) {
    h.store
        .add_municipality(uruma(), "うるま市", &Actor::console())
        .unwrap();
    h.store
        .add_municipality(naha(), "那覇市", &Actor::console())
        .unwrap();
}

/// `n` synthetic residents of `m` from `seed`, not yet stored.
pub fn people(m: MunicipalityCode, n: usize, seed: u64) -> Vec<Person> {
    Generator::new(m, seed).take(n).collect()
}

/// Both towns registered, and `n` synthetic residents of Uruma from `seed` put by staff.
pub fn residents(h: &Harness, n: usize, seed: u64) -> Vec<Person> {
    with_towns(h);
    let ps = people(uruma(), n, seed);
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    ps
}

/// Dose `n`, given on `date` and recorded by staff.
pub fn dose(n: u32, date: &str) -> Dose {
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

/// Both towns registered; one person born 1980-01-01 in Uruma, and another with a voucher.
pub fn two_people(h: &Harness) -> Vec<Person> {
    with_towns(h);
    let mut ps = people(uruma(), 2, 21);
    ps[0].birth_date = openvrs_domain::person::BirthDate(parse_date("1980-01-01").unwrap());
    ps[0].flags = Flags::default();
    h.store.put_persons(uruma(), &ps, &staff()).unwrap();
    ps
}
