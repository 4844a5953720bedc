//! Any bytes as a bulk inquiry file: rows (each answered or with a bilingual reason) or a
//! bilingual file error, never a panic, and never a My Number repeated in a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_csv::{Encoding, read_inquiries};

fuzz_target!(|data: &[u8]| {
    let input = std::io::Cursor::new(data.to_vec());
    match read_inquiries(input, Encoding::Auto) {
        Err(e) => assert!(e.to_string().contains(" / "), "{e}"),
        Ok(rows) => {
            for r in rows {
                if let Err((_, why)) = r.input {
                    assert!(why.contains(" / "), "{why}");
                    assert!(!why.contains("個人番号 「"), "a My Number shown: {why}");
                }
            }
        }
    }
});
