//! The immunization ledger layout (予防接種台帳向け出力): 個別宛名番号, then one block of eight
//! columns per dose. Written for ledger systems (Shift_JIS by default) with spreadsheet formula
//! injection neutralised; read back header-driven, so the round trip is lossless.

use std::{
    collections::BTreeMap,
    fmt,
    io::{Read, Write},
};

use openvrs_domain::{
    Invalid,
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::{AddressNumber, MunicipalityCode, VoucherNumber},
    product::Catalogue,
    text,
};
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::{CellError, CsvReader, Encoding, FileError, RowError, file_error, open_csv};

const ADDRESS: &str = "個別宛名番号";
const ADDRESS_ALIAS: &str = "address_number";

/// The eight columns of a dose block, after `N回目`.
const BLOCK: [&str; 8] = [
    "接種履歴登録日時",
    "接種日",
    "券番号",
    "接種自治体コード",
    "接種会場名",
    "接種医師名",
    "ワクチンメーカー",
    "ワクチンロット番号",
];
const REGISTERED: usize = 0;
const DATE: usize = 1;
const VOUCHER: usize = 2;
const GIVEN_IN: usize = 3;
const VENUE: usize = 4;
const DOCTOR: usize = 5;
const MAKER: usize = 6;
const LOT: usize = 7;

fn day(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

fn stamp(t: PrimitiveDateTime) -> String {
    format!(
        "{}{:02}{:02}{:02}",
        day(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// One dose as the ledger holds it: a given dose and its registration time (Japan time). The
/// ledger's ワクチンメーカー is the catalogue's ledger name of the dose's product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerDose {
    pub dose: Dose,
    /// 接種履歴登録日時, Japan time.
    pub registered_at: Option<PrimitiveDateTime>,
}

/// One row: a person and their doses in dose order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// The line of the file where the record starts (the header is line 1).
    pub row: u64,
    pub address: AddressNumber,
    pub doses: Vec<LedgerDose>,
}

/// A cell that would start a formula in a spreadsheet gets a leading `'`.
fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// The inverse of [`neutralise`].
fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest)
            if matches!(
                rest.chars().next(),
                Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'')
            ) =>
        {
            rest
        }
        _ => cell,
    }
}

/// Writes a ledger file: the header for `blocks` doses, then a row per person.
pub struct LedgerWriter<'c, W: Write> {
    out: W,
    catalogue: &'c Catalogue,
    encoding: &'static encoding_rs::Encoding,
    blocks: u32,
    /// Columns after the dose blocks (the bulk inquiry result's status), none in a ledger.
    extra: usize,
    row: u64,
}

impl<W: Write> fmt::Debug for LedgerWriter<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerWriter")
            .field("row", &self.row)
            .finish()
    }
}

fn io_error(e: std::io::Error) -> FileError {
    file_error(format!("書き込めません: {e}"), format!("cannot write: {e}"))
}

impl<'c, W: Write> LedgerWriter<'c, W> {
    /// UTF-8 files get a BOM (spreadsheets need it to see UTF-8); `Auto` means Shift_JIS, what
    /// ledger systems read.
    pub fn new(
        out: W,
        encoding: Encoding,
        blocks: u32,
        catalogue: &'c Catalogue,
    ) -> Result<Self, FileError> {
        Self::with_columns(out, encoding, blocks, catalogue, &[])
    }

    /// The ledger layout with `extra` columns after the dose blocks.
    pub fn with_columns(
        mut out: W,
        encoding: Encoding,
        blocks: u32,
        catalogue: &'c Catalogue,
        extra: &[&str],
    ) -> Result<Self, FileError> {
        let encoding = match encoding {
            Encoding::Utf8 => {
                out.write_all(b"\xEF\xBB\xBF").map_err(io_error)?;
                encoding_rs::UTF_8
            }
            Encoding::ShiftJis | Encoding::Auto => encoding_rs::SHIFT_JIS,
        };
        let mut header = vec![ADDRESS.to_owned()];
        for n in 1..=blocks {
            header.extend(BLOCK.iter().map(|c| format!("{n}回目{c}")));
        }
        header.extend(extra.iter().map(|c| (*c).to_owned()));
        let mut w = Self {
            out,
            catalogue,
            encoding,
            blocks,
            extra: extra.len(),
            row: 1,
        };
        w.record(&header)?;
        Ok(w)
    }

