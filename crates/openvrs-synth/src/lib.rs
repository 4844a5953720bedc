//! Synthetic residents: realistic, deterministic for a seed, never real people.
//!
//! Tests, the demo and benchmarks all use this one generator, and [`write_targets_csv`] writes
//! what it makes in the targets layout of `reference/csv.md` (UTF-8 or Shift_JIS).
//! [`Generator::doses`] gives each resident a plausible vaccination history (drawn from the
//! resident's own address number, so it does not change who the generator makes), and
//! [`write_ledger_csv`] writes those in the ledger layout, written here independently of the
//! system's own ledger writer.

use std::{collections::HashSet, io::Write};

use openvrs_domain::{
    date::{Era, Wareki},
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    name::{KanaName, Name},
    person::{BirthDate, Flags, MovedOut, Person, Voucher},
    sex::Sex,
};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use time::{Date, Duration, Month};

const FAMILY: &[(&str, &str)] = &[
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
    ("比嘉", "ヒガ"),
    ("金城", "キンジョウ"),
    ("大城", "オオシロ"),
    ("宮城", "ミヤギ"),
    ("新垣", "アラカキ"),
    ("玉城", "タマキ"),
    ("上原", "ウエハラ"),
    ("島袋", "シマブクロ"),
    ("平良", "タイラ"),
    ("知念", "チネン"),
    ("仲宗根", "ナカソネ"),
    ("照屋", "テルヤ"),
    ("具志堅", "グシケン"),
    ("喜屋武", "キャン"),
    ("石川", "イシカワ"),
    ("前田", "マエダ"),
    ("藤田", "フジタ"),
    ("岡田", "オカダ"),
    ("後藤", "ゴトウ"),
    ("長谷川", "ハセガワ"),
];

const MALE: &[(&str, &str)] = &[
    ("太郎", "タロウ"),
    ("健太", "ケンタ"),
    ("翔", "ショウ"),
    ("大輔", "ダイスケ"),
    ("誠", "マコト"),
    ("浩", "ヒロシ"),
    ("隆", "タカシ"),
    ("一郎", "イチロウ"),
    ("蓮", "レン"),
    ("悠真", "ユウマ"),
    ("大翔", "ヒロト"),
    ("湊", "ミナト"),
    ("清", "キヨシ"),
    ("勇", "イサム"),
    ("実", "ミノル"),
    ("進", "ススム"),
    ("和夫", "カズオ"),
    ("茂", "シゲル"),
    ("拓也", "タクヤ"),
    ("直樹", "ナオキ"),
];

const FEMALE: &[(&str, &str)] = &[
    ("花子", "ハナコ"),
    ("陽子", "ヨウコ"),
    ("恵子", "ケイコ"),
    ("幸子", "サチコ"),
    ("美咲", "ミサキ"),
    ("葵", "アオイ"),
    ("結衣", "ユイ"),
    ("陽菜", "ヒナ"),
    ("さくら", "サクラ"),
    ("芽依", "メイ"),
    ("和子", "カズコ"),
    ("節子", "セツコ"),
    ("明美", "アケミ"),
    ("真由美", "マユミ"),
    ("愛", "アイ"),
    ("優子", "ユウコ"),
    ("直美", "ナオミ"),
    ("裕子", "ヒロコ"),
    ("京子", "キョウコ"),
    ("美穂", "ミホ"),
];

/// Makes residents of one municipality, deterministically for `(municipality, seed)`.
#[derive(Debug)]
pub struct Generator {
    municipality: MunicipalityCode,
    rng: ChaCha8Rng,
    my_numbers: HashSet<u64>,
    vouchers: HashSet<u64>,
    next_address: u64,
}

