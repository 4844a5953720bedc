//! The CSV layouts of `reference/csv.md`: the targets-and-vouchers file, the immunization
//! ledger (予防接種台帳) and the flags file.
//!
//! Reading streams: memory does not grow with the file. Every bad cell is reported with its row
//! (the file's line of the record, header = 1), its column and the reason, Japanese first; the
//! values of personal columns are never repeated.

use std::{
    fmt,
    io::{BufRead, BufReader, Read},
};

use encoding_rs_io::DecodeReaderBytesBuilder;
use openvrs_domain::{
    Invalid,
    date::parse_date,
    dose::DoseNumber,
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    name::{KanaName, Name},
    person::{BirthDate, Flags, MovedOut, Person, Voucher},
    sex::Sex,
    text,
};
use time::Date;

mod flags;
mod inquiry;
mod ledger;
mod runs;

pub use flags::{FlagRow, read_flags};
pub use inquiry::{InquiryRow, MAX_INQUIRY_ROWS, read_inquiries};
pub use ledger::{LedgerDose, LedgerReader, LedgerRow, LedgerWriter, read_ledger};

/// The encodings municipal files come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 when the start of the file is valid UTF-8 (or has a BOM), Shift_JIS otherwise.
    Auto,
    Utf8,
    /// Windows-31J / CP932.
    ShiftJis,
}

/// The columns of the targets layout: Japanese name (canonical), English alias, required,
/// personal (its values are never shown in errors).
const COLUMNS: [(&str, &str, bool, bool); 13] = [
    ("自治体コード", "municipality_code", true, false),
    ("宛名番号", "address_number", true, false),
    ("券番号", "voucher_number", true, false),
    ("券種", "voucher_type", false, false),
    ("接種回", "dose_number", false, false),
    ("氏名", "name", true, true),
    ("氏名カナ", "name_kana", true, true),
    ("生年月日", "birth_date", true, true),
    ("性別", "sex", true, false),
    ("個人番号", "my_number", false, true),
    ("発行日", "issued_on", false, false),
    ("転出日", "moved_out_on", false, false),
    ("死亡日", "died_on", false, false),
];

/// A problem with the whole file (it cannot be read as a targets file at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub ja: String,
    pub en: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.ja, self.en)
    }
}

impl std::error::Error for FileError {}

fn file_error(ja: impl Into<String>, en: impl Into<String>) -> FileError {
    FileError {
        ja: ja.into(),
        en: en.into(),
    }
}

/// One bad cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    /// The line of the file where the record starts (the header is line 1).
    pub row: u64,
    /// The column's Japanese name.
    pub column: String,
    /// The value as read, for non-personal columns only (shortened).
    pub value: Option<String>,
    /// The column holds personal data: its value is never shown.
    pub personal: bool,
    pub ja: String,
    pub en: String,
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match (&self.value, self.personal) {
            (_, true) => "(個人情報のため非表示 / personal value hidden)".into(),
            (Some(v), false) => format!("「{v}」"),
            (None, false) => "(空 / empty)".into(),
        };
        write!(
            f,
            "{}行目 {} {}: {} / row {}, column {}: {}",
            self.row, self.column, shown, self.ja, self.row, self.column, self.en
        )
    }
}

/// A targets file being read: its header is checked, its records come as persons (consecutive
/// rows of one 宛名番号 merged into one person with all its vouchers).
pub struct TargetsReader {
    records: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
    /// For each canonical column, its index in the file.
    index: [Option<usize>; 13],
    municipality: MunicipalityCode,
    today: Date,
    pending: Option<(u64, Person)>,
    /// The row where the person last returned starts.
    last_row: u64,
    done: bool,
}

impl fmt::Debug for TargetsReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetsReader")
            .field("municipality", &self.municipality)
            .finish()
    }
}

fn detect(start: &[u8]) -> &'static encoding_rs::Encoding {
    if start.starts_with(b"\xEF\xBB\xBF") {
        return encoding_rs::UTF_8;
    }
    match std::str::from_utf8(start) {
        Ok(_) => encoding_rs::UTF_8,
        // A character cut by the end of the sample is still UTF-8.
        Err(e) if e.error_len().is_none() => encoding_rs::UTF_8,
        Err(_) => encoding_rs::SHIFT_JIS,
    }
}

pub(crate) fn header_name(raw: &str) -> String {
    text::normalize(raw.trim_start_matches('\u{feff}'))
}

type CsvReader = csv::Reader<Box<dyn Read + Send>>;

