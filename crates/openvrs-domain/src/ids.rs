//! Identifiers with their check digits: My Number, local government code, voucher and its OCR
//! line, the municipality's person id. Rules from `reference/identifiers.md`.

use std::fmt;

use crate::{Invalid, prefecture::Prefecture, text};

fn digit_values<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != N || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b - b'0';
    }
    Some(out)
}

/// 個人番号: 12 digits, the last a check digit. Its `Debug` and `Display` never show the digits;
/// [`MyNumber::expose`] is the one deliberate way to read them (for encryption and keyed indexing).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MyNumber([u8; 12]);

impl MyNumber {
    /// Parses 12 digits (full-width, spaces and hyphens allowed) and verifies the check digit.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let d = text::digits(input)
            .and_then(|s| digit_values::<12>(&s))
            .ok_or(Invalid::new(
                "my_number.format",
                "個人番号は12桁の数字です",
                "a My Number is 12 digits",
            ))?;
        let first: [u8; 11] = d[..11].try_into().expect("11 of 12");
        if Self::check_digit(&first) != d[11] {
            return Err(Invalid::new(
                "my_number.check_digit",
                "個人番号の検査用数字が一致しません",
                "the My Number check digit does not match",
            ));
        }
        Ok(Self(d))
    }

    /// The check digit for the first 11 digits (each 0-9).
    pub fn check_digit(first: &[u8; 11]) -> u8 {
        let sum: u32 = (1..=11)
            .map(|n| {
                let p = u32::from(first[11 - n]);
                let q = if n <= 6 { n as u32 + 1 } else { n as u32 - 5 };
                p * q
            })
            .sum();
        let r = sum % 11;
        if r <= 1 { 0 } else { (11 - r) as u8 }
    }

    /// Builds a valid My Number from its first 11 digits (each 0-9), adding the check digit.
    pub fn from_first_eleven(first: [u8; 11]) -> Option<Self> {
        if first.iter().any(|d| *d > 9) {
            return None;
        }
        let mut d = [0u8; 12];
        d[..11].copy_from_slice(&first);
        d[11] = Self::check_digit(&first);
        Some(Self(d))
    }

    /// The 12 digits. Call only to encrypt, index or show the number inside the LGWAN zone.
    pub fn expose(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

impl fmt::Debug for MyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MyNumber(************)")
    }
}

impl fmt::Display for MyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("************")
    }
}

/// 全国地方公共団体コード: 5 digits and a check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MunicipalityCode(u32);

const BAD_MUNICIPALITY_FORMAT: Invalid = Invalid::new(
    "municipality_code.format",
    "自治体コードは6桁の数字です",
    "a municipality code is 6 digits",
);
const BAD_MUNICIPALITY_CHECK: Invalid = Invalid::new(
    "municipality_code.check_digit",
    "自治体コードの検査数字が一致しません",
    "the municipality code check digit does not match",
);
const BAD_PREFECTURE: Invalid = Invalid::new(
    "municipality_code.prefecture",
    "自治体コードの都道府県番号(01-47)が不正です",
    "the prefecture part of the municipality code is not 01-47",
);