impl Generator {
    pub fn new(municipality: MunicipalityCode, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from(municipality.value()) << 32);
        let next_address = rng.gen_range(1_000_000..2_000_000);
        Self {
            municipality,
            rng,
            my_numbers: HashSet::new(),
            vouchers: HashSet::new(),
            next_address,
        }
    }

    pub fn municipality(&self) -> MunicipalityCode {
        self.municipality
    }

    fn unique(rng: &mut ChaCha8Rng, used: &mut HashSet<u64>, below: u64) -> u64 {
        loop {
            let n = rng.gen_range(0..below);
            if used.insert(n) {
                return n;
            }
        }
    }

    fn voucher(&mut self, dose: u32, issued_on: Date) -> Voucher {
        let n = Self::unique(&mut self.rng, &mut self.vouchers, 10_000_000_000);
        Voucher {
            number: VoucherNumber::parse(&format!("{n:010}")).expect("10 digits"),
            voucher_type: Some(1),
            dose_number: Some(DoseNumber::new(dose).expect("non-zero")),
            issued_on: Some(issued_on),
        }
    }

    /// The next resident.
    pub fn person(&mut self) -> Person {
        let sex = if self.rng.gen_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        let family = *FAMILY.choose(&mut self.rng).expect("non-empty");
        let given = *(if sex == Sex::Male { MALE } else { FEMALE })
            .choose(&mut self.rng)
            .expect("non-empty");
        let start = Date::from_calendar_date(1920, Month::January, 1).expect("valid");
        let birth = start + Duration::days(self.rng.gen_range(0..36_500));
        let my_number = self.rng.gen_bool(0.95).then(|| {
            let n = Self::unique(&mut self.rng, &mut self.my_numbers, 100_000_000_000);
            let s = format!("{n:011}");
            let mut first = [0u8; 11];
            for (f, b) in first.iter_mut().zip(s.bytes()) {
                *f = b - b'0';
            }
            MyNumber::from_first_eleven(first).expect("digits")
        });
        let address = self.next_address;
        self.next_address += self.rng.gen_range(1..20);
        let issued = Date::from_calendar_date(2021, Month::March, 1).expect("valid")
            + Duration::days(self.rng.gen_range(0..60));
        let mut vouchers = vec![self.voucher(1, issued)];
        if self.rng.gen_bool(0.3) {
            vouchers.push(self.voucher(3, issued + Duration::days(270)));
        }
        let mut flags = Flags::default();
        let roll = self.rng.gen_range(0..1000);
        if roll < 10 {
            flags.moved_out = Some(MovedOut {
                on: issued + Duration::days(self.rng.gen_range(1..400)),
                to: None,
            });
        } else if roll < 15 {
            flags.deceased_on = Some(issued + Duration::days(self.rng.gen_range(1..400)));
        }
        Person {
            address_number: AddressNumber::parse(&format!("{address:010}")).expect("digits"),
            name: Name::parse(&format!("{} {}", family.0, given.0)).expect("valid name"),
            name_kana: KanaName::parse(&format!("{} {}", family.1, given.1)).expect("valid kana"),
            birth_date: BirthDate(birth),
            sex,
            my_number,
            flags,
            vouchers,
        }
    }

    /// A date of birth written as municipalities do: mostly ISO, sometimes in an era form.
    /// The form depends on the date alone, so writing a file draws nothing from the generator:
    /// the persons in a file are exactly those the generator makes for the same seed.
    fn birth_text(d: Date) -> String {
        let (era, year) = Era::of(d).expect("after Meiji");
        match d.to_julian_day().rem_euclid(10) {
            0 => Wareki {
                date: d,
                gannen: true,
            }
            .to_string(),
            1 => format!(
                "{}{}.{}.{}",
                era.letter(),
                year,
                u8::from(d.month()),
                d.day()
            ),
            2 => format!("{}{:02}{:02}", d.year(), u8::from(d.month()), d.day()),
            _ => d.to_string(),
        }
    }
}

impl Iterator for Generator {
    type Item = Person;
    fn next(&mut self) -> Option<Person> {
        Some(self.person())
    }
}

/// Text encodings for CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// Shift_JIS as Windows writes it (CP932).
    ShiftJis,
}

/// The header of the targets layout, in `reference/csv.md` order.
pub const TARGETS_HEADER: [&str; 13] = [
    "自治体コード",
    "宛名番号",
    "券番号",
    "券種",
    "接種回",
    "氏名",
    "氏名カナ",
    "生年月日",
    "性別",
    "個人番号",
    "発行日",
    "転出日",
    "死亡日",
];

/// Transcodes whole lines from UTF-8 to the target encoding on the way to `out`.
struct Transcode<'a> {
    out: &'a mut dyn Write,
    encoding: Encoding,
    pending: Vec<u8>,
}