/// Decodes `input` (detecting or forcing the encoding, dropping a BOM) into a CSV reader whose
/// header row has been read; returns the reader and the normalised header names.
fn open_csv<R: Read + Send + 'static>(
    input: R,
    encoding: Encoding,
) -> Result<(CsvReader, Vec<String>), FileError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, input);
    let start = buffered
        .fill_buf()
        .map_err(|e| file_error(format!("読み込めません: {e}"), format!("cannot read: {e}")))?;
    if start.is_empty() {
        return Err(file_error("ファイルが空です", "the file is empty"));
    }
    let enc = match encoding {
        Encoding::Auto => detect(start),
        Encoding::Utf8 => encoding_rs::UTF_8,
        Encoding::ShiftJis => encoding_rs::SHIFT_JIS,
    };
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(Some(enc))
        .bom_override(true)
        .strip_bom(true)
        .build(buffered);
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(Box::new(decoded) as Box<dyn Read + Send>);
    let headers = csv
        .headers()
        .map_err(|e| {
            file_error(
                format!("見出し行を読めません: {e}"),
                format!("cannot read the header row: {e}"),
            )
        })?
        .iter()
        .map(header_name)
        .collect();
    Ok((csv, headers))
}

/// Opens a targets file for municipality `m`. `today` bounds birth and event dates.
pub fn read_targets<R: Read + Send + 'static>(
    input: R,
    encoding: Encoding,
    m: MunicipalityCode,
    today: Date,
) -> Result<TargetsReader, FileError> {
    let (csv, headers) = open_csv(input, encoding)?;
    let mut index = [None; 13];
    let mut unknown = Vec::new();
    for (i, name) in headers.into_iter().enumerate() {
        if name.is_empty() {
            continue; // trailing empty columns
        }
        match COLUMNS
            .iter()
            .position(|(ja, en, _, _)| *ja == name || en.eq_ignore_ascii_case(&name))
        {
            Some(c) if index[c].is_some() => {
                return Err(file_error(
                    format!("見出し「{}」が重複しています", COLUMNS[c].0),
                    format!("the column {} appears twice", COLUMNS[c].1),
                ));
            }
            Some(c) => index[c] = Some(i),
            None => unknown.push(if name.contains('\u{fffd}') {
                "(文字化け / garbled)".to_owned()
            } else {
                name
            }),
        }
    }
    if !unknown.is_empty() {
        return Err(file_error(
            format!(
                "不明な見出しがあります: {}(文字コードも確認してください)",
                unknown.join(", ")
            ),
            format!(
                "unknown columns: {} (check the encoding too)",
                unknown.join(", ")
            ),
        ));
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .zip(&index)
        .filter(|((_, _, required, _), i)| *required && i.is_none())
        .map(|((ja, _, _, _), _)| *ja)
        .collect();
    if !missing.is_empty() {
        return Err(file_error(
            format!("必須の見出しがありません: {}", missing.join(", ")),
            format!("required columns missing: {}", missing.join(", ")),
        ));
    }
    Ok(TargetsReader {
        records: csv.into_records(),
        index,
        municipality: m,
        today,
        pending: None,
        last_row: 0,
        done: false,
    })
}

/// The errors of one record, or a file-level failure while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    Cells(Vec<CellError>),
    File(FileError),
}

struct Row<'a> {
    record: &'a csv::StringRecord,
    index: &'a [Option<usize>; 13],
    line: u64,
    errors: Vec<CellError>,
}

