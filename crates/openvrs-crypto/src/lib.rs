//! The keys of openvrs and everything done with them.
//!
//! A [`MasterKey`] (from a 0600 key file or the environment) wraps one set of [`TenantKeys`] per
//! municipality; the wrapped keys live in the database beside the data. Personal fields are
//! sealed with the tenant's data key (AES-256-GCM, bound to municipality, table, column and row);
//! a My Number is found through an HMAC-SHA256 keyed index; the audit log is an HMAC chain.
//! Destroying a tenant's data and index keys makes its personal data unreadable.

pub mod backup;
pub mod credentials;
pub mod envelope;
pub mod pin;
pub mod pki;

use std::fmt;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use hmac::{Hmac, Mac};
use rand::{RngCore, thread_rng};
use sha2::Sha256;
pub use zeroize::Zeroizing;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What can go wrong with keys and ciphertexts. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("鍵の形式が不正です(64桁の16進数) / a key must be 64 hexadecimal digits")]
    KeyFormat,
    #[error(
        "復号できません(鍵が違うか、データが改ざんされています) / cannot decrypt: wrong key or tampered data"
    )]
    Decrypt,
    #[error("暗号文の形式が不正です / malformed ciphertext")]
    Format,
    #[error(
        "暗号文の鍵版 {found} に対応する鍵がありません / no key of version {found} for this ciphertext"
    )]
    KeyVersion { found: u32 },
}

/// 32 bytes of key material, zeroed on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        thread_rng().fill_bytes(&mut k);
        Self(k)
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut k).map_err(|_| CryptoError::KeyFormat)?;
        Ok(Self(k))
    }

    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    fn from_slice(b: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(b.try_into().map_err(|_| CryptoError::Format)?))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// AES-256-GCM with a random nonce. Output: format byte, key version (u32 BE), nonce, ciphertext
/// and tag; the header is authenticated along with `aad`.
fn seal(key: &Key, version: u32, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new((&key.0).into());
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    thread_rng().fill_bytes(&mut nonce);
    out.extend_from_slice(&nonce);
    let full_aad = [&out[..HEADER_LEN], aad].concat();
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &full_aad,
            },
        )
        .expect("AES-GCM encryption cannot fail for in-memory buffers");
    out.extend_from_slice(&ct);
    out
}

/// The key version a sealed value was made with.
pub fn sealed_version(sealed: &[u8]) -> Result<u32, CryptoError> {
    if sealed.len() < HEADER_LEN + 16 || sealed[0] != FORMAT_V1 {
        return Err(CryptoError::Format);
    }
    Ok(u32::from_be_bytes(
        sealed[1..5].try_into().expect("4 bytes"),
    ))
}

fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    sealed_version(sealed)?;
    let cipher = Aes256Gcm::new((&key.0).into());
    let full_aad = [&sealed[..HEADER_LEN], aad].concat();
    cipher
        .decrypt(
            Nonce::from_slice(&sealed[5..HEADER_LEN]),
            Payload {
                msg: &sealed[HEADER_LEN..],
                aad: &full_aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

/// The key that wraps every municipality's keys.
#[derive(Debug, Clone)]
pub struct MasterKey(Key);

impl MasterKey {
    pub fn generate() -> Self {
        Self(Key::random())
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Key::from_hex(s).map(Self)
    }

    pub fn to_hex(&self) -> Zeroizing<String> {
        self.0.to_hex()
    }

    /// Wraps a tenant key, bound to the municipality and the key's kind and version.
    pub fn wrap(&self, slot: &KeySlot<'_>, key: &Key) -> Vec<u8> {
        seal(&self.0, 0, &slot.aad(), &key.0)
    }

    pub fn unwrap(&self, slot: &KeySlot<'_>, wrapped: &[u8]) -> Result<Key, CryptoError> {
        Key::from_slice(&open(&self.0, &slot.aad(), wrapped)?)
    }

    /// Seals a deployment secret (a certificate signing key), bound to what it is for (`slot`,
    /// e.g. `signing/shc/<kid>`), so that it cannot be swapped for another.
    pub fn seal_secret(&self, slot: &str, secret: &[u8]) -> Vec<u8> {
        seal(
            &self.0,
            0,
            format!("openvrs/secret/{slot}").as_bytes(),
            secret,
        )
    }

    pub fn open_secret(
        &self,
        slot: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(&self.0, format!("openvrs/secret/{slot}").as_bytes(), sealed)
    }
}

/// The kinds of per-municipality key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Seals personal fields. Destroyed to crypto-shred.
    Data,
    /// Keys the My Number index. Destroyed with the data key.
    Index,
    /// Chains the audit log. Kept after shredding: the log holds no personal data.
    Audit,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Data, KeyKind::Index, KeyKind::Audit];

    pub fn code(self) -> &'static str {
        match self {
            KeyKind::Data => "data",
            KeyKind::Index => "index",
            KeyKind::Audit => "audit",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// Where a wrapped key belongs: which municipality, which kind, which version.
#[derive(Debug, Clone, Copy)]
pub struct KeySlot<'a> {
    pub municipality: &'a str,
    pub kind: KeyKind,
    pub version: u32,
}

impl KeySlot<'_> {
    fn aad(&self) -> Vec<u8> {
        format!(
            "openvrs/key/{}/{}/{}",
            self.municipality,
            self.kind.code(),
            self.version
        )
        .into_bytes()
    }
}

