//! A secret that opens only with a 4-digit PIN, and locks after three wrong ones: how the
//! simulated My Number card keeps its data (the real card does this in its chip). The key is
//! Argon2id of the PIN with a random salt; the secret is sealed with AES-256-GCM under it.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng},
};
use argon2::Argon2;
use rand::RngCore;
use zeroize::Zeroizing;

/// Wrong PINs in a row that lock the card.
pub const TRIES: u32 = 3;

/// The sealed secret and the card's failure counter.
#[derive(Clone, PartialEq, Eq)]
pub struct PinSealed {
    pub salt: [u8; 16],
    pub nonce: [u8; 12],
    pub sealed: Vec<u8>,
    /// Wrong PINs since the last right one.
    pub failures: u32,
}

impl std::fmt::Debug for PinSealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinSealed")
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// Why the secret did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("暗証番号は数字4桁です / the PIN is 4 digits")]
    Format,
    #[error(
        "暗証番号が違います(あと {left} 回でロック) / wrong PIN ({left} tries left before the card locks)"
    )]
    Wrong { left: u32 },
    #[error("暗証番号の誤りが続いたためロックされています / locked after too many wrong PINs")]
    Locked,
}

fn check_format(pin: &str) -> Result<(), PinError> {
    if pin.len() == 4 && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PinError::Format)
    }
}

fn cipher(pin: &str, salt: &[u8; 16]) -> Aes256Gcm {
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::default()
        .hash_password_into(pin.as_bytes(), salt, &mut *key)
        .expect("Argon2 with default parameters takes a 4-byte password and 16-byte salt");
    Aes256Gcm::new((&*key).into())
}

/// Seals `secret` under `pin` (4 digits).
pub fn seal(secret: &[u8], pin: &str) -> Result<PinSealed, PinError> {
    check_format(pin)?;
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher(pin, &salt)
        .encrypt(&nonce, secret)
        .expect("AES-GCM encrypts any message of this size");
    Ok(PinSealed {
        salt,
        nonce: nonce.into(),
        sealed,
        failures: 0,
    })
}

/// Opens the secret with `pin`. A wrong PIN counts (the caller stores `card` again, as the chip
/// would); the third in a row locks the card for good; the right one resets the count.
pub fn open(card: &mut PinSealed, pin: &str) -> Result<Zeroizing<Vec<u8>>, PinError> {
    if card.failures >= TRIES {
        return Err(PinError::Locked);
    }
    check_format(pin)?;
    match cipher(pin, &card.salt).decrypt(Nonce::from_slice(&card.nonce), card.sealed.as_slice()) {
        Ok(secret) => {
            card.failures = 0;
            Ok(Zeroizing::new(secret))
        }
        Err(_) => {
            card.failures += 1;
            match TRIES - card.failures {
                0 => Err(PinError::Locked),
                left => Err(PinError::Wrong { left }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_wrong_pins_lock_the_card_and_the_right_one_resets_the_count() {
        let mut card = seal(b"signed card data", "1234").unwrap();
        assert_eq!(
            open(&mut card, "0000").unwrap_err(),
            PinError::Wrong { left: 2 }
        );
        assert_eq!(
            open(&mut card, "1234").unwrap().as_slice(),
            b"signed card data"
        );
        assert_eq!(card.failures, 0);
        assert_eq!(
            open(&mut card, "1111").unwrap_err(),
            PinError::Wrong { left: 2 }
        );
        assert_eq!(
            open(&mut card, "2222").unwrap_err(),
            PinError::Wrong { left: 1 }
        );
        assert_eq!(open(&mut card, "3333").unwrap_err(), PinError::Locked);
        assert_eq!(
            open(&mut card, "1234").unwrap_err(),
            PinError::Locked,
            "for good"
        );
        // A malformed PIN is refused before it counts.
        let mut card = seal(b"x", "1234").unwrap();
        for pin in ["123", "12345", "abcd", ""] {
            assert_eq!(open(&mut card, pin).unwrap_err(), PinError::Format);
        }
        assert_eq!(card.failures, 0);
        assert_eq!(seal(b"x", "12a4").unwrap_err(), PinError::Format);
        // Nothing of the secret in the sealed bytes or the debug form.
        let card = seal(b"123456789012", "1234").unwrap();
        assert!(!card.sealed.windows(12).any(|w| w == b"123456789012"));
        assert_eq!(format!("{card:?}"), "PinSealed { failures: 0, .. }");
    }
}
