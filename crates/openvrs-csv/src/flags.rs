//! The flags file: 転出・死亡・利用停止 for many persons at once.
//!
//! | header | alias | content |
//! |---|---|---|
//! | 宛名番号 | address_number | required |
//! | 転出日 | moved_out_on | a date, or 解除/clear to remove the flag |
//! | 転出先自治体コード | moved_out_to | 6 digits (5 restored) |
//! | 死亡日 | died_on | a date, or 解除/clear |
//! | 利用停止 | use_suspended | 1/0, する/しない, 停止/解除 |
//! | 理由 | reason | optional; the file name is used when empty |
//!
//! An empty cell leaves that flag as it is.

use std::{fmt, io::Read};

use openvrs_domain::{
    Invalid,
    date::parse_date,
    ids::{AddressNumber, MunicipalityCode},
    person::FlagChange,
    text,
};
use time::Date;

use crate::{CellError, Encoding, FileError, RowError, column_index, open_csv};

const COLUMNS: [(&str, &str); 6] = [
    ("宛名番号", "address_number"),
    ("転出日", "moved_out_on"),
    ("転出先自治体コード", "moved_out_to"),
    ("死亡日", "died_on"),
    ("利用停止", "use_suspended"),
    ("理由", "reason"),
];

/// One row of a flags file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRow {
    pub row: u64,
    pub address: AddressNumber,
    pub change: FlagChange,
    pub reason: Option<String>,
}

fn is_clear(s: &str) -> bool {
    matches!(text::normalize(s).to_lowercase().as_str(), "解除" | "clear")
}

fn suspended(s: &str) -> Result<bool, Invalid> {
    match text::normalize(s).to_lowercase().as_str() {
        "1" | "する" | "停止" | "yes" | "true" => Ok(true),
        "0" | "しない" | "解除" | "no" | "false" => Ok(false),
        _ => Err(Invalid {
            kind: "flags.use_suspended",
            ja: "利用停止は 1(停止) か 0(解除) です",
            en: "use_suspended is 1 (suspend) or 0 (lift)",
        }),
    }
}

/// Reads a whole flags file: every row, or every bad row with its column and reason.
pub fn read_flags<R: Read + Send + 'static>(
    input: R,
    encoding: Encoding,
    today: Date,
) -> Result<Vec<FlagRow>, Vec<String>> {
    let (csv, headers) = open_csv(input, encoding).map_err(|e| vec![e.to_string()])?;
    let index = column_index(&headers, &COLUMNS, &[0]).map_err(|e| vec![e.to_string()])?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in csv.into_records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError::File(FileError {
                    ja: format!("{line}行目を読めません: {e}"),
                    en: format!("cannot read row {line}: {e}"),
                }));
                break;
            }
        };
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        match row(&record, &index, today) {
            Ok(r) => rows.push(r),
            Err(cells) => errors.push(RowError::Cells(cells)),
        }
    }
    if errors.is_empty() {
        return Ok(rows);
    }
    Err(errors
        .iter()
        .flat_map(|e| match e {
            RowError::Cells(c) => c.iter().map(ToString::to_string).collect(),
            RowError::File(f) => vec![f.to_string()],
        })
        .collect())
}

fn row(
    record: &csv::StringRecord,
    index: &[Option<usize>; 6],
    today: Date,
) -> Result<FlagRow, Vec<CellError>> {
    let line = record.position().map_or(0, |p| p.line());
    let mut errors = Vec::new();
    let cell = |c: usize| {
        index[c]
            .and_then(|i| record.get(i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let mut fail = |c: usize, e: Invalid| {
        errors.push(CellError {
            row: line,
            column: COLUMNS[c].0.to_owned(),
            value: cell(c).map(|v| v.chars().take(40).collect()),
            personal: false,
            ja: e.ja.into(),
            en: e.en.into(),
        });
    };
    let mut parse = |c: usize, f: &dyn Fn(&str) -> Result<Option<Date>, Invalid>| match cell(c) {
        None => None,
        Some(v) => match f(v) {
            Ok(d) => Some(d),
            Err(e) => {
                fail(c, e);
                None
            }
        },
    };
    let past = |v: &str| -> Result<Option<Date>, Invalid> {
        if is_clear(v) {
            return Ok(None);
        }
        let d = parse_date(v)?;
        if d > today {
            return Err(Invalid {
                kind: "date.future",
                ja: "未来の日付です",
                en: "the date is in the future",
            });
        }
        Ok(Some(d))
    };
    let moved = parse(1, &past);
    let died = parse(3, &past);
    let address = match cell(0) {
        None => {
            fail(
                0,
                Invalid {
                    kind: "required",
                    ja: "必須項目が空です",
                    en: "a required value is empty",
                },
            );
            None
        }
        Some(v) => AddressNumber::parse(v).map_err(|e| fail(0, e)).ok(),
    };
    let to = cell(2).and_then(|v| {
        MunicipalityCode::parse_restoring_zero(v)
            .map_err(|e| fail(2, e))
            .ok()
    });
    let suspend = cell(4).and_then(|v| suspended(v).map_err(|e| fail(4, e)).ok());
    let reason = cell(5).map(str::to_owned);
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(address) = address else {
        unreachable!("a missing address adds an error")
    };
    Ok(FlagRow {
        row: line,
        address,
        change: FlagChange {
            moved_out: moved.map(|on| on.map(|on| (on, to))),
            deceased_on: died,
            use_suspended: suspend,
        },
        reason,
    })
}

impl fmt::Display for FlagRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}行目 / row {}", self.row, self.row)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn read(s: &str) -> Result<Vec<FlagRow>, Vec<String>> {
        read_flags(
            std::io::Cursor::new(s.as_bytes().to_vec()),
            Encoding::Auto,
            date!(2024 - 01 - 01),
        )
    }

    #[test]
    fn rows_and_clearing() {
        let rows = read(
            "宛名番号,転出日,転出先自治体コード,死亡日,利用停止,理由\n\
             1001,R5.4.1,472018,,,転出届\n\
             1002,解除,,2023/12/31,1,\n\
             1003,,,,0,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].change.moved_out,
            Some(Some((
                date!(2023 - 04 - 01),
                MunicipalityCode::parse("472018").ok()
            )))
        );
        assert_eq!(rows[0].reason.as_deref(), Some("転出届"));
        assert_eq!(rows[1].change.moved_out, Some(None));
        assert_eq!(
            rows[1].change.deceased_on,
            Some(Some(date!(2023 - 12 - 31)))
        );
        assert_eq!(rows[1].change.use_suspended, Some(true));
        assert_eq!(rows[2].change.use_suspended, Some(false));
        assert_eq!(rows[2].change.deceased_on, None);
    }

    #[test]
    fn every_bad_row_is_named() {
        let errors = read(
            "宛名番号,死亡日,利用停止\n\
             ,2023/1/1,\n\
             1002,2099/1/1,たぶん\n\
             1003,平成31年5月1日,\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        for (e, want) in errors.iter().zip([
            "2行目 宛名番号",
            "3行目 死亡日",
            "3行目 利用停止",
            "4行目 死亡日",
        ]) {
            assert!(e.contains(want), "{e}");
        }
        assert!(read("宛名番号,謎\n").is_err());
        assert!(read("死亡日\n").is_err());
        assert!(read("").is_err());
    }
}
