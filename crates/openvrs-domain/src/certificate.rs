//! Vaccination certificates as the municipality records them: which kind, in which format,
//! through which channel, and who may have one. The encodings are `openvrs-cert`'s.

use crate::{
    dose::{Dose, DoseStatus},
    error::Invalid,
    person::Flags,
};

/// 国内用 or 海外用.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SMART Health Card only.
    Domestic,
    /// With the passport's romanized name, nationality and number.
    Overseas,
}

/// How the certificate is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `.smart-health-card` file (JWS).
    Shc,
    /// ICAO VDS-NC JSON.
    Vds,
    /// EU DCC `HC1:` text.
    Dcc,
    /// The paper certificate: A4 PDF with the SMART Health Card's QR code (and the VDS-NC's,
    /// overseas).
    Pdf,
}

/// Where it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The operator's command line.
    Console,
    /// 窓口: staff at the counter.
    Counter,
    /// 電子交付アプリ.
    App,
    /// コンビニ交付.
    Kiosk,
}

macro_rules! codes {
    ($t:ty { $($v:ident => $c:literal),* $(,)? }) => {
        impl $t {
            pub fn code(self) -> &'static str {
                match self { $(Self::$v => $c),* }
            }
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($c => Some(Self::$v),)* _ => None }
            }
        }
    };
}
codes!(Kind { Domestic => "domestic", Overseas => "overseas" });
codes!(Format { Shc => "shc", Vds => "vds", Dcc => "dcc", Pdf => "pdf" });
codes!(Channel { Console => "console", Counter => "counter", App => "app", Kiosk => "kiosk" });

impl Format {
    /// ICAO VDS-NC and the EU DCC name the holder as in the passport: overseas only.
    pub fn needs_passport(self) -> bool {
        matches!(self, Format::Vds | Format::Dcc)
    }
}

const DECEASED: Invalid = Invalid::new(
    "certificate.deceased",
    "死亡している方の証明書は発行できません",
    "no certificate is issued for a deceased person",
);
const SUSPENDED: Invalid = Invalid::new(
    "certificate.suspended",
    "利用停止中の方の証明書は発行できません",
    "no certificate is issued while the person's data is suspended from use",
);
const MOVED_OUT: Invalid = Invalid::new(
    "certificate.moved_out",
    "転出済みの方です。転出先の自治体で発行してください",
    "the person has moved out: the municipality they moved to issues the certificate",
);
const NO_DOSE: Invalid = Invalid::new(
    "certificate.no_dose",
    "接種済みの記録がないため発行できません",
    "no certificate without a completed dose",
);
pub const PASSPORT_NEEDED: Invalid = Invalid::new(
    "certificate.passport_needed",
    "海外用(VDS-NC・EU DCC)には旅券の情報(ローマ字氏名・国籍・旅券番号)が必要です",
    "an overseas certificate (VDS-NC, EU DCC) needs the passport data (romanized name, nationality, passport number)",
);

/// Whether a certificate may be issued for this person with these current doses; returns the
/// doses it certifies (the given ones, in order).
pub fn certifiable<'a>(flags: &Flags, doses: &'a [Dose]) -> Result<Vec<&'a Dose>, Invalid> {
    if flags.deceased_on.is_some() {
        return Err(DECEASED);
    }
    if flags.use_suspended {
        return Err(SUSPENDED);
    }
    if flags.moved_out.is_some() {
        return Err(MOVED_OUT);
    }
    let given: Vec<&Dose> = doses
        .iter()
        .filter(|d| d.status == DoseStatus::Given)
        .collect();
    if given.is_empty() {
        return Err(NO_DOSE);
    }
    Ok(given)
}

/// Kind and format fit together, and overseas certificates have their passport data.
pub fn check_request(
    kind: Kind,
    format: Format,
    passport: Option<&Passport>,
) -> Result<(), Invalid> {
    match (kind, passport) {
        (Kind::Overseas, None) => Err(PASSPORT_NEEDED),
        (Kind::Domestic, _) if format.needs_passport() => Err(PASSPORT_NEEDED),
        _ => Ok(()),
    }
}

const ROMAN_NAME: Invalid = Invalid::new(
    "passport.name",
    "ローマ字氏名は A-Z と空白で、姓 名 の順に 39 文字以内です",
    "the romanized name is A-Z and spaces, family name first, at most 39 characters",
);
const NATIONALITY: Invalid = Invalid::new(
    "passport.nationality",
    "国籍は ISO 3166 の3文字コードです(例 JPN)",
    "the nationality is an ISO 3166 alpha-3 code (e.g. JPN)",
);
const PASSPORT_NUMBER: Invalid = Invalid::new(
    "passport.number",
    "旅券番号は英大文字と数字 6～9 文字です",
    "the passport number is 6 to 9 capital letters and digits",
);

/// The passport data an overseas certificate carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Passport {
    /// `FAMILY GIVEN` (given names may have several words).
    pub family: String,
    pub given: String,
    pub nationality: String,
    pub number: String,
}

impl std::fmt::Debug for Passport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passport(..)")
    }
}

