//! Any bytes as a targets file: an answer, never a panic; every error is bilingual.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_csv::{Encoding, validate_targets};
use openvrs_domain::ids::MunicipalityCode;
use time::macros::date;

fuzz_target!(|data: &[u8]| {
    let m = MunicipalityCode::parse("472131").expect("valid");
    let input = std::io::Cursor::new(data.to_vec());
    if let Err(errors) = validate_targets(input, Encoding::Auto, m, date!(2026 - 01 - 01)) {
        assert!(!errors.is_empty());
        for e in errors {
            assert!(e.contains(" / "), "{e}");
        }
    }
});