impl Transcode<'_> {
    fn emit(&mut self, upto: usize) -> std::io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        match self.encoding {
            Encoding::Utf8 => self.out.write_all(&chunk),
            Encoding::ShiftJis => {
                let text = std::str::from_utf8(&chunk).map_err(std::io::Error::other)?;
                let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
                if unmappable {
                    return Err(std::io::Error::other(
                        "Shift_JIS で表せない文字があります / a character has no Shift_JIS form",
                    ));
                }
                self.out.write_all(&bytes)
            }
        }
    }
}

impl Write for Transcode<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= 64 * 1024
            && let Some(end) = self.pending.iter().rposition(|b| *b == b'\n')
        {
            self.emit(end + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit(self.pending.len())?;
        self.out.flush()
    }
}

/// Venues of the synthetic doses.
const VENUES: &[&str] = &[
    "市民体育館",
    "中央公民館",
    "県立中部病院",
    "ひがしクリニック",
    "集団接種会場（イオン）",
];

impl Generator {
    /// A plausible vaccination history for `p`, deterministic for the person: none for a child
    /// under 5 in 2021, none after death; doses 1 and 2 three to six weeks apart, often a third.
    pub fn doses(&self, p: &Person) -> Vec<Dose> {
        let seed = p
            .address_number
            .as_str()
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            ^ u64::from(self.municipality.value());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let start = Date::from_calendar_date(2021, Month::May, 1).expect("valid");
        if p.birth_date.0.year() > 2016 || !rng.gen_bool(0.8) {
            return Vec::new();
        }
        let pfizer = rng.gen_bool(0.7);
        let first = start + Duration::days(rng.gen_range(0..120));
        let mut dates = vec![first];
        if rng.gen_bool(0.9) {
            dates.push(first + Duration::days(rng.gen_range(21..42)));
            if rng.gen_bool(0.6) {
                dates.push(dates[1] + Duration::days(rng.gen_range(180..270)));
            }
        }
        let venue = *VENUES.choose(&mut rng).expect("non-empty");
        let lot = if pfizer {
            format!(
                "F{}{:04}",
                char::from(b'A' + rng.gen_range(0..10u8)),
                rng.gen_range(0..10_000)
            )
        } else {
            format!("{:07}", rng.gen_range(3_000_000..3_010_000))
        };
        let product = if pfizer { "comirnaty" } else { "spikevax" };
        dates
            .into_iter()
            .take_while(|d| p.flags.deceased_on.is_none_or(|died| *d <= died))
            .enumerate()
            .map(|(i, date)| {
                let number = DoseNumber::new(i as u32 + 1).expect("non-zero");
                let voucher = p
                    .vouchers
                    .iter()
                    .filter(|v| v.dose_number.is_some_and(|n| n.get() <= number.get()))
                    .max_by_key(|v| v.dose_number)
                    .map(|v| v.number);
                Dose {
                    number,
                    status: DoseStatus::Given,
                    date,
                    product: Short::parse(product).expect("short"),
                    lot: Short::parse(&lot).expect("short"),
                    venue: Short::parse(venue).expect("short"),
                    doctor: Short::parse(&format!("医師 {}", rng.gen_range(1..40))).expect("short"),
                    source: DoseSource::Csv,
                    voucher,
                    given_in: Some(self.municipality),
                }
            })
            .collect()
    }
}

/// The ledger's maker names of the synthetic products (the seed catalogue's).
fn ledger_maker(product: &str) -> &'static str {
    match product {
        "comirnaty" => "ファイザー",
        _ => "武田/モデルナ",
    }
}

