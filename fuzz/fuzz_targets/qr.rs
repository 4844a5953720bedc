//! Any text through each QR encoder (a SMART Health Card's two segments, an EU DCC's
//! alphanumeric text, any bytes), then drawn as PNG and SVG: a symbol or a clear error, never a
//! panic. Every symbol that comes out had its mask chosen by the vendored bit-set scorer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openvrs_cert::qr;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let digits: String = data.iter().map(|b| char::from(b'0' + b % 10)).collect();
    let alphanumeric: String = data
        .iter()
        .map(|b| char::from(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"[usize::from(*b) % 45]))
        .collect();
    for made in [
        qr::shc(&text),
        qr::shc(&format!("shc:/{digits}")),
        qr::dcc(&alphanumeric),
        qr::dcc(&text),
        qr::bytes(&text),
    ] {
        match made {
            Ok(code) => {
                let version = qr::version(&code);
                assert!((1..=40).contains(&version));
                assert_eq!(qr::width(&code), usize::from(version) * 4 + 17);
                qr::png(&code, 1).unwrap();
                assert!(qr::svg(&code).starts_with("<?xml"));
            }
            Err(e) => assert!(e.to_string().contains(" / "), "{e}"),
        }
    }
});