    fn record(&mut self, cells: &[String]) -> Result<(), FileError> {
        let mut csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        csv.write_record(cells).map_err(|e| io_error(e.into()))?;
        let bytes = csv.into_inner().map_err(|e| io_error(e.into_error()))?;
        let line = String::from_utf8(bytes).map_err(|_| file_error("UTF-8", "UTF-8"))?;
        let (encoded, _, unmappable) = self.encoding.encode(&line);
        if unmappable {
            let column = cells
                .iter()
                .position(|c| self.encoding.encode(c).2)
                .map_or(0, |i| i + 1);
            return Err(file_error(
                format!(
                    "{}行目 {}列目: Shift_JISで表せない文字があります(UTF-8 で出力してください)",
                    self.row, column
                ),
                format!(
                    "row {}, column {}: a character cannot be written in Shift_JIS (write UTF-8 instead)",
                    self.row, column
                ),
            ));
        }
        self.out.write_all(&encoded).map_err(io_error)?;
        self.row += 1;
        Ok(())
    }

    /// Writes one person's doses; a dose number beyond the header's blocks is an error.
    pub fn write(
        &mut self,
        address: &AddressNumber,
        doses: &[LedgerDose],
    ) -> Result<(), FileError> {
        self.write_row(address.as_str(), doses, &[])
    }

    /// Writes one row with the values of the extra columns (missing ones are empty).
    pub fn write_row(
        &mut self,
        address: &str,
        doses: &[LedgerDose],
        extra: &[String],
    ) -> Result<(), FileError> {
        let mut cells = vec![neutralise(address)];
        cells.resize(1 + 8 * self.blocks as usize, String::new());
        for LedgerDose {
            dose: d,
            registered_at,
        } in doses
        {
            if d.status != DoseStatus::Given {
                continue;
            }
            let n = d.number.get();
            if n > self.blocks {
                return Err(file_error(
                    format!("{n}回目の列がありません"),
                    format!("there are no columns for dose {n}"),
                ));
            }
            let at = 1 + 8 * (n as usize - 1);
            let maker = self
                .catalogue
                .get(d.product.as_str())
                .map(|p| p.ledger_maker.clone())
                .ok_or_else(|| {
                    file_error(
                        format!("{}行目: 製品一覧にない製品です", self.row),
                        format!("row {}: a product not in the catalogue", self.row),
                    )
                })?;
            let block = [
                registered_at.map(stamp).unwrap_or_default(),
                day(d.date),
                d.voucher.map(|v| v.to_string()).unwrap_or_default(),
                d.given_in.map(|c| c.to_string()).unwrap_or_default(),
                d.venue.as_str().to_owned(),
                d.doctor.as_str().to_owned(),
                maker,
                d.lot.as_str().to_owned(),
            ];
            for (i, cell) in block.into_iter().enumerate() {
                cells[at + i] = neutralise(&cell);
            }
        }
        cells.extend(
            (0..self.extra).map(|i| extra.get(i).map_or_else(String::new, |c| neutralise(c))),
        );
        self.record(&cells)
    }

    pub fn finish(mut self) -> Result<W, FileError> {
        self.out.flush().map_err(io_error)?;
        Ok(self.out)
    }
}

/// A ledger file being read.
pub struct LedgerReader {
    catalogue: Catalogue,
    records: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
    address: usize,
    /// For each dose number, the file index of each of its block's columns.
    blocks: BTreeMap<u32, [Option<usize>; 8]>,
    failed: bool,
}

impl fmt::Debug for LedgerReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerReader")
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

/// `N回目<column>` as (N, column index).
fn block_column(name: &str) -> Option<(u32, usize)> {
    let (n, rest) = name.split_once("回目")?;
    let n = DoseNumber::parse(n).ok()?.get();
    Some((n, BLOCK.iter().position(|c| *c == rest)?))
}

