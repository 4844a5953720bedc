//! Any bytes as an EU DCC: the COSE/CWT layer directly, the zlib layer, and the whole `HC1:`
//! text path through the verifier - a clear bilingual error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_cert::{
    dcc,
    verify::{Trust, verify},
};

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = dcc::parse_cose(data) {
        let _ = signed.verify(&[]);
        let _ = signed.check_time(0);
        if let Ok(json) = signed.dcc_json() {
            let _ = dcc::check_schema(&json);
        }
    }
    let _ = dcc::inflate(data);
    let text = format!("HC1:{}", String::from_utf8_lossy(data));
    for c in &verify(text.as_bytes(), &Trust::default()).checks {
        assert!(c.detail.contains(" / "), "{}", c.detail);
    }
});
