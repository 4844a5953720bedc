//! Data-quality rules for dose records (the 2021 lesson: millions of records needed checking).
//!
//! The same rules run on every write (an error blocks it, a warning is reported) and over a
//! whole municipality as a report. They are pure: the caller supplies the person, their other
//! doses, the catalogue and today's date.

use time::Date;

use crate::{
    dose::{Dose, DoseSource, DoseStatus},
    ids::VoucherNumber,
    product::Catalogue,
};

/// Whether a finding blocks the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    FutureDate,
    BeforeBirth,
    AfterDeath,
    DuplicateDose,
    UnknownProduct,
    OutOfOrder,
    IntervalTooShort,
    ForeignVoucher,
    LotFormat,
    MissingEarlierDose,
}

impl Rule {
    pub const ALL: [Rule; 10] = [
        Rule::FutureDate,
        Rule::BeforeBirth,
        Rule::AfterDeath,
        Rule::DuplicateDose,
        Rule::UnknownProduct,
        Rule::OutOfOrder,
        Rule::IntervalTooShort,
        Rule::ForeignVoucher,
        Rule::LotFormat,
        Rule::MissingEarlierDose,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Rule::FutureDate => "future_date",
            Rule::BeforeBirth => "before_birth",
            Rule::AfterDeath => "after_death",
            Rule::DuplicateDose => "duplicate_dose",
            Rule::UnknownProduct => "unknown_product",
            Rule::OutOfOrder => "out_of_order",
            Rule::IntervalTooShort => "interval_too_short",
            Rule::ForeignVoucher => "foreign_voucher",
            Rule::LotFormat => "lot_format",
            Rule::MissingEarlierDose => "missing_earlier_dose",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn ja(self) -> &'static str {
        match self {
            Rule::FutureDate => "接種日が未来の日付です",
            Rule::BeforeBirth => "接種日が生年月日より前です",
            Rule::AfterDeath => "接種日が死亡日より後です",
            Rule::DuplicateDose => "同じ接種回の記録が既にあります（訂正してください）",
            Rule::UnknownProduct => "ワクチンが製品一覧にありません",
            Rule::OutOfOrder => "接種回と接種日の順序が合いません",
            Rule::IntervalTooShort => "前回接種からの間隔が製品の最短間隔より短いです",
            Rule::ForeignVoucher => "この自治体がこの方に発行した接種券ではありません",
            Rule::LotFormat => "ロット番号が製品の書式に合いません",
            Rule::MissingEarlierDose => "前の接種回の記録がありません(接種回を確認してください)",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Rule::FutureDate => "the vaccination date is in the future",
            Rule::BeforeBirth => "the vaccination date is before the date of birth",
            Rule::AfterDeath => "the vaccination date is after the date of death",
            Rule::DuplicateDose => "this dose is already recorded (correct it instead)",
            Rule::UnknownProduct => "the vaccine is not in the product catalogue",
            Rule::OutOfOrder => "the dose number and the dates are out of order",
            Rule::IntervalTooShort => {
                "the interval since the previous dose is shorter than the product's minimum"
            }
            Rule::ForeignVoucher => {
                "the voucher was not issued to this person by this municipality"
            }
            Rule::LotFormat => "the lot number does not have the product's format",
            Rule::MissingEarlierDose => "an earlier dose is not recorded (check the dose number)",
        }
    }
}

/// A rule that fired, and how hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.rule.ja(), self.rule.en())
    }
}

/// What the rules need to know of the person.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub birth: Date,
    pub deceased_on: Option<Date>,
    /// The vouchers this municipality issued to the person.
    pub vouchers: &'a [VoucherNumber],
}

/// Checks `dose` against the person and their `others` (current doses, without `dose` itself).
/// Errors come first.
pub fn check(
    subject: &Subject<'_>,
    others: &[&Dose],
    dose: &Dose,
    catalogue: &Catalogue,
    today: Date,
) -> Vec<Finding> {
    use Rule::*;
    use Severity::*;
    let mut found = Vec::new();
    let mut fire = |severity, rule| found.push(Finding { severity, rule });
    let given = |d: &&&Dose| d.status == DoseStatus::Given;

    if dose.date > today {
        fire(Error, FutureDate);
    }
    if dose.date < subject.birth {
        fire(Error, BeforeBirth);
    }
    if subject.deceased_on.is_some_and(|died| dose.date > died) {
        fire(Error, AfterDeath);
    }
    if dose.status == DoseStatus::Given
        && others.iter().filter(given).any(|o| o.number == dose.number)
    {
        fire(Error, DuplicateDose);
    }
    match catalogue.lot_matches(dose.product.as_str(), dose.lot.as_str()) {
        None => fire(Error, UnknownProduct),
        Some(false) if !dose.lot.as_str().is_empty() => fire(Warning, LotFormat),
        Some(_) => {}
    }
    if dose.status == DoseStatus::Given {
        let out_of_order = others.iter().filter(given).any(|o| {
            (o.number < dose.number && dose.date < o.date)
                || (o.number > dose.number && dose.date > o.date)
        });
        if out_of_order {
            fire(Warning, OutOfOrder);
        }
        // A dose number is taken as given (from the voucher), never renumbered: a gap is for
        // staff to look at.
        let previous_number = dose.number.get().checked_sub(1).filter(|n| *n > 0);
        if let Some(n) = previous_number
            && !others.iter().filter(given).any(|o| o.number.get() == n)
        {
            fire(Warning, MissingEarlierDose);
        }
        let previous = others
            .iter()
            .filter(given)
            .filter(|o| o.number < dose.number && o.date <= dose.date)
            .max_by_key(|o| o.number);
        if let (Some(prev), Some(product)) = (previous, catalogue.get(dose.product.as_str())) {
            let days = (dose.date - prev.date).whole_days();
            if days < i64::from(product.min_interval_days) {
                fire(Warning, IntervalTooShort);
            }
        }
    }
    if let Some(v) = &dose.voucher
        && !subject.vouchers.contains(v)
    {
        // Records from other systems (ledger files, other municipalities) may carry vouchers
        // this municipality never issued: listed for staff, not blocked.
        match dose.source {
            DoseSource::Tablet | DoseSource::Staff => fire(Error, ForeignVoucher),
            DoseSource::Csv => fire(Warning, ForeignVoucher),
            DoseSource::Inquiry => {}
        }
    }
    found.sort();
    found
}