/// Opens a ledger file. Columns are found by header; unknown and repeated columns are errors.
/// Its doses come as given doses from a CSV, their maker names mapped to products through
/// `catalogue`.
pub fn read_ledger<R: Read + Send + 'static>(
    input: R,
    encoding: Encoding,
    catalogue: Catalogue,
) -> Result<LedgerReader, FileError> {
    let (csv, headers): (CsvReader, _) = open_csv(input, encoding)?;
    let mut address = None;
    let mut blocks: BTreeMap<u32, [Option<usize>; 8]> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (i, name) in headers.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let slot = if name == ADDRESS || name.eq_ignore_ascii_case(ADDRESS_ALIAS) {
            &mut address
        } else if let Some((n, c)) = block_column(name) {
            &mut blocks.entry(n).or_default()[c]
        } else {
            unknown.push(if name.contains('\u{fffd}') {
                "(文字化け / garbled)".to_owned()
            } else {
                name.chars().take(40).collect()
            });
            continue;
        };
        if slot.replace(i).is_some() {
            return Err(file_error(
                format!("見出し「{name}」が重複しています"),
                format!("the column {name} appears twice"),
            ));
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
    let mut missing: Vec<String> = Vec::new();
    if address.is_none() {
        missing.push(ADDRESS.into());
    }
    for (n, cols) in &blocks {
        if cols[DATE].is_none() {
            missing.push(format!("{n}回目{}", BLOCK[DATE]));
        }
    }
    let Some(address) = address.filter(|_| missing.is_empty()) else {
        return Err(file_error(
            format!("必須の見出しがありません: {}", missing.join(", ")),
            format!("required columns missing: {}", missing.join(", ")),
        ));
    };
    Ok(LedgerReader {
        catalogue,
        records: csv.into_records(),
        address,
        blocks,
        failed: false,
    })
}

struct Cells<'a> {
    record: &'a csv::StringRecord,
    line: u64,
    errors: Vec<CellError>,
}

impl Cells<'_> {
    fn get(&self, i: Option<usize>) -> Option<&str> {
        i.and_then(|i| self.record.get(i))
            .map(str::trim)
            .map(restore)
            .filter(|v| !v.is_empty())
    }

    fn fail(&mut self, column: String, value: Option<&str>, ja: &str, en: &str) {
        // A doctor's name is a person's name: never repeated in an error.
        let personal = column.ends_with(BLOCK[DOCTOR]);
        self.errors.push(CellError {
            row: self.line,
            column,
            value: value
                .filter(|_| !personal)
                .map(|v| v.chars().take(40).collect()),
            personal,
            ja: ja.into(),
            en: en.into(),
        });
    }

    fn parse<T>(
        &mut self,
        i: Option<usize>,
        column: impl FnOnce() -> String,
        f: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let value = self.get(i)?.to_owned();
        let parsed = if value.contains('\u{fffd}') {
            Err(Invalid {
                kind: "encoding",
                ja: "文字コードが正しくありません",
                en: "invalid characters for the file's encoding",
            })
        } else {
            f(&value)
        };
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(column(), Some(&value), e.ja, e.en);
                None
            }
        }
    }
}

fn timestamp(s: &str) -> Result<PrimitiveDateTime, Invalid> {
    let parse = |d: &str| -> Option<PrimitiveDateTime> {
        let n = |r: std::ops::Range<usize>| d.get(r)?.parse::<u8>().ok();
        let year = d.get(0..4)?.parse::<i32>().ok()?;
        let date =
            Date::from_calendar_date(year, Month::try_from(n(4..6)?).ok()?, n(6..8)?).ok()?;
        let time = Time::from_hms(n(8..10)?, n(10..12)?, n(12..14)?).ok()?;
        Some(PrimitiveDateTime::new(date, time))
    };
    text::digits(s)
        .filter(|d| d.len() == 14)
        .and_then(|d| parse(&d))
        .ok_or(Invalid {
            kind: "ledger.timestamp",
            ja: "登録日時は YYYYMMDDHHMMSS の14桁です",
            en: "the registration time is 14 digits, YYYYMMDDHHMMSS",
        })
}

