//! Any bytes as a flags file: rows or bilingual errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_csv::{Encoding, read_flags};
use time::macros::date;

fuzz_target!(|data: &[u8]| {
    let input = std::io::Cursor::new(data.to_vec());
    if let Err(errors) = read_flags(input, Encoding::Auto, date!(2026 - 01 - 01)) {
        for e in errors {
            assert!(e.contains(" / "), "{e}");
        }
    }
});
