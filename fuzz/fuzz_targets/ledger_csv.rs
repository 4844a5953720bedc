//! Any bytes as a ledger file: never a panic, and whatever reads cleanly writes back and reads
//! again to the same rows (the round trip is lossless).
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_csv::{Encoding, LedgerWriter, RowError, read_ledger};
use openvrs_domain::product::{Catalogue, Product};

fn catalogue() -> Catalogue {
    let product = |code: &str, maker: &str| Product {
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
    Catalogue::new(vec![product("comirnaty", "ファイザー"), product("spikevax", "武田/モデルナ")])
        .expect("catalogue")
}

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = read_ledger(std::io::Cursor::new(data.to_vec()), Encoding::Auto, catalogue())
    else {
        return;
    };
    let mut rows = Vec::new();
    for r in reader {
        match r {
            Ok(row) => rows.push(row),
            Err(RowError::Cells(cells)) => {
                for c in cells {
                    assert!(c.to_string().contains(" / "));
                }
                return;
            }
            Err(RowError::File(_)) => return,
        }
    }
    let Some(blocks) = rows
        .iter()
        .flat_map(|r| r.doses.iter().map(|d| d.dose.number.get()))
        .max()
    else {
        return;
    };
    if blocks > 64 {
        return;
    }
    let c = catalogue();
    let mut w = LedgerWriter::new(Vec::new(), Encoding::Utf8, blocks, &c).expect("header");
    for r in &rows {
        w.write(&r.address, &r.doses).expect("write");
    }
    let bytes = w.finish().expect("finish");
    let again: Vec<_> = read_ledger(std::io::Cursor::new(bytes), Encoding::Auto, catalogue())
        .expect("header")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), again.len());
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(a.address, b.address);
        assert_eq!(a.doses, b.doses);
    }
});