impl LedgerReader {
    fn row(&self, record: &csv::StringRecord) -> Result<Option<LedgerRow>, Vec<CellError>> {
        let mut cells = Cells {
            record,
            line: record.position().map_or(0, |p| p.line()),
            errors: Vec::new(),
        };
        let address = if cells.get(Some(self.address)).is_none() {
            cells.fail(
                ADDRESS.into(),
                None,
                "必須項目が空です",
                "a required value is empty",
            );
            None
        } else {
            cells.parse(Some(self.address), || ADDRESS.into(), AddressNumber::parse)
        };
        let mut doses = Vec::new();
        for (&n, cols) in &self.blocks {
            if cols.iter().all(|c| cells.get(*c).is_none()) {
                continue;
            }
            let name = |c: usize| move || format!("{n}回目{}", BLOCK[c]);
            let registered_at = cells.parse(cols[REGISTERED], name(REGISTERED), timestamp);
            let date = if cells.get(cols[DATE]).is_none() {
                cells.fail(
                    name(DATE)(),
                    None,
                    "必須項目が空です",
                    "a required value is empty",
                );
                None
            } else {
                cells.parse(cols[DATE], name(DATE), parse_date)
            };
            let voucher = cells.parse(
                cols[VOUCHER],
                name(VOUCHER),
                VoucherNumber::parse_restoring_zeros,
            );
            let given_in = cells.parse(
                cols[GIVEN_IN],
                name(GIVEN_IN),
                MunicipalityCode::parse_restoring_zero,
            );
            let venue = cells
                .parse(cols[VENUE], name(VENUE), Short::parse)
                .unwrap_or_default();
            let doctor = cells
                .parse(cols[DOCTOR], name(DOCTOR), Short::parse)
                .unwrap_or_default();
            let catalogue = &self.catalogue;
            let product = cells.parse(cols[MAKER], name(MAKER), |s| {
                let maker = text::normalize(s);
                catalogue
                    .products()
                    .find(|p| text::normalize(&p.ledger_maker) == maker)
                    .map(|p| Short::parse(&p.code))
                    .unwrap_or(Err(Invalid {
                        kind: "product.unknown",
                        ja: "ワクチンメーカーが製品一覧にありません",
                        en: "the vaccine maker is not in the product catalogue",
                    }))
            });
            if product.is_none() && cells.get(cols[MAKER]).is_none() {
                cells.fail(
                    name(MAKER)(),
                    None,
                    "必須項目が空です",
                    "a required value is empty",
                );
            }
            let lot = cells
                .parse(cols[LOT], name(LOT), Short::parse)
                .unwrap_or_default();
            if let (Some(date), Some(product), Ok(number)) = (date, product, DoseNumber::new(n)) {
                doses.push(LedgerDose {
                    dose: Dose {
                        number,
                        status: DoseStatus::Given,
                        date,
                        product,
                        lot,
                        venue,
                        doctor,
                        source: DoseSource::Csv,
                        voucher,
                        given_in,
                    },
                    registered_at,
                });
            }
        }
        let Cells { errors, line, .. } = cells;
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(address.map(|address| LedgerRow {
            row: line,
            address,
            doses,
        }))
    }
}

