//! Any bytes as an ICAO VDS-NC document: parsed, its signature and chain checked - a clear
//! bilingual error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_cert::{
    vds,
    verify::{Trust, verify},
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(seal) = vds::parse(&text) {
        let _ = seal.verify_signature();
        let _ = seal.verify_chain(&[]);
    }
    for c in &verify(data, &Trust::default()).checks {
        assert!(c.detail.contains(" / "), "{}", c.detail);
    }
});