impl MunicipalityCode {
    /// Parses exactly 6 digits (after width normalisation) and verifies prefecture and check digit.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = text::digits(input).ok_or(BAD_MUNICIPALITY_FORMAT)?;
        let d = digit_values::<6>(&s).ok_or(BAD_MUNICIPALITY_FORMAT)?;
        Self::from_digits(d)
    }

    /// As [`parse`](Self::parse), but a 5-digit value whose leading zero a spreadsheet dropped
    /// (`11002` for Sapporo) is restored first. The check digit is verified either way.
    pub fn parse_restoring_zero(input: &str) -> Result<Self, Invalid> {
        let s = text::digits(input).ok_or(BAD_MUNICIPALITY_FORMAT)?;
        let s = if s.len() == 5 { format!("0{s}") } else { s };
        Self::parse(&s)
    }

    fn from_digits(d: [u8; 6]) -> Result<Self, Invalid> {
        let five: [u8; 5] = d[..5].try_into().expect("5 of 6");
        if Self::check_digit(&five) != d[5] {
            return Err(BAD_MUNICIPALITY_CHECK);
        }
        let value = d.iter().fold(0u32, |acc, x| acc * 10 + u32::from(*x));
        Prefecture::from_number(d[0] * 10 + d[1]).ok_or(BAD_PREFECTURE)?;
        Ok(Self(value))
    }

    /// The check digit for the 5-digit code.
    pub fn check_digit(five: &[u8; 5]) -> u8 {
        let sum: u32 = five
            .iter()
            .zip([6u32, 5, 4, 3, 2])
            .map(|(d, w)| u32::from(*d) * w)
            .sum();
        ((11 - sum % 11) % 10) as u8
    }

    /// The full code for a 5-digit code (e.g. `47213` gives `472131`).
    pub fn from_five(five: u32) -> Result<Self, Invalid> {
        if five >= 100_000 {
            return Err(BAD_MUNICIPALITY_FORMAT);
        }
        let s = format!("{five:05}");
        let d = digit_values::<5>(&s).ok_or(BAD_MUNICIPALITY_FORMAT)?;
        let mut six = [0u8; 6];
        six[..5].copy_from_slice(&d);
        six[5] = Self::check_digit(&d);
        Self::from_digits(six)
    }

    pub fn prefecture(self) -> Prefecture {
        Prefecture::from_number((self.0 / 10_000) as u8).expect("validated at construction")
    }

    /// The code as a number, e.g. 472131 (11002 for Sapporo's 011002).
    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl std::str::FromStr for MunicipalityCode {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

/// 券番号: 10 digits, unique within its municipality, leading zeros significant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoucherNumber([u8; 10]);

const BAD_VOUCHER: Invalid = Invalid::new(
    "voucher_number.format",
    "券番号は10桁の数字です",
    "a voucher number is 10 digits",
);

impl VoucherNumber {
    /// Exactly 10 digits after width normalisation.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = text::digits(input).ok_or(BAD_VOUCHER)?;
        Self::from_ascii(&s)
    }

    /// 1 to 10 digits, left-padded with the zeros a spreadsheet dropped.
    pub fn parse_restoring_zeros(input: &str) -> Result<Self, Invalid> {
        let s = text::digits(input).ok_or(BAD_VOUCHER)?;
        if s.len() > 10 {
            return Err(BAD_VOUCHER);
        }
        Self::from_ascii(&format!("{s:0>10}"))
    }

    fn from_ascii(s: &str) -> Result<Self, Invalid> {
        let b: [u8; 10] = s.as_bytes().try_into().map_err(|_| BAD_VOUCHER)?;
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(BAD_VOUCHER);
        }
        Ok(Self(b))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII digits")
    }
}

impl fmt::Debug for VoucherNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoucherNumber({})", self.as_str())
    }
}

impl fmt::Display for VoucherNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 18-digit OCR line printed on a voucher (and held by its QR code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OcrLine {
    /// 券種, position 1: opaque, stored as read.
    pub voucher_type: u8,
    /// 接種回, position 2: the dose the voucher is for.
    pub dose_number: u8,
    /// Positions 3-8, check digit verified.
    pub municipality: MunicipalityCode,
    /// Positions 9-18.
    pub voucher: VoucherNumber,
}

impl OcrLine {
    /// Parses 18 digits. A wrong municipality check digit is its own error
    /// (`municipality_code.check_digit`), so a misread is rejected before any lookup.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = text::digits(input)
            .filter(|s| s.len() == 18)
            .ok_or(Invalid::new(
                "ocr_line.format",
                "OCRラインは18桁の数字です",
                "an OCR line is 18 digits",
            ))?;
        let dose_number = s.as_bytes()[1] - b'0';
        if dose_number == 0 {
            return Err(Invalid::new(
                "ocr_line.dose_number",
                "OCRラインの接種回が0です",
                "the dose number in the OCR line is 0",
            ));
        }
        Ok(Self {
            voucher_type: s.as_bytes()[0] - b'0',
            dose_number,
            municipality: MunicipalityCode::parse(&s[2..8])?,
            voucher: VoucherNumber::parse(&s[8..])?,
        })
    }
}

impl fmt::Display for OcrLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}{}",
            self.voucher_type, self.dose_number, self.municipality, self.voucher
        )
    }
}

/// 宛名番号: the municipality's own id for a person, 1 to 15 digits, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressNumber(String);