impl Iterator for LedgerReader {
    type Item = Result<LedgerRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            let record = match self.records.next()? {
                Ok(r) => r,
                Err(e) => {
                    self.failed = true;
                    let line = e.position().map_or(0, |p| p.line());
                    return Some(Err(RowError::File(file_error(
                        format!("{line}行目を読めません: {e}"),
                        format!("cannot read row {line}: {e}"),
                    ))));
                }
            };
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            match self.row(&record) {
                Ok(Some(row)) => return Some(Ok(row)),
                Ok(None) => continue,
                Err(cells) => return Some(Err(RowError::Cells(cells))),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    fn catalogue() -> Catalogue {
        let product = |code: &str, maker: &str| openvrs_domain::product::Product {
            code: code.into(),
            name: code.into(),
            ledger_maker: maker.into(),
            cvx: String::new(),
            icd11: String::new(),
            eu_mp: String::new(),
            eu_ma: String::new(),
            eu_vp: String::new(),
            min_interval_days: 18,
            lot_pattern: ".*".into(),
        };
        Catalogue::new(vec![
            product("comirnaty", "ファイザー"),
            product("spikevax", "武田/モデルナ"),
        ])
        .unwrap()
    }

    fn dose(n: u32, venue: &str) -> LedgerDose {
        LedgerDose {
            dose: Dose {
                number: DoseNumber::new(n).unwrap(),
                status: DoseStatus::Given,
                date: date!(2021 - 06 - 01),
                product: Short::parse("spikevax").unwrap(),
                lot: Short::parse("3001234").unwrap(),
                venue: Short::parse(venue).unwrap(),
                doctor: Short::parse("医師 一郎").unwrap(),
                source: DoseSource::Csv,
                voucher: VoucherNumber::parse("0012345678").ok(),
                given_in: MunicipalityCode::parse("472131").ok(),
            },
            registered_at: Some(datetime!(2021-06-01 10:15:30)),
        }
    }

    fn write(encoding: Encoding, rows: &[(&str, Vec<LedgerDose>)]) -> Vec<u8> {
        let c = catalogue();
        let mut w = LedgerWriter::new(Vec::new(), encoding, 3, &c).unwrap();
        for (a, doses) in rows {
            w.write(&AddressNumber::parse(a).unwrap(), doses).unwrap();
        }
        w.finish().unwrap()
    }

    fn read(bytes: Vec<u8>) -> Result<Vec<LedgerRow>, Vec<String>> {
        let reader = read_ledger(std::io::Cursor::new(bytes), Encoding::Auto, catalogue())
            .map_err(|e| vec![e.to_string()])?;
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for r in reader {
            match r {
                Ok(r) => rows.push(r),
                Err(RowError::Cells(c)) => errors.extend(c.iter().map(ToString::to_string)),
                Err(RowError::File(f)) => errors.push(f.to_string()),
            }
        }
        if errors.is_empty() {
            Ok(rows)
        } else {
            Err(errors)
        }
    }

    #[test]
    fn the_layout_is_exact() {
        let bytes = write(
            Encoding::Utf8,
            &[("1001", vec![dose(1, "会場"), dose(3, "会場")])],
        );
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.split("\r\n");
        let header = lines.next().unwrap().trim_start_matches('\u{feff}');
        let names: Vec<&str> = header.split(',').collect();
        assert_eq!(names.len(), 1 + 3 * 8);
        assert_eq!(
            &names[..9],
            [
                "個別宛名番号",
                "1回目接種履歴登録日時",
                "1回目接種日",
                "1回目券番号",
                "1回目接種自治体コード",
                "1回目接種会場名",
                "1回目接種医師名",
                "1回目ワクチンメーカー",
                "1回目ワクチンロット番号"
            ]
        );
        assert_eq!(
            lines.next().unwrap(),
            "1001,20210601101530,20210601,0012345678,472131,会場,医師 一郎,武田/モデルナ,3001234,\
             ,,,,,,,,\
             20210601101530,20210601,0012345678,472131,会場,医師 一郎,武田/モデルナ,3001234"
        );
    }

    #[test]
    fn round_trip_is_lossless_in_both_encodings() {
        let rows = vec![
            (
                "1001",
                vec![dose(1, "うるま市民体育館"), dose(2, "=HYPERLINK(\"x\")")],
            ),
            (
                "1002",
                vec![dose(3, "+1"), dose(1, "-2"), dose(2, "@SUM(A1)")],
            ),
            ("1003", vec![dose(1, "'quoted"), dose(2, "a,b\"c")]),
        ];
        for encoding in [Encoding::Utf8, Encoding::ShiftJis] {
            let bytes = write(encoding, &rows);
            let text = encoding_rs::SHIFT_JIS.decode(&bytes).0.into_owned();
            if encoding == Encoding::Utf8 {
                let text = String::from_utf8(bytes.clone()).unwrap();
                for cell in text.split(['\n', ',', '"']) {
                    assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell}");
                }
            } else {
                assert!(!text.contains("=HYPERLINK") || text.contains("'=HYPERLINK"));
            }
            let got = read(bytes.clone()).unwrap();
            assert_eq!(got.len(), 3);
            for ((a, doses), row) in rows.iter().zip(&got) {
                assert_eq!(row.address.as_str(), *a);
                let mut want = doses.clone();
                want.sort_by_key(|d| d.dose.number);
                assert_eq!(row.doses, want);
            }
            // And writing what was read gives the same bytes.
            let again: Vec<(&str, Vec<LedgerDose>)> = got
                .iter()
                .map(|r| (r.address.as_str(), r.doses.clone()))
                .collect();
            assert_eq!(write(encoding, &again), bytes);
        }
    }

