//! Dose records: which dose, when, what, where, by whom, and how it reached the system.

use std::{fmt, num::NonZeroU32};

use time::Date;

use crate::{
    Invalid,
    ids::{MunicipalityCode, VoucherNumber},
    text,
};

/// 接種回: 1, 2, 3, ... with no upper cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DoseNumber(NonZeroU32);

impl DoseNumber {
    pub fn new(n: u32) -> Result<Self, Invalid> {
        NonZeroU32::new(n).map(Self).ok_or(Invalid::new(
            "dose_number.zero",
            "接種回は1以上です",
            "the dose number starts at 1",
        ))
    }

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let n = text::digits(input)
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(Invalid::new(
                "dose_number.format",
                "接種回は数字です",
                "the dose number must be a number",
            ))?;
        Self::new(n)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for DoseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Free text with a length limit (the ledger layout's limits), normalised, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Short<const MAX: usize>(String);

impl<const MAX: usize> Short<MAX> {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = text::normalize(input);
        if s.chars().count() > MAX {
            return Err(Invalid::new(
                "text.too_long",
                "文字数が上限を超えています",
                "the text is longer than allowed",
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(Invalid::new(
                "text.control",
                "制御文字は使えません",
                "control characters are not allowed",
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 接種済 or 未接種.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoseStatus {
    Given,
    NotGiven,
}

impl DoseStatus {
    pub fn code(self) -> &'static str {
        match self {
            DoseStatus::Given => "given",
            DoseStatus::NotGiven => "not_given",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [DoseStatus::Given, DoseStatus::NotGiven]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// How a dose reached the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoseSource {
    /// Recorded by a venue tablet.
    Tablet,
    /// Entered by municipal staff.
    Staff,
    /// Imported from a CSV file (paper forms, the ledger).
    Csv,
    /// Received from another municipality through an inquiry.
    Inquiry,
}

impl DoseSource {
    pub fn code(self) -> &'static str {
        match self {
            DoseSource::Tablet => "tablet",
            DoseSource::Staff => "staff",
            DoseSource::Csv => "csv",
            DoseSource::Inquiry => "inquiry",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            DoseSource::Tablet,
            DoseSource::Staff,
            DoseSource::Csv,
            DoseSource::Inquiry,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// One dose of one person, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dose {
    pub number: DoseNumber,
    pub status: DoseStatus,
    pub date: Date,
    /// Product code in the national catalogue (e.g. `comirnaty`); the ledger's maker name
    /// comes from the catalogue.
    pub product: Short<40>,
    pub lot: Short<20>,
    pub venue: Short<30>,
    pub doctor: Short<20>,
    pub source: DoseSource,
    /// The voucher used, where known (券番号).
    pub voucher: Option<VoucherNumber>,
    /// The municipality whose voucher was used (接種自治体コード), where known.
    pub given_in: Option<MunicipalityCode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dose_numbers_have_no_cap() {
        assert_eq!(DoseNumber::parse("７").unwrap().get(), 7);
        assert_eq!(DoseNumber::new(4_000_000).unwrap().get(), 4_000_000);
        assert!(DoseNumber::new(0).is_err());
        assert!(DoseNumber::parse("x").is_err());
    }

    #[test]
    fn short_text_limits() {
        assert_eq!(Short::<3>::parse(" ａｂｃ ").unwrap().as_str(), "abc");
        assert_eq!(Short::<3>::parse("abcd").unwrap_err().kind, "text.too_long");
        assert_eq!(
            Short::<30>::parse("a\u{0}").unwrap_err().kind,
            "text.control"
        );
    }

    #[test]
    fn codes_round_trip() {
        for s in [DoseStatus::Given, DoseStatus::NotGiven] {
            assert_eq!(DoseStatus::from_code(s.code()), Some(s));
        }
        for s in [
            DoseSource::Tablet,
            DoseSource::Staff,
            DoseSource::Csv,
            DoseSource::Inquiry,
        ] {
            assert_eq!(DoseSource::from_code(s.code()), Some(s));
        }
    }
}
