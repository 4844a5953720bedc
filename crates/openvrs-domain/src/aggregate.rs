//! The rules of published counts (reference/opendata.md): the age group on the vaccination
//! date. Counts themselves are made by the store and written by the service.

use time::Date;

/// Full years of age on `on` for someone born on `birth` (`None` before birth). A person born
/// on 29 February turns a year older on 1 March in common years.
pub fn age_on(birth: Date, on: Date) -> Option<u32> {
    if on < birth {
        return None;
    }
    let mut years = on.year() - birth.year();
    if (u8::from(on.month()), on.day()) < (u8::from(birth.month()), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// The age buckets of the national open data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgeGroup {
    /// Up to 64 on the vaccination date.
    Under65,
    /// 65 and over.
    From65,
    /// No usable date of birth.
    Unknown,
}

impl AgeGroup {
    pub fn of(birth: Date, on: Date) -> Self {
        match age_on(birth, on) {
            Some(a) if a >= 65 => AgeGroup::From65,
            Some(_) => AgeGroup::Under65,
            None => AgeGroup::Unknown,
        }
    }

    /// As the files write it: `-64`, `65-`, `UNK`.
    pub fn code(self) -> &'static str {
        match self {
            AgeGroup::Under65 => "-64",
            AgeGroup::From65 => "65-",
            AgeGroup::Unknown => "UNK",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn ages_and_groups() {
        for (birth, on, age) in [
            (date!(1956 - 06 - 01), date!(2021 - 05 - 31), Some(64)),
            (date!(1956 - 06 - 01), date!(2021 - 06 - 01), Some(65)),
            (date!(2000 - 02 - 29), date!(2021 - 02 - 28), Some(20)),
            (date!(2000 - 02 - 29), date!(2021 - 03 - 01), Some(21)),
            (date!(2021 - 06 - 02), date!(2021 - 06 - 01), None),
        ] {
            assert_eq!(age_on(birth, on), age, "{birth} {on}");
        }
        assert_eq!(
            AgeGroup::of(date!(1956 - 06 - 01), date!(2021 - 05 - 31)).code(),
            "-64"
        );
        assert_eq!(
            AgeGroup::of(date!(1956 - 06 - 01), date!(2021 - 06 - 01)).code(),
            "65-"
        );
        assert_eq!(
            AgeGroup::of(date!(2022 - 01 - 01), date!(2021 - 06 - 01)).code(),
            "UNK"
        );
    }
}