impl Row<'_> {
    fn cell(&self, c: usize) -> Option<&str> {
        self.index[c]
            .and_then(|i| self.record.get(i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn fail(&mut self, c: usize, ja: &str, en: &str) {
        let (column, _, _, personal) = COLUMNS[c];
        let value = (!personal)
            .then(|| self.cell(c).map(|v| v.chars().take(40).collect()))
            .flatten();
        self.errors.push(CellError {
            row: self.line,
            column: column.to_owned(),
            value,
            personal,
            ja: ja.into(),
            en: en.into(),
        });
    }

    fn parse<T>(&mut self, c: usize, f: impl FnOnce(&str) -> Result<T, Invalid>) -> Option<T> {
        let value = self.cell(c)?;
        if value.contains('\u{fffd}') {
            self.fail(
                c,
                "文字コードが正しくありません",
                "invalid characters for the file's encoding",
            );
            return None;
        }
        match f(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(c, e.ja, e.en);
                None
            }
        }
    }

    fn required<T>(&mut self, c: usize, f: impl FnOnce(&str) -> Result<T, Invalid>) -> Option<T> {
        if self.cell(c).is_none() {
            self.fail(c, "必須項目が空です", "a required value is empty");
            return None;
        }
        self.parse(c, f)
    }

    fn past_date(&mut self, c: usize, today: Date) -> Option<Date> {
        let d = self.parse(c, parse_date)?;
        if d > today {
            self.fail(c, "未来の日付です", "the date is in the future");
            return None;
        }
        Some(d)
    }
}

impl TargetsReader {
    fn person(&self, record: &csv::StringRecord) -> Result<(u64, Person), Vec<CellError>> {
        let line = record.position().map_or(0, |p| p.line());
        let mut row = Row {
            record,
            index: &self.index,
            line,
            errors: Vec::new(),
        };
        let m = row.required(0, MunicipalityCode::parse_restoring_zero);
        if m.is_some_and(|m| m != self.municipality) {
            row.fail(
                0,
                "取込先と異なる自治体の行です",
                "the row belongs to another municipality",
            );
        }
        let address = row.required(1, AddressNumber::parse);
        let voucher = row.required(2, VoucherNumber::parse_restoring_zeros);
        let voucher_type = row.parse(3, |s| {
            text::digits(s)
                .filter(|d| d.len() == 1)
                .map(|d| d.as_bytes()[0] - b'0')
                .ok_or(Invalid {
                    kind: "voucher_type",
                    ja: "券種は1桁の数字です",
                    en: "the voucher type is one digit",
                })
        });
        let dose = row.parse(4, DoseNumber::parse);
        let name = row.required(5, Name::parse);
        let kana = row.required(6, KanaName::parse);
        let birth = if row.cell(7).is_none() {
            row.required(7, parse_date)
        } else {
            row.past_date(7, self.today)
        };
        let sex = row.required(8, Sex::parse);
        let my_number = row.parse(9, MyNumber::parse);
        let issued = row.parse(10, parse_date);
        let moved = row.past_date(11, self.today);
        let died = row.past_date(12, self.today);
        if let (Some(b), Some(d)) = (birth, died)
            && d < b
        {
            row.fail(
                12,
                "死亡日が生年月日より前です",
                "the date of death is before the date of birth",
            );
        }
        let Row { errors, .. } = row;
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(address), Some(voucher), Some(name), Some(kana), Some(birth), Some(sex)) =
            (address, voucher, name, kana, birth, sex)
        else {
            unreachable!("every required value either parsed or added an error");
        };
        Ok((
            line,
            Person {
                address_number: address,
                name,
                name_kana: kana,
                birth_date: BirthDate(birth),
                sex,
                my_number,
                flags: Flags {
                    moved_out: moved.map(|on| MovedOut { on, to: None }),
                    deceased_on: died,
                    use_suspended: false,
                },
                vouchers: vec![Voucher {
                    number: voucher,
                    voucher_type,
                    dose_number: dose,
                    issued_on: issued,
                }],
            },
        ))
    }
}

/// Whether two rows describe the same person in the same way (vouchers aside).
fn same_identity(a: &Person, b: &Person) -> bool {
    Person {
        vouchers: Vec::new(),
        ..a.clone()
    } == Person {
        vouchers: Vec::new(),
        ..b.clone()
    }
}

impl TargetsReader {
    /// The row (line of the file) where the person last returned starts.
    pub fn last_row(&self) -> u64 {
        self.last_row
    }
}

/// A key for an address number: its digits and its length (`0012` and `12` differ).
fn address_key(a: &AddressNumber) -> u64 {
    let s = a.as_str();
    s.parse::<u64>().unwrap_or(u64::MAX >> 4) << 4 | s.len() as u64
}

/// A digest of who a row says the person is (vouchers aside).
fn identity_digest(p: &Person) -> u32 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        p.name.as_str(),
        p.name_kana.as_str(),
        p.birth_date.0,
        p.sex.iso5218(),
        p.my_number.as_ref().map(MyNumber::expose),
        format!("{:?}", p.flags),
    )
        .hash(&mut h);
    h.finish() as u32
}