/// Whether any finding blocks the write.
pub fn blocks(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Every finding of every dose of one person, as (index into `doses`, finding).
pub fn check_person(
    subject: &Subject<'_>,
    doses: &[Dose],
    catalogue: &Catalogue,
    today: Date,
) -> Vec<(usize, Finding)> {
    let mut out = Vec::new();
    for (i, dose) in doses.iter().enumerate() {
        let others: Vec<&Dose> = doses
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, d)| d)
            .collect();
        out.extend(
            check(subject, &others, dose, catalogue, today)
                .into_iter()
                .map(|f| (i, f)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::{
        dose::{DoseNumber, Short},
        product::sample,
    };

    fn dose(n: u32, on: Date) -> Dose {
        Dose {
            number: DoseNumber::new(n).unwrap(),
            status: DoseStatus::Given,
            date: on,
            product: Short::parse("comirnaty").unwrap(),
            lot: Short::parse("FF1234").unwrap(),
            venue: Short::parse("会場").unwrap(),
            doctor: Short::parse("医師").unwrap(),
            source: DoseSource::Staff,
            voucher: None,
            given_in: None,
        }
    }

    const TODAY: Date = date!(2022 - 01 - 01);

    fn rules(others: &[Dose], d: &Dose, subject: &Subject<'_>) -> Vec<&'static str> {
        let others: Vec<&Dose> = others.iter().collect();
        check(subject, &others, d, &sample(), TODAY)
            .into_iter()
            .map(|f| f.rule.code())
            .collect()
    }

    #[test]
    fn each_rule_fires_alone() {
        let voucher = VoucherNumber::parse("0000000019").unwrap();
        let vouchers = [voucher];
        let s = Subject {
            birth: date!(1970 - 01 - 01),
            deceased_on: Some(date!(2021 - 12 - 01)),
            vouchers: &vouchers,
        };
        let first = dose(1, date!(2021 - 06 - 01));
        let with = |f: &dyn Fn(&mut Dose)| {
            let mut d = dose(2, date!(2021 - 07 - 01));
            f(&mut d);
            d
        };
        let table: Vec<(Dose, Vec<&str>)> = vec![
            (with(&|_| {}), vec![]),
            (
                with(&|d| d.date = date!(2022 - 02 - 01)),
                vec!["future_date", "after_death"],
            ),
            (
                with(&|d| d.date = date!(2021 - 12 - 02)),
                vec!["after_death"],
            ),
            (
                with(&|d| d.date = date!(1969 - 12 - 31)),
                vec!["before_birth", "out_of_order"],
            ),
            (
                with(&|d| d.number = DoseNumber::new(1).unwrap()),
                vec!["duplicate_dose"],
            ),
            (
                with(&|d| d.product = Short::parse("nothing").unwrap()),
                vec!["unknown_product"],
            ),
            (
                with(&|d| d.date = date!(2021 - 05 - 01)),
                vec!["out_of_order"],
            ),
            (
                with(&|d| d.date = date!(2021 - 06 - 10)),
                vec!["interval_too_short"],
            ),
            (
                with(&|d| d.lot = Short::parse("12345").unwrap()),
                vec!["lot_format"],
            ),
            (with(&|d| d.lot = Short::parse("").unwrap()), vec![]),
            (with(&|d| d.voucher = Some(voucher)), vec![]),
            (
                with(&|d| d.voucher = VoucherNumber::parse_restoring_zeros("27").ok()),
                vec!["foreign_voucher"],
            ),
            (
                with(&|d| {
                    d.voucher = VoucherNumber::parse_restoring_zeros("27").ok();
                    d.source = DoseSource::Inquiry;
                }),
                vec![],
            ),
        ];
        for (i, (d, want)) in table.iter().enumerate() {
            let mut got = rules(std::slice::from_ref(&first), d, &s);
            got.sort();
            let mut want = want.clone();
            want.sort();
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn severities() {
        let s = Subject {
            birth: date!(1970 - 01 - 01),
            deceased_on: None,
            vouchers: &[],
        };
        let mut d = dose(1, date!(2021 - 06 - 01));
        d.voucher = VoucherNumber::parse_restoring_zeros("27").ok();
        let f = check(&s, &[], &d, &sample(), TODAY);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(blocks(&f));
        d.source = DoseSource::Csv;
        let f = check(&s, &[], &d, &sample(), TODAY);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(!blocks(&f));
    }

    #[test]
    fn a_person_is_checked_dose_by_dose() {
        let s = Subject {
            birth: date!(1970 - 01 - 01),
            deceased_on: None,
            vouchers: &[],
        };
        let doses = [
            dose(1, date!(2021 - 06 - 01)),
            dose(1, date!(2021 - 06 - 20)),
        ];
        let got = check_person(&s, &doses, &sample(), TODAY);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, f)| f.rule == Rule::DuplicateDose));
    }

    #[test]
    fn codes_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_code(r.code()), Some(r));
        }
    }
}