/// Where a sealed field belongs. Bound into the ciphertext, so a value cannot be moved to another
/// row, column, table or municipality without failing to open.
#[derive(Debug, Clone, Copy)]
pub struct FieldSlot<'a> {
    pub municipality: &'a str,
    pub table: &'a str,
    pub column: &'a str,
    pub row: &'a str,
}

impl FieldSlot<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for part in [self.municipality, self.table, self.column, self.row] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// One municipality's unwrapped keys.
#[derive(Debug, Clone)]
pub struct TenantKeys {
    /// The data key new values are sealed with.
    pub data: Key,
    pub data_version: u32,
    /// Older data keys still in use while a rotation re-seals their values (version, key).
    pub data_retiring: Vec<(u32, Key)>,
    pub index: Key,
    pub audit: Key,
}

impl TenantKeys {
    pub fn generate() -> Self {
        Self {
            data: Key::random(),
            data_version: 1,
            data_retiring: Vec::new(),
            index: Key::random(),
            audit: Key::random(),
        }
    }

    /// Seals a personal field with the data key.
    pub fn seal(&self, slot: &FieldSlot<'_>, plaintext: &[u8]) -> Vec<u8> {
        seal(&self.data, self.data_version, &slot.aad(), plaintext)
    }

    pub fn open(
        &self,
        slot: &FieldSlot<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let found = sealed_version(sealed)?;
        let key = if found == self.data_version {
            &self.data
        } else {
            self.data_retiring
                .iter()
                .find(|(v, _)| *v == found)
                .map(|(_, k)| k)
                .ok_or(CryptoError::KeyVersion { found })?
        };
        open(key, &slot.aad(), sealed)
    }

    /// The keyed index of a value (HMAC-SHA256 under the index key), domain-separated by `what`.
    pub fn index(&self, what: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.index.0).expect("any key length");
        mac.update(&(what.len() as u32).to_be_bytes());
        mac.update(what.as_bytes());
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// The next link of the audit chain: HMAC-SHA256 under the audit key over the previous link
    /// and the entry's fields, each length-prefixed so no two entries encode alike.
    pub fn audit_link(&self, previous: &[u8; 32], fields: &[&[u8]]) -> [u8; 32] {
        audit_link(&self.audit, previous, fields)
    }
}

