//! Calendar dates as municipalities write them: ISO, compact, slashed, and the Japanese eras.

use std::fmt;

use time::{Date, Month};

use crate::{Invalid, text};

/// A Japanese era (元号) that a living person's date can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Era {
    Meiji,
    Taisho,
    Showa,
    Heisei,
    Reiwa,
}

impl Era {
    pub const ALL: [Era; 5] = [Era::Meiji, Era::Taisho, Era::Showa, Era::Heisei, Era::Reiwa];

    /// The first day of the era. Meiji counts from 1868-01-01 (元年 = 1868).
    pub fn start(self) -> Date {
        let (y, m, d) = match self {
            Era::Meiji => (1868, Month::January, 1),
            Era::Taisho => (1912, Month::July, 30),
            Era::Showa => (1926, Month::December, 25),
            Era::Heisei => (1989, Month::January, 8),
            Era::Reiwa => (2019, Month::May, 1),
        };
        Date::from_calendar_date(y, m, d).expect("valid era start")
    }

    /// The first day of the next era, if any.
    pub fn end_exclusive(self) -> Option<Date> {
        let i = Era::ALL.iter().position(|e| *e == self)?;
        Era::ALL.get(i + 1).map(|e| e.start())
    }

    pub fn kanji(self) -> &'static str {
        match self {
            Era::Meiji => "明治",
            Era::Taisho => "大正",
            Era::Showa => "昭和",
            Era::Heisei => "平成",
            Era::Reiwa => "令和",
        }
    }

    pub fn letter(self) -> char {
        match self {
            Era::Meiji => 'M',
            Era::Taisho => 'T',
            Era::Showa => 'S',
            Era::Heisei => 'H',
            Era::Reiwa => 'R',
        }
    }

    /// The digit used by the registry's 7-digit `GYYMMDD` form.
    pub fn digit(self) -> u8 {
        self as u8 + 1
    }

    fn from_letter(c: char) -> Option<Era> {
        Era::ALL
            .into_iter()
            .find(|e| e.letter() == c.to_ascii_uppercase())
    }

    fn from_digit(d: u8) -> Option<Era> {
        Era::ALL.into_iter().find(|e| e.digit() == d)
    }

    /// The era and era year a date falls in; `None` before Meiji.
    pub fn of(date: Date) -> Option<(Era, i32)> {
        let era = Era::ALL.into_iter().rev().find(|e| date >= e.start())?;
        Some((era, date.year() - era.start().year() + 1))
    }
}

const BAD_DATE: Invalid = Invalid::new(
    "date.format",
    "日付の形式が不正です(例: 2021-04-12, 20210412, 2021/4/12, 昭和45年1月1日, S45.1.1, 3450101)",
    "unrecognised date (e.g. 2021-04-12, 20210412, 2021/4/12, 昭和45年1月1日, S45.1.1, 3450101)",
);
const NO_SUCH_DAY: Invalid = Invalid::new(
    "date.calendar",
    "存在しない日付です",
    "no such day in the calendar",
);
const OUTSIDE_ERA: Invalid = Invalid::new(
    "date.era",
    "元号の期間外の日付です",
    "the date is outside its era",
);

