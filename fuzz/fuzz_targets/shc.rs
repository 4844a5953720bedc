//! Any bytes as a SMART Health Card input (QR text, JWS, `.smart-health-card` file, PNG): a
//! report with bilingual reasons, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_cert::verify::{Trust, verify};

fuzz_target!(|data: &[u8]| {
    let report = verify(data, &Trust::default());
    for c in &report.checks {
        assert!(c.detail.contains(" / "), "{}", c.detail);
    }
});
