//! Any bytes as a resident's application (card data, request, the card's signature) and as a
//! sealed envelope from the resident app: a clear bilingual error, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use openvrs_cert::card;
use openvrs_crypto::envelope::Receiver;

static RECEIVER: OnceLock<Receiver> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for e in [
        card::open_application(&text, &[]).err(),
        card::verify(&text, &[]).err(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!e.ja.is_empty() && !e.en.is_empty(), "{}", e.kind);
    }
    let receiver = RECEIVER.get_or_init(Receiver::generate);
    assert!(receiver.open(data, b"openvrs resident app: application v1").is_err());
});