/// Parses every date form of `reference/identifiers.md`, after width normalisation.
pub fn parse_date(input: &str) -> Result<Date, Invalid> {
    let s = text::normalize(input);
    let s = s.as_str();
    if let Some(era) = Era::ALL.into_iter().find(|e| s.starts_with(e.kanji())) {
        return parse_kanji_era(era, &s[era.kanji().len()..]);
    }
    let mut chars = s.chars();
    if let Some(era) = chars.next().and_then(Era::from_letter) {
        let [y, m, d] = split3(chars.as_str(), &['.', '/', '-'])?;
        return era_date(era, number(y)?, number(m)?, number(d)?);
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return ymd(number(&s[..4])?, number(&s[4..6])?, number(&s[6..])?);
    }
    if s.len() == 7 && s.bytes().all(|b| b.is_ascii_digit()) {
        let era = Era::from_digit(s.as_bytes()[0] - b'0').ok_or(BAD_DATE)?;
        return era_date(era, number(&s[1..3])?, number(&s[3..5])?, number(&s[5..])?);
    }
    if let Some(rest) = s.strip_suffix('日') {
        let [y, m, d] = split3(rest, &['年', '月'])?;
        if y.len() == 4 {
            return ymd(number(y)?, number(m)?, number(d)?);
        }
        return Err(BAD_DATE);
    }
    let [y, m, d] = split3(s, &['-', '/', '.'])?;
    if y.len() != 4 {
        return Err(BAD_DATE);
    }
    ymd(number(y)?, number(m)?, number(d)?)
}

fn parse_kanji_era(era: Era, rest: &str) -> Result<Date, Invalid> {
    let rest = rest.trim_start();
    let rest = rest.strip_suffix('日').ok_or(BAD_DATE)?;
    let [y, m, d] = split3(rest, &['年', '月'])?;
    let year = if y == "元" { 1 } else { number(y)? };
    era_date(era, year, number(m)?, number(d)?)
}

fn split3<'a>(s: &'a str, seps: &[char]) -> Result<[&'a str; 3], Invalid> {
    let mut parts = s.split(|c| seps.contains(&c)).map(str::trim);
    let out = [
        parts.next().ok_or(BAD_DATE)?,
        parts.next().ok_or(BAD_DATE)?,
        parts.next().ok_or(BAD_DATE)?,
    ];
    if parts.next().is_some() {
        return Err(BAD_DATE);
    }
    Ok(out)
}

fn number(s: &str) -> Result<i32, Invalid> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_DATE);
    }
    s.parse().map_err(|_| BAD_DATE)
}

fn ymd(y: i32, m: i32, d: i32) -> Result<Date, Invalid> {
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or(NO_SUCH_DAY)?;
    let day = u8::try_from(d).map_err(|_| NO_SUCH_DAY)?;
    Date::from_calendar_date(y, month, day).map_err(|_| NO_SUCH_DAY)
}

fn era_date(era: Era, year: i32, m: i32, d: i32) -> Result<Date, Invalid> {
    if year < 1 {
        return Err(OUTSIDE_ERA);
    }
    let date = ymd(era.start().year() + year - 1, m, d)?;
    let inside = date >= era.start() && era.end_exclusive().is_none_or(|end| date < end);
    if inside { Ok(date) } else { Err(OUTSIDE_ERA) }
}

/// A date written in its era, `昭和45年1月1日` (year 1 as `元年` when `gannen`).
#[derive(Debug, Clone, Copy)]
pub struct Wareki {
    pub date: Date,
    pub gannen: bool,
}

impl fmt::Display for Wareki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((era, year)) = Era::of(self.date) else {
            return write!(f, "{}", self.date);
        };
        if year == 1 && self.gannen {
            write!(f, "{}元年", era.kanji())?;
        } else {
            write!(f, "{}{}年", era.kanji(), year)?;
        }
        write!(f, "{}月{}日", u8::from(self.date.month()), self.date.day())
    }
}