impl Iterator for TargetsReader {
    type Item = Result<Person, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return self.pending.take().map(|(row, p)| {
                    self.last_row = row;
                    Ok(p)
                });
            }
            let record = match self.records.next() {
                None => {
                    self.done = true;
                    continue;
                }
                Some(Err(e)) => {
                    self.done = true;
                    let line = e.position().map_or(0, |p| p.line());
                    return Some(Err(RowError::File(file_error(
                        format!("{line}行目を読めません: {e}"),
                        format!("cannot read row {line}: {e}"),
                    ))));
                }
                Some(Ok(r)) => r,
            };
            if record.iter().all(|f| f.trim().is_empty()) {
                continue; // blank lines, as spreadsheets leave them
            }
            let (line, person) = match self.person(&record) {
                Ok(p) => p,
                Err(cells) => return Some(Err(RowError::Cells(cells))),
            };
            match self.pending.take() {
                Some((first, mut prev)) if prev.address_number == person.address_number => {
                    if !same_identity(&prev, &person) {
                        self.pending = None;
                        return Some(Err(RowError::Cells(vec![CellError {
                            row: line,
                            column: COLUMNS[1].0.to_owned(),
                            value: Some(person.address_number.to_string()),
                            personal: false,
                            ja: format!("{first}行目と同じ宛名番号ですが氏名等が異なります"),
                            en: format!(
                                "same address number as row {first}, but a different person"
                            ),
                        }])));
                    }
                    prev.vouchers.extend(person.vouchers);
                    self.pending = Some((first, prev));
                }
                Some((row, prev)) => {
                    self.pending = Some((line, person));
                    self.last_row = row;
                    return Some(Ok(prev));
                }
                None => self.pending = Some((line, person)),
            }
        }
    }
}

/// Rows as the voucher check keeps them: 30 bits (a file of over a billion rows shows its last
/// rows as this number).
const ROW_MASK: u64 = (1 << 30) - 1;

/// Records of each kind the check keeps in memory before it spills a sorted run to disk.
const IN_MEMORY: usize = 1 << 21;

/// Error messages kept; past this they are only counted.
const MAX_ERRORS: usize = 10_000;

/// The whole-file checks of a targets file, fed person by person as they are read: every bad
/// row, and repeats anywhere in the file (a voucher, a My Number under two address numbers, an
/// address number with two identities). Memory stays bounded whatever the file's size: what it
/// must remember (8 bytes a voucher, 16 a person and a My Number) goes to sorted temporary runs
/// past a few million records, and at most ten thousand messages are kept.
#[derive(Debug)]
pub struct TargetsCheck {
    errors: Vec<String>,
    more_errors: u64,
    persons: u64,
    /// Voucher number (34 bits) and row (30 bits) in one word.
    vouchers: runs::Runs<u64>,
    /// (address, row, identity digest)
    addresses: runs::Runs<(u64, u32, u32)>,
    /// (My Number, row, address hash): the same person may come twice, another may not.
    my_numbers: runs::Runs<(u64, u32, u32)>,
}

impl Default for TargetsCheck {
    fn default() -> Self {
        Self::with_limit(IN_MEMORY)
    }
}

