//! The bulk inquiry file (一括照会): one row per person the municipality wants records for.
//!
//! | header | alias | content |
//! |---|---|---|
//! | 照会先自治体コード | source_municipality | the municipality the person moved from |
//! | 個人番号 | my_number | the person's My Number |
//! | 宛名番号 | address_number | the asking municipality's own person |
//!
//! A bad row does not stop the others: it is answered 形式エラー with its row, column and reason
//! (the My Number itself is never repeated). Only a file that cannot be read at all is refused.

use std::io::Read;

use openvrs_domain::{
    Invalid,
    ids::{AddressNumber, MunicipalityCode, MyNumber},
};

use crate::{CellError, Encoding, FileError, column_index, file_error, open_csv};

const COLUMNS: [(&str, &str); 3] = [
    ("照会先自治体コード", "source_municipality"),
    ("個人番号", "my_number"),
    ("宛名番号", "address_number"),
];

/// The most rows one bulk file may hold.
pub const MAX_INQUIRY_ROWS: usize = 100_000;

/// One row of a bulk inquiry file.
#[derive(Debug, Clone)]
pub struct InquiryRow {
    /// The line of the file where the record starts (the header is line 1).
    pub row: u64,
    /// (source, My Number, own person), or the own person if readable and every problem.
    pub input: Result<(MunicipalityCode, MyNumber, AddressNumber), (Option<AddressNumber>, String)>,
}

/// Reads a whole bulk inquiry file.
pub fn read_inquiries<R: Read + Send + 'static>(
    input: R,
    encoding: Encoding,
) -> Result<Vec<InquiryRow>, FileError> {
    let (csv, headers) = open_csv(input, encoding)?;
    let index = column_index(&headers, &COLUMNS, &[0, 1, 2])?;
    let mut rows = Vec::new();
    for record in csv.into_records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            file_error(
                format!("{line}行目を読めません: {e}"),
                format!("cannot read row {line}: {e}"),
            )
        })?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows.len() == MAX_INQUIRY_ROWS {
            return Err(file_error(
                format!("一度に照会できるのは {MAX_INQUIRY_ROWS} 行までです"),
                format!("a bulk inquiry holds at most {MAX_INQUIRY_ROWS} rows"),
            ));
        }
        let line = record.position().map_or(0, |p| p.line());
        let cell = |c: usize| {
            index[c]
                .and_then(|i| record.get(i))
                .map(str::trim)
                .unwrap_or_default()
        };
        let mut errors = Vec::new();
        let mut check = |c: usize, personal: bool, e: Invalid| {
            let value = cell(c);
            errors.push(
                CellError {
                    row: line,
                    column: COLUMNS[c].0.to_owned(),
                    value: (!value.is_empty()).then(|| value.chars().take(40).collect()),
                    personal,
                    ja: e.ja.into(),
                    en: e.en.into(),
                }
                .to_string(),
            );
        };
        let source = MunicipalityCode::parse_restoring_zero(cell(0))
            .map_err(|e| check(0, false, e))
            .ok();
        let my_number = MyNumber::parse(cell(1)).map_err(|e| check(1, true, e)).ok();
        let address = AddressNumber::parse(cell(2))
            .map_err(|e| check(2, false, e))
            .ok();
        rows.push(InquiryRow {
            row: line,
            input: match (source, my_number, address) {
                (Some(s), Some(n), Some(a)) => Ok((s, n, a)),
                (_, _, address) => Err((address, errors.join("\n"))),
            },
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<InquiryRow>, FileError> {
        read_inquiries(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            Encoding::Utf8,
        )
    }

    #[test]
    fn good_and_bad_rows_each_get_an_answer() {
        let rows = read(
            "照会先自治体コード,個人番号,宛名番号\n\
             472131,189480456560,0001\n\
             472132,189480456561,0002\n\
             ４７２１３１,１８９４８０４５６５６０,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        let (s, n, a) = rows[0].input.clone().unwrap();
        assert_eq!(
            (s.to_string(), n.expose(), a.as_str()),
            ("472131".into(), "189480456560".into(), "0001")
        );
        let (address, message) = rows[1].input.clone().unwrap_err();
        assert_eq!(address.unwrap().as_str(), "0002");
        assert!(message.contains("3行目 照会先自治体コード"), "{message}");
        assert!(message.contains("3行目 個人番号"), "{message}");
        assert!(
            !message.contains("189480456561"),
            "the My Number is never repeated"
        );
        let (address, message) = rows[2].input.clone().unwrap_err();
        assert!(address.is_none());
        assert!(message.contains("4行目 宛名番号"), "{message}");
    }

    #[test]
    fn files_that_cannot_be_read_are_refused() {
        for bad in [
            "",
            "個人番号,宛名番号\n189480456560,1\n",
            "照会先自治体コード,個人番号,宛名番号,氏名\n",
            "照会先自治体コード,個人番号,宛名番号,個人番号\n",
        ] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        // An unterminated quote swallows the rest of the file into one bad row.
        let rows = read("照会先自治体コード,個人番号,宛名番号\n\"472131,1,1\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].input.is_err());
    }

    #[test]
    fn too_many_rows_are_refused() {
        let mut text = String::from("source_municipality,my_number,address_number\n");
        for i in 0..=MAX_INQUIRY_ROWS {
            text.push_str(&format!("472131,189480456560,{i}\n"));
        }
        assert!(read(&text).is_err());
    }
}