/// See [`TenantKeys::audit_link`]; usable with the audit key alone (after shredding).
pub fn audit_link(audit_key: &Key, previous: &[u8; 32], fields: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&audit_key.0).expect("any key length");
    mac.update(previous);
    for f in fields {
        mac.update(&(f.len() as u64).to_be_bytes());
        mac.update(f);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(row: &str) -> FieldSlot<'_> {
        FieldSlot {
            municipality: "472131",
            table: "persons",
            column: "name",
            row,
        }
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let keys = TenantKeys::generate();
        let sealed = keys.seal(&slot("1"), "ウルマ タロウ".as_bytes());
        assert_eq!(
            &**keys.open(&slot("1"), &sealed).unwrap(),
            "ウルマ タロウ".as_bytes()
        );
        // Moved to another row, column or municipality: does not open.
        assert_eq!(keys.open(&slot("2"), &sealed), Err(CryptoError::Decrypt));
        let other_column = FieldSlot {
            column: "name_kana",
            ..slot("1")
        };
        assert_eq!(keys.open(&other_column, &sealed), Err(CryptoError::Decrypt));
        let other_town = FieldSlot {
            municipality: "472018",
            ..slot("1")
        };
        assert_eq!(keys.open(&other_town, &sealed), Err(CryptoError::Decrypt));
        // Another key: does not open.
        assert_eq!(
            TenantKeys::generate().open(&slot("1"), &sealed),
            Err(CryptoError::Decrypt)
        );
        // Any flipped byte: does not open.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(keys.open(&slot("1"), &bad).is_err(), "byte {i}");
        }
        assert_eq!(
            keys.open(&slot("1"), &sealed[..10]),
            Err(CryptoError::Format)
        );
    }

    #[test]
    fn a_rotated_data_key_opens_both_versions_until_the_old_one_is_dropped() {
        let old = TenantKeys::generate();
        let sealed_old = old.seal(&slot("1"), b"x");
        let rotating = TenantKeys {
            data: Key::random(),
            data_version: 2,
            data_retiring: vec![(1, old.data.clone())],
            ..old.clone()
        };
        let sealed_new = rotating.seal(&slot("1"), b"y");
        assert_eq!(sealed_version(&sealed_new), Ok(2));
        assert_eq!(&**rotating.open(&slot("1"), &sealed_old).unwrap(), b"x");
        assert_eq!(&**rotating.open(&slot("1"), &sealed_new).unwrap(), b"y");
        let rotated = TenantKeys {
            data_retiring: Vec::new(),
            ..rotating.clone()
        };
        assert_eq!(
            rotated.open(&slot("1"), &sealed_old),
            Err(CryptoError::KeyVersion { found: 1 })
        );
        assert_eq!(
            old.open(&slot("1"), &sealed_new),
            Err(CryptoError::KeyVersion { found: 2 })
        );
    }

    #[test]
    fn sealing_is_randomised() {
        let keys = TenantKeys::generate();
        assert_ne!(keys.seal(&slot("1"), b"x"), keys.seal(&slot("1"), b"x"));
    }

    #[test]
    fn wrap_binds_slot() {
        let master = MasterKey::generate();
        let key = Key::random();
        let s = KeySlot {
            municipality: "472131",
            kind: KeyKind::Data,
            version: 1,
        };
        let wrapped = master.wrap(&s, &key);
        assert_eq!(master.unwrap(&s, &wrapped).unwrap(), key);
        let other = KeySlot {
            kind: KeyKind::Index,
            ..s
        };
        assert!(master.unwrap(&other, &wrapped).is_err());
        assert!(MasterKey::generate().unwrap(&s, &wrapped).is_err());
        let hex = master.to_hex();
        assert_eq!(
            MasterKey::from_hex(&hex)
                .unwrap()
                .unwrap(&s, &wrapped)
                .unwrap(),
            key
        );
        assert_eq!(
            MasterKey::from_hex("zz").unwrap_err(),
            CryptoError::KeyFormat
        );
    }

    #[test]
    fn index_is_keyed_and_deterministic() {
        let a = TenantKeys::generate();
        let b = TenantKeys::generate();
        assert_eq!(
            a.index("my_number", b"123456789018"),
            a.index("my_number", b"123456789018")
        );
        assert_ne!(
            a.index("my_number", b"123456789018"),
            b.index("my_number", b"123456789018")
        );
        assert_ne!(
            a.index("my_number", b"123456789018"),
            a.index("voucher", b"123456789018")
        );
    }

    #[test]
    fn audit_links_are_unambiguous() {
        let k = TenantKeys::generate();
        let zero = [0u8; 32];
        assert_ne!(
            k.audit_link(&zero, &[b"ab", b"c"]),
            k.audit_link(&zero, &[b"a", b"bc"])
        );
        assert_ne!(
            k.audit_link(&zero, &[b"a"]),
            k.audit_link(&[1u8; 32], &[b"a"])
        );
    }

    #[test]
    fn debug_never_prints_keys() {
        let m = MasterKey::generate();
        let t = TenantKeys::generate();
        let shown = format!("{m:?}{t:?}");
        for secret in [
            m.to_hex(),
            t.data.to_hex(),
            t.index.to_hex(),
            t.audit.to_hex(),
        ] {
            assert!(!shown.contains(&secret[..8]), "{shown}");
        }
    }
}