impl TargetsCheck {
    /// A check that keeps at most `limit` records of each kind in memory.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            errors: Vec::new(),
            more_errors: 0,
            persons: 0,
            vouchers: runs::Runs::new(limit),
            addresses: runs::Runs::new(limit),
            my_numbers: runs::Runs::new(limit),
        }
    }

    fn push_error(&mut self, e: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        } else {
            self.more_errors += 1;
        }
    }

    /// A person read from `row`.
    pub fn person(&mut self, p: &Person, row: u64) {
        self.persons += 1;
        let row30 = row.min(ROW_MASK);
        let row = u32::try_from(row).unwrap_or(u32::MAX);
        let address = address_key(&p.address_number);
        self.addresses.push((address, row, identity_digest(p)));
        for v in &p.vouchers {
            // Ten digits fit in 34 bits.
            let number = v.number.as_str().parse::<u64>().unwrap_or(0);
            self.vouchers.push(number << 30 | row30);
        }
        if let Some(n) = &p.my_number {
            let n = n.expose().parse::<u64>().unwrap_or(0);
            let a = (address.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32;
            self.my_numbers.push((n, row, a));
        }
    }

    /// A row that could not be read.
    pub fn error(&mut self, e: &RowError) {
        match e {
            RowError::Cells(cells) => {
                for c in cells {
                    self.push_error(c.to_string());
                }
            }
            RowError::File(e) => self.push_error(e.to_string()),
        }
    }

    /// Whether every row so far is good (repeats are only known at the end).
    pub fn clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every problem of the file; or the number of persons when there is none.
    pub fn finish(mut self) -> Result<u64, Vec<String>> {
        let io = |e: String| {
            vec![
                file_error(
                    format!("一時ファイルを使えません: {e}"),
                    format!("cannot use a temporary file: {e}"),
                )
                .to_string(),
            ]
        };
        let vouchers = std::mem::replace(&mut self.vouchers, runs::Runs::new(1));
        let mut previous: Option<u64> = None;
        for v in vouchers.sorted().map_err(io)? {
            if let Some(p) = previous
                && p >> 30 == v >> 30
            {
                let (number, first, row) = (v >> 30, p & ROW_MASK, v & ROW_MASK);
                self.push_error(format!(
                    "{row}行目 券番号 「{number:010}」: {first}行目と重複しています / row {row}, column 券番号: repeats row {first}"
                ));
            }
            previous = Some(v);
        }
        // In address then row order: each later row of an address is compared with its first.
        let addresses = std::mem::replace(&mut self.addresses, runs::Runs::new(1));
        let mut group: Option<(u64, u32, u32)> = None;
        for (address, row, digest) in addresses.sorted().map_err(io)? {
            match group {
                Some((a, first, d)) if a == address => {
                    if d != digest {
                        self.push_error(format!(
                            "{row}行目 宛名番号: {first}行目と同じ宛名番号ですが氏名等が異なります / row {row}, column 宛名番号: same address number as row {first}, but a different person"
                        ));
                    }
                }
                _ => group = Some((address, row, digest)),
            }
        }
        let my_numbers = std::mem::replace(&mut self.my_numbers, runs::Runs::new(1));
        let mut group: Option<(u64, u32, u32)> = None;
        for (n, row, address) in my_numbers.sorted().map_err(io)? {
            match group {
                Some((m, first, a)) if m == n => {
                    if a != address {
                        self.push_error(format!(
                            "{row}行目 個人番号 (個人情報のため非表示 / personal value hidden): {first}行目の別の宛名番号と同じ個人番号です / row {row}, column 個人番号: the same My Number as another address number in row {first}"
                        ));
                    }
                }
                _ => group = Some((n, row, address)),
            }
        }
        if self.persons == 0 && self.errors.is_empty() {
            self.push_error(
                file_error("データ行がありません", "the file has no data rows").to_string(),
            );
        }
        if self.more_errors > 0 {
            let n = self.more_errors;
            self.errors
                .push(format!("ほか {n} 件の誤り / and {n} more errors"));
        }
        if self.errors.is_empty() {
            Ok(self.persons)
        } else {
            Err(self.errors)
        }
    }
}

/// Every bad row of a file, at once; or the count of persons when there is none.
pub fn validate_targets<R: Read + Send + 'static>(
    input: R,
    encoding: Encoding,
    m: MunicipalityCode,
    today: Date,
) -> Result<u64, Vec<String>> {
    let mut reader = read_targets(input, encoding, m, today).map_err(|e| vec![e.to_string()])?;
    let mut check = TargetsCheck::default();
    while let Some(item) = reader.next() {
        match item {
            Ok(p) => check.person(&p, reader.last_row()),
            Err(e) => check.error(&e),
        }
    }
    check.finish()
}