impl AddressNumber {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        match text::digits(input) {
            Some(s) if s.len() <= 15 => Ok(Self(s)),
            _ => Err(Invalid::new(
                "address_number.format",
                "宛名番号は1～15桁の数字です",
                "an address number is 1 to 15 digits",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AddressNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 証明書ID: 12 characters `A-Z0-9`, random and unique (a real one: `6U5RSWMBASG2`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateId([u8; 12]);

const CERT_ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl CertificateId {
    /// 12 letters and digits, as printed; lower case and full width are normalised.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = text::normalize(input).to_ascii_uppercase();
        let b: [u8; 12] = s
            .as_bytes()
            .try_into()
            .ok()
            .filter(|b: &[u8; 12]| b.iter().all(|c| CERT_ALPHABET.contains(c)))
            .ok_or(Invalid::new(
                "certificate_id.format",
                "証明書IDは英大文字と数字の12文字です",
                "a certificate id is 12 capital letters and digits",
            ))?;
        Ok(Self(b))
    }

    /// A new id from a source of random bytes (the caller owns the randomness: this crate does
    /// no IO). Rejection sampling keeps every character equally likely.
    pub fn generate(mut random_byte: impl FnMut() -> u8) -> Self {
        let mut out = [0u8; 12];
        for c in &mut out {
            *c = loop {
                let b = random_byte();
                // 252 = 7 * 36: the bytes above would favour the first four characters.
                if b < 252 {
                    break CERT_ALPHABET[usize::from(b % 36)];
                }
            };
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

impl fmt::Debug for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateId({})", self.as_str())
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn my_number_reference_examples() {
        let first = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1];
        assert_eq!(MyNumber::check_digit(&first), 8);
        assert!(MyNumber::parse("123456789018").is_ok());
        assert_eq!(
            MyNumber::parse("123456789010").unwrap_err().kind,
            "my_number.check_digit"
        );
        assert!(MyNumber::parse("１２３４ ５６７８ ９０１８").is_ok());
        for bad in ["", "12345678901", "1234567890188", "12345678901a"] {
            assert_eq!(MyNumber::parse(bad).unwrap_err().kind, "my_number.format");
        }
    }

    #[test]
    fn my_number_never_prints_digits() {
        let n = MyNumber::parse("123456789018").unwrap();
        for shown in [format!("{n}"), format!("{n:?}"), format!("{n:#?}")] {
            assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
        }
        assert_eq!(n.expose(), "123456789018");
    }

    #[test]
    fn municipality_reference_table() {
        // (code, name, sum mod 11) from reference/identifiers.md
        let table = [
            ("472131", Some(10), 47),
            ("472018", Some(3), 47),
            ("131016", Some(5), 13),
            ("131041", Some(0), 13),
            ("281000", Some(1), 28),
            ("141500", Some(1), 14),
            ("011002", None, 1),
            ("141003", None, 14),
        ];
        for (code, rem, pref) in table {
            let c = MunicipalityCode::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(c.to_string(), code);
            assert_eq!(c.prefecture().number(), pref);
            if let Some(rem) = rem {
                let d: Vec<u32> = code.bytes().map(|b| u32::from(b - b'0')).collect();
                let sum = d[0] * 6 + d[1] * 5 + d[2] * 4 + d[3] * 3 + d[4] * 2;
                assert_eq!(sum % 11, rem, "{code}");
            }
            let five: u32 = code[..5].parse().unwrap();
            assert_eq!(MunicipalityCode::from_five(five).unwrap(), c);
        }
        assert_eq!(
            MunicipalityCode::parse("472132").unwrap_err().kind,
            "municipality_code.check_digit"
        );
    }

    #[test]
    fn municipality_leading_zero_restored_only_when_asked() {
        assert_eq!(
            MunicipalityCode::parse_restoring_zero("11002")
                .unwrap()
                .to_string(),
            "011002"
        );
        assert!(MunicipalityCode::parse("11002").is_err());
        assert_eq!(
            MunicipalityCode::parse_restoring_zero("１１００２")
                .unwrap()
                .to_string(),
            "011002"
        );
        assert!(MunicipalityCode::parse_restoring_zero("11003").is_err());
        assert_eq!(
            MunicipalityCode::parse("481009").unwrap_err().kind,
            "municipality_code.prefecture"
        );
    }

    #[test]
    fn voucher_keeps_leading_zeros() {
        assert_eq!(
            VoucherNumber::parse("0000012345").unwrap().as_str(),
            "0000012345"
        );
        assert!(VoucherNumber::parse("12345").is_err());
        assert_eq!(
            VoucherNumber::parse_restoring_zeros("12345")
                .unwrap()
                .as_str(),
            "0000012345"
        );
        assert!(VoucherNumber::parse_restoring_zeros("12345678901").is_err());
    }

    #[test]
    fn ocr_line_fields() {
        let line = OcrLine::parse("134721310000012345").unwrap();
        assert_eq!(line.voucher_type, 1);
        assert_eq!(line.dose_number, 3);
        assert_eq!(line.municipality.to_string(), "472131");
        assert_eq!(line.voucher.as_str(), "0000012345");
        assert_eq!(line.to_string(), "134721310000012345");
        // 2021's misread: 5 read as 3 in the municipality code breaks the check digit.
        assert_eq!(
            OcrLine::parse("134721330000012345").unwrap_err().kind,
            "municipality_code.check_digit"
        );
        assert_eq!(
            OcrLine::parse("10472131000001234").unwrap_err().kind,
            "ocr_line.format"
        );
        assert_eq!(
            OcrLine::parse("104721310000012345").unwrap_err().kind,
            "ocr_line.dose_number"
        );
    }

    #[test]
    fn address_number_bounds() {
        assert_eq!(AddressNumber::parse("０１２").unwrap().as_str(), "012");
        assert!(AddressNumber::parse("1234567890123456").is_err());
        assert!(AddressNumber::parse("").is_err());
    }

    #[test]
    fn certificate_id_reference_example() {
        assert_eq!(
            CertificateId::parse("6U5RSWMBASG2").unwrap().as_str(),
            "6U5RSWMBASG2"
        );
        assert_eq!(
            CertificateId::parse("6u5rswmbasg2").unwrap().as_str(),
            "6U5RSWMBASG2"
        );
        assert_eq!(
            CertificateId::parse("６Ｕ５ＲＳＷＭＢＡＳＧ２")
                .unwrap()
                .as_str(),
            "6U5RSWMBASG2"
        );
        for bad in [
            "6U5RSWMBASG",
            "6U5RSWMBASG2X",
            "6U5RSWMBASG!",
            "",
            "6U5RSWMBAS G2",
        ] {
            assert_eq!(
                CertificateId::parse(bad).unwrap_err().kind,
                "certificate_id.format",
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn every_generated_certificate_id_parses(bytes in proptest::collection::vec(any::<u8>(), 64)) {
            let mut it = bytes.into_iter().chain(std::iter::repeat(0));
            let id = CertificateId::generate(|| it.next().unwrap());
            prop_assert_eq!(CertificateId::parse(id.as_str()).unwrap(), id);
        }

        #[test]
        fn every_generated_my_number_parses(first in proptest::array::uniform11(0u8..10)) {
            let n = MyNumber::from_first_eleven(first).unwrap();
            prop_assert_eq!(MyNumber::parse(&n.expose()).unwrap(), n);
        }

        #[test]
        fn any_single_digit_change_of_a_my_number_is_caught(
            first in proptest::array::uniform11(0u8..10), pos in 0usize..12, delta in 1u8..10,
        ) {
            let good = MyNumber::from_first_eleven(first).unwrap().expose().into_bytes();
            let mut bad = good.clone();
            bad[pos] = b'0' + (bad[pos] - b'0' + delta) % 10;
            // The mod-11 check digit cannot catch every change (r <= 1 both give 0), but a
            // changed check digit itself always is.
            let parsed = MyNumber::parse(std::str::from_utf8(&bad).unwrap());
            if pos == 11 { prop_assert!(parsed.is_err()); }
        }

        #[test]
        fn every_generated_municipality_code_parses(five in 1_000u32..48_000) {
            if let Ok(code) = MunicipalityCode::from_five(five) {
                prop_assert_eq!(MunicipalityCode::parse(&code.to_string()).unwrap(), code);
                prop_assert_eq!(u32::from(code.prefecture().number()), five / 1000);
            } else {
                prop_assert!(!(1..=47).contains(&(five / 1000)));
            }
        }

        #[test]
        fn ocr_line_round_trips(t in 0u8..10, dose in 1u8..10, five in 1_000u32..48_000, v in 0u64..10_000_000_000) {
            if let Ok(code) = MunicipalityCode::from_five(five) {
                let s = format!("{t}{dose}{code}{v:010}");
                prop_assert_eq!(OcrLine::parse(&s).unwrap().to_string(), s);
            }
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = MyNumber::parse(&s);
            let _ = MunicipalityCode::parse_restoring_zero(&s);
            let _ = VoucherNumber::parse_restoring_zeros(&s);
            let _ = OcrLine::parse(&s);
            let _ = AddressNumber::parse(&s);
            let _ = CertificateId::parse(&s);
        }
    }
}
