//! Vaccination certificates that third-party verifiers accept. This crate does no IO: it turns
//! what is to be certified into signed payloads and QR texts, and reads and verifies them,
//! ours or anybody's. Formats: SMART Health Cards ([`shc`]); ICAO VDS-NC and EU DCC follow.

pub mod card;
pub mod dcc;
pub mod pdf;
pub mod pki;
pub mod qr;
pub mod shc;
pub mod vds;
pub mod verify;

/// Why a certificate could not be made or read: Japanese first, then English, never a personal
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ja} / {en}")]
pub struct CertError {
    /// A stable code, e.g. `shc.signature`.
    pub kind: &'static str,
    pub ja: &'static str,
    pub en: &'static str,
}

impl CertError {
    pub(crate) const fn new(kind: &'static str, ja: &'static str, en: &'static str) -> Self {
        Self { kind, ja, en }
    }
}