/// Where each of `columns` (Japanese name, English alias) is in a header; an unknown or
/// repeated column, or a missing `required` one, is a file error.
pub(crate) fn column_index<const N: usize>(
    headers: &[String],
    columns: &[(&str, &str); N],
    required: &[usize],
) -> Result<[Option<usize>; N], FileError> {
    let mut index = [None; N];
    for (i, name) in headers.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let short: String = name.chars().take(40).collect();
        let Some(c) = columns
            .iter()
            .position(|(ja, en)| *ja == name || en.eq_ignore_ascii_case(name))
        else {
            return Err(file_error(
                format!("不明な見出しがあります: {short}"),
                format!("unknown column: {short}"),
            ));
        };
        if index[c].replace(i).is_some() {
            return Err(file_error(
                format!("見出し「{}」が重複しています", columns[c].0),
                format!("the column {} appears twice", columns[c].1),
            ));
        }
    }
    let missing: Vec<&str> = required
        .iter()
        .filter(|&&c| index[c].is_none())
        .map(|&c| columns[c].0)
        .collect();
    if !missing.is_empty() {
        let missing = missing.join(", ");
        return Err(file_error(
            format!("必須の見出しがありません: {missing}"),
            format!("required columns missing: {missing}"),
        ));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "自治体コード,宛名番号,券番号,氏名,氏名カナ,生年月日,性別,個人番号\n";

    fn uruma() -> MunicipalityCode {
        MunicipalityCode::parse("472131").unwrap()
    }

    fn today() -> Date {
        parse_date("2026-11-27").unwrap()
    }

    fn check(input: &[u8], encoding: Encoding) -> Result<u64, String> {
        validate_targets(
            std::io::Cursor::new(input.to_vec()),
            encoding,
            uruma(),
            today(),
        )
        .map_err(|e| e.join("\n"))
    }

    fn with_rows(rows: &str) -> Vec<u8> {
        format!("{HEADER}{rows}").into_bytes()
    }

    #[test]
    fn good_files_in_every_form() {
        let sjis = encoding_rs::SHIFT_JIS
            .encode(
                &String::from_utf8(with_rows(
                    "472131,1,1,山田 太郎,ﾔﾏﾀﾞ ﾀﾛｳ,S45.1.1,1,123456789018\r\n",
                ))
                .unwrap(),
            )
            .0
            .into_owned();
        let cases: Vec<(&str, Vec<u8>, Encoding, u64)> = vec![
            ("utf8", with_rows("472131,1,0000000001,山田 太郎,ヤマダ タロウ,1970-01-01,1,123456789018\n"), Encoding::Auto, 1),
            ("bom", [b"\xEF\xBB\xBF".as_slice(), &with_rows("472131,1,1,山田 太郎,ヤマダ タロウ,19700101,男,\n")].concat(), Encoding::Auto, 1),
            ("sjis auto", sjis.clone(), Encoding::Auto, 1),
            ("sjis forced", sjis, Encoding::ShiftJis, 1),
            ("english headers, any order, full width", "name,name_kana,municipality_code,address_number,voucher_number,birth_date,sex\n山田 花子,ヤマダ ハナコ,４７２１３１,２,１２３,昭和45年1月1日,女\n".as_bytes().to_vec(), Encoding::Auto, 1),
            ("quoted newline and trailing empty columns", "自治体コード,宛名番号,券番号,氏名,氏名カナ,生年月日,性別,,\n472131,3,4,\"山田\n太郎\",ヤマダ タロウ,H1.1.8,1,,\n".as_bytes().to_vec(), Encoding::Auto, 1),
            ("two vouchers, one person", with_rows("472131,5,6,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n472131,5,7,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n"), Encoding::Auto, 1),
            ("blank lines", with_rows("\n472131,8,9,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n,,,,,,,\n"), Encoding::Auto, 1),
        ];
        for (name, input, encoding, persons) in cases {
            assert_eq!(check(&input, encoding), Ok(persons), "{name}");
        }
    }

    #[test]
    fn bad_files_say_where_and_why() {
        let big = "x".repeat(10 << 20);
        let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
            ("empty", Vec::new(), &["ファイルが空です"]),
            (
                "header only",
                HEADER.as_bytes().to_vec(),
                &["データ行がありません"],
            ),
            (
                "binary garbage",
                (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
                &["見出し"],
            ),
            (
                "missing column",
                "自治体コード,宛名番号\n472131,1\n".as_bytes().to_vec(),
                &["必須の見出しがありません", "券番号"],
            ),
            (
                "duplicated column",
                "自治体コード,宛名番号,宛名番号\n".as_bytes().to_vec(),
                &["重複"],
            ),
            (
                "unknown column",
                "自治体コード,住所\n".as_bytes().to_vec(),
                &["不明な見出し", "住所"],
            ),
            (
                "bad check digits",
                with_rows("472132,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,1,123456789010\n"),
                &["2行目 自治体コード", "2行目 個人番号", "検査"],
            ),
            (
                "impossible era date",
                with_rows("472131,1,1,山田 太郎,ヤマダ タロウ,平成31年5月1日,1,\n"),
                &["2行目 生年月日", "元号の期間外"],
            ),
            (
                "future birth",
                with_rows("472131,1,1,山田 太郎,ヤマダ タロウ,2030-01-01,1,\n"),
                &["未来の日付"],
            ),
            (
                "another town",
                with_rows("472018,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n"),
                &["異なる自治体"],
            ),
            (
                "same address, another person",
                with_rows(
                    "472131,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n472131,1,2,山田 花子,ヤマダ ハナコ,1971-01-01,2,\n",
                ),
                &["3行目 宛名番号", "2行目と同じ宛名番号"],
            ),
            (
                "duplicate voucher",
                with_rows(
                    "472131,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n472131,2,1,山田 花子,ヤマダ ハナコ,1971-01-01,2,\n",
                ),
                &["3行目 券番号 「0000000001」: 2行目と重複"],
            ),
            (
                "same address far apart, another person",
                with_rows(
                    "472131,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n472131,2,2,山田 花子,ヤマダ ハナコ,1971-01-01,2,\n472131,1,3,山田 次郎,ヤマダ ジロウ,1972-01-01,1,\n",
                ),
                &["4行目 宛名番号: 2行目と同じ宛名番号ですが氏名等が異なります"],
            ),
            (
                "one My Number, two address numbers",
                with_rows(
                    "472131,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,1,123456789018\n472131,2,2,山田 花子,ヤマダ ハナコ,1971-01-01,2,\n472131,3,3,山田 次郎,ヤマダ ジロウ,1972-01-01,1,123456789018\n",
                ),
                &["4行目 個人番号", "2行目の別の宛名番号と同じ個人番号"],
            ),
            (
                "impossible era date and a future birth",
                with_rows(
                    "472131,1,1,山田 太郎,ヤマダ タロウ,平成31年5月1日,1,\n472131,2,2,山田 花子,ヤマダ ハナコ,2099-01-01,2,\n",
                ),
                &["2行目 生年月日", "3行目 生年月日", "未来"],
            ),
            (
                "10 MB field",
                with_rows(&format!("472131,1,1,{big},ヤマダ タロウ,1970-01-01,1,\n")),
                &["2行目 氏名", "長すぎ"],
            ),
            (
                "shift_jis read as utf-8",
                encoding_rs::SHIFT_JIS
                    .encode(
                        &String::from_utf8(with_rows(
                            "472131,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n",
                        ))
                        .unwrap(),
                    )
                    .0
                    .into_owned(),
                &["不明な見出し"],
            ),
            (
                "every bad row at once",
                with_rows(
                    "472131,1,1,山田 太郎,ヤマダ タロウ,1970-01-01,x,\n472131,2,2,山田 太郎,ヤマダ タロウ,1970-01-01,1,\n472131,3,3,山田 太郎,ヤマダ タロウ,1970-13-01,1,\n",
                ),
                &["2行目 性別", "4行目 生年月日"],
            ),
        ];
        for (name, input, wanted) in cases {
            let encoding = if name == "shift_jis read as utf-8" {
                Encoding::Utf8
            } else {
                Encoding::Auto
            };
            let err = check(&input, encoding).expect_err(name);
            for w in wanted {
                assert!(err.contains(w), "{name}: {w} not in {err}");
            }
            assert!(
                !err.contains("山田") && !err.contains("ヤマダ") && !err.contains("1970"),
                "{name} shows personal data: {err}"
            );
            assert!(err.lines().all(|l| l.contains(" / ")), "{name}: bilingual");
        }
    }

    #[test]
    fn generated_files_are_read_back_exactly() {
        let mut generator = openvrs_synth::Generator::new(uruma(), 9);
        let mut bytes = Vec::new();
        openvrs_synth::write_targets_csv(
            &mut generator,
            500,
            openvrs_synth::Encoding::ShiftJis,
            &mut bytes,
        )
        .unwrap();
        let expected: Vec<Person> = openvrs_synth::Generator::new(uruma(), 9)
            .take(500)
            .collect();
        let read: Vec<Person> = read_targets(
            std::io::Cursor::new(bytes),
            Encoding::Auto,
            uruma(),
            today(),
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
        assert_eq!(read.len(), 500);
        for (r, e) in read.iter().zip(&expected) {
            // The generator's flags carry no destination and no suspension; files neither.
            assert_eq!(r, e);
        }
        assert_eq!(COLUMNS.map(|c| c.0), openvrs_synth::TARGETS_HEADER);
    }
}

#[cfg(test)]
mod spill_tests {
    use super::*;

    /// The check gives the same answer when it must spill to disk all the time.
    #[test]
    fn repeats_are_found_through_temporary_runs() {
        let m = MunicipalityCode::parse("472131").unwrap();
        let mut generator = openvrs_synth::Generator::new(m, 3);
        let mut bytes = Vec::new();
        openvrs_synth::write_targets_csv(
            &mut generator,
            500,
            openvrs_synth::Encoding::Utf8,
            &mut bytes,
        )
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Repeat an early row's voucher and address (another person) at the end.
        let mut far: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
        far[5] = "別人 花子".into();
        far[6] = "ベツジン ハナコ".into();
        let input = format!("{}\r\n{}\r\n", lines.join("\r\n"), far.join(","));
        let run = |limit: usize| {
            let mut reader = read_targets(
                std::io::Cursor::new(input.clone().into_bytes()),
                Encoding::Auto,
                m,
                time::macros::date!(2026 - 01 - 01),
            )
            .unwrap();
            let mut check = TargetsCheck::with_limit(limit);
            while let Some(item) = reader.next() {
                match item {
                    Ok(p) => check.person(&p, reader.last_row()),
                    Err(e) => check.error(&e),
                }
            }
            check.finish().unwrap_err()
        };
        let in_memory = run(1 << 20);
        assert_eq!(in_memory.len(), 2, "{in_memory:?}");
        assert!(in_memory[0].contains("券番号") && in_memory[1].contains("宛名番号"));
        for limit in [1, 7, 64] {
            assert_eq!(run(limit), in_memory, "limit {limit}");
        }
    }
}

/// Every text the system writes into a file it hands out must encode in CP932, the Shift_JIS of
/// Windows Japanese that ledger systems read: a reason, a status, a header, an error - any of
/// them may reach a Shift_JIS CSV. So every string literal in every crate's code (test modules
/// aside) is held to `encoding_rs`'s Shift_JIS (WHATWG, which is CP932): the wave dash is
/// written ～ (U+FF5E), never 〜 (U+301C).
#[cfg(test)]
mod cp932_tests {
    use std::path::{Path, PathBuf};

    /// The string literals of Rust source (plain and raw), comments and char literals skipped.
    fn literals(source: &str) -> Vec<String> {
        let chars: Vec<char> = source.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '/' if chars.get(i + 1) == Some(&'/') => {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                }
                '/' if chars.get(i + 1) == Some(&'*') => {
                    i += 2;
                    while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                        i += 1;
                    }
                    i += 2;
                }
                '\'' if chars.get(i + 2) == Some(&'\'') => i += 3,
                '\'' if chars.get(i + 1) == Some(&'\\') => {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                }
                'r' if matches!(chars.get(i + 1), Some('"' | '#'))
                    && (i == 0 || !chars[i - 1].is_alphanumeric() && chars[i - 1] != '_') =>
                {
                    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                    if chars.get(i + 1 + hashes) != Some(&'"') {
                        i += 1;
                        continue;
                    }
                    let start = i + 2 + hashes;
                    let mut end = start;
                    while end < chars.len()
                        && !(chars[end] == '"'
                            && chars[end + 1..]
                                .iter()
                                .take(hashes)
                                .filter(|c| **c == '#')
                                .count()
                                == hashes)
                    {
                        end += 1;
                    }
                    out.push(chars[start..end.min(chars.len())].iter().collect());
                    i = end + 1 + hashes;
                }
                '"' => {
                    let mut text = String::new();
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        if chars[i] == '\\' {
                            i += 1;
                        }
                        if let Some(c) = chars.get(i) {
                            text.push(*c);
                        }
                        i += 1;
                    }
                    out.push(text);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        out
    }

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_message_of_every_crate_encodes_in_cp932() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for krate in std::fs::read_dir(&crates).unwrap().flatten() {
            let src = krate.path().join("src");
            if src.is_dir() {
                sources(&src, &mut files);
            }
        }
        assert!(files.len() > 50, "{} source files", files.len());
        let mut bad = Vec::new();
        let mut checked = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            // Test modules (at the end of a file) may hold what a file must never.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for literal in literals(code) {
                if literal.is_ascii() {
                    continue;
                }
                checked += 1;
                if encoding_rs::SHIFT_JIS.encode(&literal).2 {
                    let odd: String = literal
                        .chars()
                        .filter(|c| encoding_rs::SHIFT_JIS.encode(&c.to_string()).2)
                        .collect();
                    bad.push(format!("{}: {odd:?} in {literal:?}", file.display()));
                }
            }
        }
        assert!(checked > 500, "only {checked} Japanese literals found");
        assert!(
            bad.is_empty(),
            "not encodable in CP932:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn the_scanner_finds_literals_and_skips_the_rest() {
        let source = r####"
            // a comment with 〜
            let a = "1〜15桁"; /* 〜 */ let c = '〜'; let d = '\u{301c}';
            let b = r#"raw "quoted" 〜"#; let e = br"x"; fn f<'a>(x: &'a str) {}
            let g = "esc\"aped 〜";
        "####;
        assert_eq!(
            literals(source),
            ["1〜15桁", "raw \"quoted\" 〜", "x", "esc\"aped 〜"]
        );
        assert!(encoding_rs::SHIFT_JIS.encode("〜").2);
        assert!(!encoding_rs::SHIFT_JIS.encode("～").2);
    }
}
