//! Sex as registry files write it (ISO 5218 codes) and as open data shows it.

use crate::{Invalid, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Unknown,
    Male,
    Female,
    NotApplicable,
}

impl Sex {
    /// `1`/`2`/`0`/`9`, `男`/`女`/`男性`/`女性`, `M`/`F` (any width or case).
    pub fn parse(input: &str) -> Result<Sex, Invalid> {
        match text::normalize(input).to_ascii_uppercase().as_str() {
            "1" | "男" | "男性" | "M" => Ok(Sex::Male),
            "2" | "女" | "女性" | "F" => Ok(Sex::Female),
            "0" | "U" | "不明" => Ok(Sex::Unknown),
            "9" => Ok(Sex::NotApplicable),
            _ => Err(Invalid::new(
                "sex.format",
                "性別は 1/2/男/女/M/F のいずれかです",
                "sex must be one of 1/2/男/女/M/F",
            )),
        }
    }

    /// ISO 5218 code, as registry files use.
    pub fn iso5218(self) -> u8 {
        match self {
            Sex::Unknown => 0,
            Sex::Male => 1,
            Sex::Female => 2,
            Sex::NotApplicable => 9,
        }
    }

    pub fn from_iso5218(code: u8) -> Option<Sex> {
        [Sex::Unknown, Sex::Male, Sex::Female, Sex::NotApplicable]
            .into_iter()
            .find(|s| s.iso5218() == code)
    }

    /// The open-data letter: `M`, `F` or `U`.
    pub fn open_data(self) -> char {
        match self {
            Sex::Male => 'M',
            Sex::Female => 'F',
            Sex::Unknown | Sex::NotApplicable => 'U',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let cases = [
            ("1", Sex::Male),
            ("１", Sex::Male),
            ("男", Sex::Male),
            ("男性", Sex::Male),
            ("m", Sex::Male),
            ("2", Sex::Female),
            ("女", Sex::Female),
            ("女性", Sex::Female),
            ("F", Sex::Female),
            ("0", Sex::Unknown),
            ("9", Sex::NotApplicable),
        ];
        for (input, sex) in cases {
            assert_eq!(Sex::parse(input), Ok(sex), "{input}");
            assert_eq!(Sex::from_iso5218(sex.iso5218()), Some(sex));
        }
        for bad in ["3", "", "male", "X"] {
            assert!(Sex::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Sex::Female.open_data(), 'F');
        assert_eq!(Sex::NotApplicable.open_data(), 'U');
    }
}