    #[test]
    fn shift_jis_refuses_what_it_cannot_hold() {
        let c = catalogue();
        let mut w = LedgerWriter::new(Vec::new(), Encoding::ShiftJis, 1, &c).unwrap();
        let err = w
            .write(
                &AddressNumber::parse("1").unwrap(),
                &[dose(1, "𠮷野家会場")],
            )
            .unwrap_err();
        assert!(err.to_string().contains("2行目 6列目"), "{err}");
        assert!(err.to_string().contains("UTF-8 で出力"), "{err}");
    }

    #[test]
    fn bad_files_say_where_and_why() {
        let header = "個別宛名番号,1回目接種日,1回目券番号,1回目ワクチンメーカー,2回目接種日,2回目ワクチンメーカー,2回目接種履歴登録日時\n";
        let table: Vec<(String, Vec<&str>)> = vec![
            ("".into(), vec!["ファイルが空です"]),
            ("個別宛名番号,1回目接種日,謎\n".into(), vec!["不明な見出し"]),
            (
                "個別宛名番号,1回目接種日,1回目接種日\n".into(),
                vec!["重複"],
            ),
            (
                "1回目接種日\n".into(),
                vec!["必須の見出しがありません: 個別宛名番号"],
            ),
            ("個別宛名番号,1回目券番号\n".into(), vec!["1回目接種日"]),
            (
                format!("{header}1001,20210601,1234,ファイザー,平成31年5月1日,ファイザー,\n"),
                vec!["2行目 2回目接種日"],
            ),
            (
                format!(
                    "{header}1001,20210601,12345678901,ファイザー,,,\n,20210601,,ファイザー,,,\n"
                ),
                vec!["2行目 1回目券番号", "3行目 個別宛名番号"],
            ),
            (
                format!("{header}1001,,,ファイザー,20210701,,2021\n"),
                vec![
                    "2行目 1回目接種日",
                    "2行目 2回目接種履歴登録日時",
                    "2行目 2回目ワクチンメーカー",
                ],
            ),
            (
                format!("{header}1001,20210601,,{},,,\n", "x".repeat(10_000_000)),
                vec!["2行目 1回目ワクチンメーカー"],
            ),
            (
                "個別宛名番号,1回目接種日,1回目接種医師名,1回目ワクチンメーカー\n1001,20210601,医師\u{7}太郎,ファイザー\n".into(),
                vec!["2行目 1回目接種医師名 (個人情報のため非表示 / personal value hidden)"],
            ),
            (
                format!("{header}1001,20210601,,モデルナ?,,,\n"),
                vec![
                    "2行目 1回目ワクチンメーカー 「モデルナ?」: ワクチンメーカーが製品一覧にありません",
                ],
            ),
        ];
        for (input, want) in table {
            let errors = read(input.into_bytes()).unwrap_err();
            assert_eq!(errors.len(), want.len(), "{errors:?}");
            for (e, w) in errors.iter().zip(&want) {
                assert!(e.contains(w), "{e} should contain {w}");
                assert!(e.contains(" / "), "{e}");
                assert!(e.chars().count() < 300, "a long value is shortened");
            }
        }
        // A row with an address and no doses, blank lines, trailing empty columns: fine.
        let rows = read(format!("{header},\n1001,,,,,,\n\n").into_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].doses.is_empty());
        // Binary garbage is an error, not a panic.
        assert!(read(vec![0xff, 0xfe, 0x00, 0x81, 0x0a, 0x00]).is_err());
    }
}
