//! `parse_date` never panics, and a date it accepts reads back from its ISO form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_domain::date::{Wareki, parse_date};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_date(text) {
        assert_eq!(parse_date(&d.to_string()), Ok(d));
        let era = Wareki { date: d, gannen: false }.to_string();
        assert_eq!(parse_date(&era), Ok(d), "{era}");
    }
});