/// The registry's 7-digit `GYYMMDD` form, e.g. `3450101`; `None` before Meiji or after R99.
pub fn registry_form(date: Date) -> Option<String> {
    let (era, year) = Era::of(date)?;
    (year < 100).then(|| {
        format!(
            "{}{:02}{:02}{:02}",
            era.digit(),
            year,
            u8::from(date.month()),
            date.day()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    #[test]
    fn reference_examples() {
        let ok = [
            ("1970-01-01", date!(1970 - 01 - 01)),
            ("19700101", date!(1970 - 01 - 01)),
            ("1970/1/1", date!(1970 - 01 - 01)),
            ("昭和45年1月1日", date!(1970 - 01 - 01)),
            ("S45.1.1", date!(1970 - 01 - 01)),
            ("S45/01/01", date!(1970 - 01 - 01)),
            ("s45.1.1", date!(1970 - 01 - 01)),
            ("H1.1.8", date!(1989 - 01 - 08)),
            ("平成元年1月8日", date!(1989 - 01 - 08)),
            ("3450101", date!(1970 - 01 - 01)),
            ("２０２１／０４／１２", date!(2021 - 04 - 12)),
            ("令和3年4月12日", date!(2021 - 04 - 12)),
            ("R3.4.12", date!(2021 - 04 - 12)),
            ("5030412", date!(2021 - 04 - 12)),
            ("大正15年12月24日", date!(1926 - 12 - 24)),
            ("昭和元年12月25日", date!(1926 - 12 - 25)),
            ("明治45年7月29日", date!(1912 - 07 - 29)),
            ("大正元年7月30日", date!(1912 - 07 - 30)),
            ("M1.1.1", date!(1868 - 01 - 01)),
            ("昭和６４年１月７日", date!(1989 - 01 - 07)),
            ("2021年4月12日", date!(2021 - 04 - 12)),
        ];
        for (input, expected) in ok {
            assert_eq!(parse_date(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejected_dates() {
        let bad = [
            ("平成31年5月1日", "date.era"),
            ("昭和64年1月8日", "date.era"),
            ("平成元年1月7日", "date.era"),
            ("H0.1.1", "date.era"),
            ("令和0年5月1日", "date.era"),
            ("2021-02-30", "date.calendar"),
            ("2021-13-01", "date.calendar"),
            ("20210230", "date.calendar"),
            ("6010101", "date.format"),
            ("X45.1.1", "date.format"),
            ("21-04-12", "date.format"),
            ("", "date.format"),
            ("2021-04", "date.format"),
            ("2021-04-12-01", "date.format"),
            ("昭和45年1月1", "date.format"),
            ("S45.1.1.1", "date.format"),
            ("S４５年", "date.format"),
        ];
        for (input, kind) in bad {
            assert_eq!(parse_date(input).map_err(|e| e.kind), Err(kind), "{input}");
        }
    }

    #[test]
    fn wareki_formatting() {
        let d = date!(1989 - 01 - 08);
        assert_eq!(
            Wareki {
                date: d,
                gannen: true
            }
            .to_string(),
            "平成元年1月8日"
        );
        assert_eq!(
            Wareki {
                date: d,
                gannen: false
            }
            .to_string(),
            "平成1年1月8日"
        );
        assert_eq!(
            registry_form(date!(1970 - 01 - 01)).as_deref(),
            Some("3450101")
        );
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (Date::MIN
            .to_julian_day()
            .max(date!(1868 - 01 - 01).to_julian_day())
            ..=date!(2117 - 12 - 31).to_julian_day())
            .prop_map(|j| Date::from_julian_day(j).unwrap())
    }

    proptest! {
        #[test]
        fn every_era_date_round_trips(d in any_date(), gannen: bool) {
            prop_assert_eq!(parse_date(&Wareki { date: d, gannen }.to_string()), Ok(d));
            let (era, year) = Era::of(d).unwrap();
            let letter = format!("{}{}.{}.{}", era.letter(), year, u8::from(d.month()), d.day());
            prop_assert_eq!(parse_date(&letter), Ok(d));
            if let Some(form) = registry_form(d) {
                prop_assert_eq!(parse_date(&form), Ok(d));
            }
            prop_assert_eq!(parse_date(&d.to_string()), Ok(d));
        }

        #[test]
        fn parse_date_never_panics(s in "\\PC{0,30}") {
            let _ = parse_date(&s);
        }
    }
}

/// A moment, in microseconds since the Unix epoch (UTC): the one unit the system keeps time in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The calendar day in Japan at this moment.
    pub fn today_jst(self) -> Date {
        time::OffsetDateTime::from_unix_timestamp(self.as_secs())
            .map_or(time::OffsetDateTime::UNIX_EPOCH, |t| t)
            .to_offset(JST)
            .date()
    }
}

/// Where the time comes from. The domain reads no clock: a caller passes one in (the wall clock
/// in a running system, [`ManualClock`] in tests), and the store, the service and the server
/// all read the same one.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> UnixMicros;
}

/// A clock that says what it is told (tests): set it, advance it.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn at(t: UnixMicros) -> Self {
        Self(std::sync::atomic::AtomicI64::new(t.0))
    }

    pub fn set(&self, t: UnixMicros) {
        self.0.store(t.0, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance_micros(&self, by: i64) {
        self.0.fetch_add(by, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMicros {
        UnixMicros(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Japan Standard Time, in which the ledger writes its timestamps.
pub const JST: time::UtcOffset = match time::UtcOffset::from_hms(9, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("JST"),
};

/// A unix time in microseconds as a Japanese wall-clock time (seconds precision), or `None`
/// when out of range.
pub fn jst_from_micros(micros: i64) -> Option<time::PrimitiveDateTime> {
    let t = time::OffsetDateTime::from_unix_timestamp(micros.div_euclid(1_000_000)).ok()?;
    let t = t.to_offset(JST);
    Some(time::PrimitiveDateTime::new(t.date(), t.time()))
}

/// A Japanese wall-clock time as unix microseconds.
pub fn micros_from_jst(t: time::PrimitiveDateTime) -> i64 {
    t.assume_offset(JST).unix_timestamp() * 1_000_000
}

/// An instant written in ISO 8601 with its offset, as test data and verifiers write it:
/// RFC 3339 (`2026-11-27T09:00:00+09:00`, `...Z`), and also an offset without a colon
/// (`2021-06-09T15:15:34+0200`) and fractional seconds (`2022-01-18T09:53:44.686+0000`).
/// Unix seconds (a fraction is dropped), or `None` when it is none of these.
pub fn parse_instant(text: &str) -> Option<i64> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let text = text.trim();
    time::OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod jst_tests {
    use super::*;

    #[test]
    fn instants_in_every_iso_8601_form_test_data_uses() {
        for (text, unix) in [
            ("2026-11-27T09:00:00+09:00", Some(1_795_737_600)),
            ("2026-11-27T00:00:00Z", Some(1_795_737_600)),
            ("2021-06-09T15:15:34+0200", Some(1_623_244_534)),
            ("2022-01-18T09:53:44.686+0000", Some(1_642_499_624)),
            ("2022-01-18T09:53:44.686Z", Some(1_642_499_624)),
            ("  2021-06-09T15:15:34+02:00\n", Some(1_623_244_534)),
            ("2021-06-09T15:15:34", None),
            ("2021-06-09", None),
            ("yesterday", None),
            ("2021-13-09T15:15:34Z", None),
            ("", None),
        ] {
            assert_eq!(parse_instant(text), unix, "{text:?}");
        }
    }

    #[test]
    fn today_in_japan_turns_at_midnight_jst() {
        // 2021-05-31 14:59:59 UTC is 23:59:59 in Japan; a second later it is 1 June there.
        let before = UnixMicros(1_622_473_199_000_000);
        assert_eq!(before.today_jst(), time::macros::date!(2021 - 05 - 31));
        assert_eq!(
            UnixMicros(before.0 + 1_000_000).today_jst(),
            time::macros::date!(2021 - 06 - 01)
        );
        let clock = ManualClock::at(before);
        clock.advance_micros(1_000_000);
        assert_eq!(clock.now().today_jst(), time::macros::date!(2021 - 06 - 01));
    }

    #[test]
    fn jst_round_trips_at_second_precision() {
        let t = jst_from_micros(1_622_505_600_123_456).unwrap();
        assert_eq!(t.to_string(), "2021-06-01 9:00:00.0");
        assert_eq!(micros_from_jst(t), 1_622_505_600_000_000);
    }
}