impl Passport {
    /// From typed fields: `FAMILY GIVEN`, the ISO 3166 alpha-3 nationality, the number.
    pub fn parse(name: &str, nationality: &str, number: &str) -> Result<Self, Invalid> {
        let name = name.trim().to_ascii_uppercase();
        let words: Vec<&str> = name.split_whitespace().collect();
        if words.len() < 2
            || name.len() > 39
            || !words
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(ROMAN_NAME);
        }
        let nationality = nationality.trim().to_ascii_uppercase();
        if nationality.len() != 3 || !nationality.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(NATIONALITY);
        }
        let number = number.trim().to_ascii_uppercase();
        if !(6..=9).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(PASSPORT_NUMBER);
        }
        Ok(Self {
            family: words[0].to_owned(),
            given: words[1..].join(" "),
            nationality,
            number,
        })
    }

    /// `FAMILY GIVEN`, as VDS-NC names the holder.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.family, self.given)
    }

    /// From the two 44-character lines of a passport's machine-readable zone (ICAO 9303 TD3),
    /// every check digit verified (number, birth date, expiry, personal number, composite).
    pub fn from_mrz(line1: &str, line2: &str) -> Result<Self, Invalid> {
        let (l1, l2) = (line1.trim().as_bytes(), line2.trim().as_bytes());
        let allowed = |l: &[u8]| {
            l.len() == 44
                && l.iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'<')
        };
        if !allowed(l1) || !allowed(l2) || l1[0] != b'P' {
            return Err(MRZ);
        }
        let check = |field: &[u8], digit: u8| mrz_check(field) == Some(digit);
        let fields_ok = check(&l2[0..9], l2[9])
            && check(&l2[13..19], l2[19])
            && check(&l2[21..27], l2[27])
            && (check(&l2[28..42], l2[42]) || (l2[28..43].iter().all(|b| *b == b'<')))
            && {
                let mut composite = l2[0..10].to_vec();
                composite.extend_from_slice(&l2[13..20]);
                composite.extend_from_slice(&l2[21..43]);
                check(&composite, l2[43])
            };
        if !fields_ok {
            return Err(MRZ_CHECK);
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let name = text(&l1[5..44]);
        let (family, given) = name.split_once("<<").unwrap_or((name.as_str(), ""));
        let words = |s: &str| {
            s.split('<')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        Self::parse(
            &format!("{} {}", words(family), words(given)),
            &text(&l2[10..13]).replace('<', ""),
            &text(&l2[0..9]).replace('<', ""),
        )
    }
}

const MRZ: Invalid = Invalid::new(
    "passport.mrz",
    "旅券の機械読取部分(MRZ)は P で始まる 44 文字の2行です",
    "the passport's machine-readable zone is two lines of 44 characters, the first starting with P",
);
const MRZ_CHECK: Invalid = Invalid::new(
    "passport.mrz_check",
    "旅券の機械読取部分(MRZ)のチェックディジットが一致しません",
    "a check digit of the passport's machine-readable zone does not match",
);

/// The ICAO 9303 check digit (weights 7, 3, 1; A-Z are 10-35, `<` is 0) of a field, as the
/// digit's ASCII byte.
fn mrz_check(field: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, b) in field.iter().enumerate() {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            b'<' => 0,
            _ => return None,
        };
        sum += value * [7, 3, 1][i % 3];
    }
    Some(b'0' + (sum % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passport_fields_are_checked_and_never_echoed() {
        let p = Passport::parse("tanaka hanako", "jpn", "tr1234567").unwrap();
        assert_eq!(p.full_name(), "TANAKA HANAKO");
        assert_eq!(
            (p.nationality.as_str(), p.number.as_str()),
            ("JPN", "TR1234567")
        );
        assert_eq!(format!("{p:?}"), "Passport(..)");
        let table = [
            ("TANAKA", "JPN", "TR1234567", "passport.name"),
            ("田中 花子", "JPN", "TR1234567", "passport.name"),
            ("TANAKA HANAKO", "JP", "TR1234567", "passport.nationality"),
            ("TANAKA HANAKO", "JPN", "TR-12345", "passport.number"),
            ("TANAKA HANAKO", "JPN", "TR12345678", "passport.number"),
        ];
        for (name, nat, number, kind) in table {
            let err = Passport::parse(name, nat, number).unwrap_err();
            assert_eq!(err.kind, kind);
            assert!(!err.to_string().contains(number));
        }
    }

    #[test]
    fn the_icao_specimen_mrz_reads_and_every_check_digit_counts() {
        // ICAO Doc 9303 part 4's specimen passport (Utopia).
        let l1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<";
        let l2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10";
        let p = Passport::from_mrz(l1, l2).unwrap();
        assert_eq!(p.full_name(), "ERIKSSON ANNA MARIA");
        assert_eq!(
            (p.nationality.as_str(), p.number.as_str()),
            ("UTO", "L898902C3")
        );
        // Any single changed character of line 2 is caught (or makes it unreadable).
        for i in 0..44 {
            let mut bad = l2.as_bytes().to_vec();
            bad[i] = if bad[i] == b'7' { b'8' } else { b'7' };
            let bad = String::from_utf8(bad).unwrap();
            if (10..13).contains(&i) || i == 20 {
                continue; // nationality and sex carry no check digit of their own
            }
            assert!(Passport::from_mrz(l1, &bad).is_err(), "position {i}");
        }
        for (a, b, kind) in [
            ("", l2, "passport.mrz"),
            (l1, &l2[..43], "passport.mrz"),
            (&l1.replacen('P', "V", 1), l2, "passport.mrz"),
            (l1, &l2.to_lowercase(), "passport.mrz"),
        ] {
            assert_eq!(Passport::from_mrz(a, b).unwrap_err().kind, kind);
        }
    }

    #[test]
    fn codes_round_trip() {
        for f in [Format::Shc, Format::Vds, Format::Dcc, Format::Pdf] {
            assert_eq!(Format::from_code(f.code()), Some(f));
        }
        for c in [
            Channel::Console,
            Channel::Counter,
            Channel::App,
            Channel::Kiosk,
        ] {
            assert_eq!(Channel::from_code(c.code()), Some(c));
        }
        assert_eq!(Kind::from_code("both"), None);
    }
}
