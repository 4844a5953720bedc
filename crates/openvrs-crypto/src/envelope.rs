//! Sealed envelopes (HPKE, RFC 9180: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, base
//! mode): what the resident app sends through the internet listener. The app seals its
//! application, which carries the card's My Number, to the system's intake key, and includes a
//! fresh key of its own to which the answer is sealed; the internet listener only ever passes
//! ciphertext. An envelope is `enc || ciphertext`, the 65-byte encapsulated key first.

use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::AesGcm256, kdf::HkdfSha256,
    kem::DhP256HkdfSha256,
};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

type Kem = DhP256HkdfSha256;

/// Length of the encapsulated key at the start of an envelope.
const ENC: usize = 65;

/// Why an envelope could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "暗号化された申請を開けません(鍵の違いまたは改ざん) / cannot open the sealed envelope (another key, or altered)"
    )]
    Open,
    #[error("公開鍵が不正です / the public key is invalid")]
    Key,
}

/// A key pair to receive envelopes: the private part as 32 bytes, the public part as the
/// uncompressed point (65 bytes).
pub struct Receiver {
    secret: <Kem as hpke::Kem>::PrivateKey,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receiver(..)")
    }
}

impl Receiver {
    pub fn generate() -> Self {
        let (secret, _) = Kem::gen_keypair(&mut OsRng);
        Self { secret }
    }

    /// From the private part (as stored, encrypted, by the caller).
    pub fn from_bytes(secret: &[u8]) -> Result<Self, EnvelopeError> {
        Ok(Self {
            secret: <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
                .map_err(|_| EnvelopeError::Key)?,
        })
    }

    /// The private part, for the caller to store encrypted.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.secret.to_bytes().to_vec())
    }

    /// The public part: the uncompressed P-256 point.
    pub fn public(&self) -> Vec<u8> {
        Kem::sk_to_pk(&self.secret).to_bytes().to_vec()
    }

    /// Opens an envelope sealed to this key with the same `info`.
    pub fn open(&self, envelope: &[u8], info: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if envelope.len() < ENC {
            return Err(EnvelopeError::Open);
        }
        let (enc, ciphertext) = envelope.split_at(ENC);
        let enc =
            <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| EnvelopeError::Open)?;
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.secret,
            &enc,
            info,
            ciphertext,
            b"",
        )
        .map(Zeroizing::new)
        .map_err(|_| EnvelopeError::Open)
    }
}

/// Seals `plaintext` to the holder of `public` (an uncompressed P-256 point), bound to `info`.
pub fn seal(public: &[u8], info: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let public =
        <Kem as hpke::Kem>::PublicKey::from_bytes(public).map_err(|_| EnvelopeError::Key)?;
    let (enc, ciphertext) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &public,
        info,
        plaintext,
        b"",
        &mut OsRng,
    )
    .map_err(|_| EnvelopeError::Key)?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_receiver_opens_and_any_change_is_refused() {
        let r = Receiver::generate();
        let sealed = seal(&r.public(), b"openvrs app", b"application").unwrap();
        assert_eq!(
            r.open(&sealed, b"openvrs app").unwrap().as_slice(),
            b"application"
        );
        // Stored and restored.
        let again = Receiver::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(again.public(), r.public());
        assert!(again.open(&sealed, b"openvrs app").is_ok());
        // Another key, another purpose, a flipped bit, a cut, nothing.
        let other = Receiver::generate();
        assert_eq!(
            other.open(&sealed, b"openvrs app"),
            Err(EnvelopeError::Open)
        );
        assert_eq!(r.open(&sealed, b"other"), Err(EnvelopeError::Open));
        for i in [0, 70, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(r.open(&bad, b"openvrs app"), Err(EnvelopeError::Open));
        }
        assert_eq!(
            r.open(&sealed[..60], b"openvrs app"),
            Err(EnvelopeError::Open)
        );
        assert_eq!(r.open(&[], b"openvrs app"), Err(EnvelopeError::Open));
        assert_eq!(seal(b"not a key", b"", b"x"), Err(EnvelopeError::Key));
        assert!(Receiver::from_bytes(&[0u8; 32]).is_err());
    }
}