/// Writes the doses of `count` residents from `generator` in the immunization ledger layout
/// (three dose blocks, CRLF), one row per resident with doses.
pub fn write_ledger_csv(
    generator: &mut Generator,
    count: u64,
    encoding: Encoding,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Transcode {
            out,
            encoding,
            pending: Vec::new(),
        });
    let mut header = vec!["個別宛名番号".to_owned()];
    for n in 1..=3 {
        for c in [
            "接種履歴登録日時",
            "接種日",
            "券番号",
            "接種自治体コード",
            "接種会場名",
            "接種医師名",
            "ワクチンメーカー",
            "ワクチンロット番号",
        ] {
            header.push(format!("{n}回目{c}"));
        }
    }
    csv.write_record(&header)?;
    for _ in 0..count {
        let p = generator.person();
        let doses = generator.doses(&p);
        if doses.is_empty() {
            continue;
        }
        let mut row = vec![p.address_number.as_str().to_owned()];
        for d in &doses {
            let day = format!(
                "{:04}{:02}{:02}",
                d.date.year(),
                u8::from(d.date.month()),
                d.date.day()
            );
            row.extend([
                format!("{day}170000"),
                day,
                d.voucher.map(|v| v.to_string()).unwrap_or_default(),
                d.given_in.map(|c| c.to_string()).unwrap_or_default(),
                d.venue.as_str().to_owned(),
                d.doctor.as_str().to_owned(),
                ledger_maker(d.product.as_str()).to_owned(),
                d.lot.as_str().to_owned(),
            ]);
        }
        row.resize(header.len(), String::new());
        csv.write_record(&row)?;
    }
    csv.flush()
}

/// Writes `count` residents from `generator` as a targets CSV (one row per voucher, CRLF),
/// streaming: memory does not grow with `count`.
pub fn write_targets_csv(
    generator: &mut Generator,
    count: u64,
    encoding: Encoding,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Transcode {
            out,
            encoding,
            pending: Vec::new(),
        });
    csv.write_record(TARGETS_HEADER)?;
    let code = generator.municipality().to_string();
    for _ in 0..count {
        let p = generator.person();
        let birth = Generator::birth_text(p.birth_date.0);
        for v in &p.vouchers {
            let date = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
            csv.write_record([
                code.as_str(),
                p.address_number.as_str(),
                v.number.as_str(),
                &v.voucher_type.map(|t| t.to_string()).unwrap_or_default(),
                &v.dose_number.map(|d| d.to_string()).unwrap_or_default(),
                p.name.as_str(),
                p.name_kana.as_str(),
                &birth,
                &p.sex.iso5218().to_string(),
                &p.my_number
                    .as_ref()
                    .map(MyNumber::expose)
                    .unwrap_or_default(),
                &date(v.issued_on),
                &date(p.flags.moved_out.map(|m| m.on)),
                &date(p.flags.deceased_on),
            ])?;
        }
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uruma() -> MunicipalityCode {
        MunicipalityCode::parse("472131").unwrap()
    }

    #[test]
    fn deterministic_for_a_seed_and_distinct_across_towns() {
        let a: Vec<Person> = Generator::new(uruma(), 7).take(50).collect();
        let b: Vec<Person> = Generator::new(uruma(), 7).take(50).collect();
        assert_eq!(a, b);
        let naha = MunicipalityCode::parse("472018").unwrap();
        let c: Vec<Person> = Generator::new(naha, 7).take(50).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn identifiers_are_unique_and_valid() {
        let people: Vec<Person> = Generator::new(uruma(), 1).take(5000).collect();
        let mut addresses = HashSet::new();
        let mut vouchers = HashSet::new();
        let mut numbers = HashSet::new();
        for p in &people {
            assert!(addresses.insert(p.address_number.clone()));
            for v in &p.vouchers {
                assert!(vouchers.insert(v.number));
            }
            if let Some(n) = &p.my_number {
                assert!(numbers.insert(n.expose()));
                assert_eq!(&MyNumber::parse(&n.expose()).unwrap(), n);
            }
        }
        assert!(numbers.len() > 4500, "most residents have a My Number");
        assert!(
            vouchers.len() > 6000,
            "some residents have a second voucher"
        );
    }

    #[test]
    fn csv_in_both_encodings() {
        let mut utf8 = Vec::new();
        write_targets_csv(
            &mut Generator::new(uruma(), 3),
            20,
            Encoding::Utf8,
            &mut utf8,
        )
        .unwrap();
        let mut sjis = Vec::new();
        write_targets_csv(
            &mut Generator::new(uruma(), 3),
            20,
            Encoding::ShiftJis,
            &mut sjis,
        )
        .unwrap();
        let text = String::from_utf8(utf8).unwrap();
        assert!(text.starts_with("自治体コード,宛名番号,券番号"));
        assert!(text.ends_with("\r\n"));
        let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
        assert!(!bad);
        assert_eq!(decoded, text);
        let rows = text.lines().count() - 1;
        assert!(rows >= 20, "{rows}");
    }
}
