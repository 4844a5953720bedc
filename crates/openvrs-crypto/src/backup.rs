//! Encrypted backup files. A file is a header - `OPENVRS-BAK1`, a random salt and nonce, and
//! the manifest (what the backup holds: plain JSON, counts and versions, never personal data) -
//! then the database snapshot in 1 MiB chunks under AES-256-GCM in the STREAM construction
//! (`aead::stream`, big-endian 32-bit counter with a last-chunk flag), each chunk bound to the
//! header. The key is derived from the master key and the salt, so a lost backup discloses
//! nothing, and restoring needs the master key the data is wrapped under anyway. Truncated,
//! reordered, altered or foreign files are refused.

use std::io::{self, Read, Write};

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Payload, stream},
};
use hmac::Mac;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{HmacSha256, MasterKey};

const MAGIC: &[u8; 12] = b"OPENVRS-BAK1";
const CHUNK: usize = 1 << 20;
const SALT: usize = 32;
const NONCE: usize = 7;
/// A manifest is small; anything larger is not our file.
const MANIFEST_MAX: u32 = 1 << 20;

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("バックアップファイルの形式ではありません / not an openvrs backup file")]
    Format,
    #[error(
        "バックアップを復号できません(別のマスター鍵、または改ざん・欠損) / the backup cannot be decrypted (another master key, or altered or truncated)"
    )]
    Decrypt,
    #[error("バックアップの読み書きに失敗しました / backup input or output failed: {0}")]
    Io(#[from] io::Error),
}

fn cipher(master: &MasterKey, salt: &[u8]) -> Aes256Gcm {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&master.0.0).expect("any key length");
    mac.update(b"openvrs backup v1");
    mac.update(salt);
    Aes256Gcm::new(&mac.finalize().into_bytes())
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes `manifest` and the encrypted `plain` to `out`.
pub fn write(
    master: &MasterKey,
    manifest: &[u8],
    plain: &mut impl Read,
    out: &mut impl Write,
) -> Result<(), BackupError> {
    let mut salt = [0u8; SALT];
    let mut nonce = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut nonce);
    let len = u32::try_from(manifest.len())
        .ok()
        .filter(|l| *l <= MANIFEST_MAX)
        .ok_or(BackupError::Format)?;
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(manifest);
    out.write_all(&header)?;
    let aad = Sha256::digest(&header);
    let mut stream = stream::EncryptorBE32::from_aead(cipher(master, &salt), (&nonce).into());
    let mut current = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut n = fill(plain, &mut current)?;
    loop {
        let m = fill(plain, &mut next)?;
        let payload = Payload {
            msg: &current[..n],
            aad: &aad,
        };
        if m == 0 {
            let sealed = stream
                .encrypt_last(payload)
                .map_err(|_| BackupError::Format)?;
            out.write_all(&(sealed.len() as u32).to_be_bytes())?;
            out.write_all(&sealed)?;
            break;
        }
        let sealed = stream
            .encrypt_next(payload)
            .map_err(|_| BackupError::Format)?;
        out.write_all(&(sealed.len() as u32).to_be_bytes())?;
        out.write_all(&sealed)?;
        std::mem::swap(&mut current, &mut next);
        n = m;
    }
    out.flush()?;
    Ok(())
}

/// A file's header, and the digest its chunks are bound to.
struct Header {
    salt: Vec<u8>,
    nonce: [u8; NONCE],
    manifest: Vec<u8>,
    aad: [u8; 32],
}

fn header(input: &mut impl Read) -> Result<Header, BackupError> {
    let mut fixed = [0u8; 12 + SALT + NONCE + 4];
    if fill(input, &mut fixed)? != fixed.len() || &fixed[..12] != MAGIC {
        return Err(BackupError::Format);
    }
    let len = u32::from_be_bytes(fixed[fixed.len() - 4..].try_into().expect("4 bytes"));
    if len > MANIFEST_MAX {
        return Err(BackupError::Format);
    }
    let mut manifest = vec![0u8; len as usize];
    if fill(input, &mut manifest)? != manifest.len() {
        return Err(BackupError::Format);
    }
    let aad = Sha256::new()
        .chain_update(fixed)
        .chain_update(&manifest)
        .finalize()
        .into();
    Ok(Header {
        salt: fixed[12..12 + SALT].to_vec(),
        nonce: fixed[12 + SALT..12 + SALT + NONCE]
            .try_into()
            .map_err(|_| BackupError::Format)?,
        manifest,
        aad,
    })
}

/// The manifest of a backup, without decrypting it (it is not secret, only authenticated).
pub fn manifest(input: &mut impl Read) -> Result<Vec<u8>, BackupError> {
    Ok(header(input)?.manifest)
}

/// Decrypts a backup into `out`; returns its manifest once every chunk, up to the last,
/// verified. On an error `out` holds a partial snapshot the caller must discard.
pub fn read(
    master: &MasterKey,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<Vec<u8>, BackupError> {
    let Header {
        salt,
        nonce,
        manifest,
        aad,
    } = header(input)?;
    let mut stream = stream::DecryptorBE32::from_aead(cipher(master, &salt), (&nonce).into());
    let mut sealed = vec![0u8; CHUNK + 16];
    loop {
        let mut len = [0u8; 4];
        if fill(input, &mut len)? != 4 {
            // The input ended before a last chunk: truncated.
            return Err(BackupError::Decrypt);
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > sealed.len() || fill(input, &mut sealed[..len])? != len {
            return Err(BackupError::Decrypt);
        }
        let payload = Payload {
            msg: &sealed[..len],
            aad: &aad,
        };
        // A chunk shorter than a full one is the last (or the file was cut and re-framed,
        // which the last-chunk flag refuses).
        if len < CHUNK + 16 {
            let plain = stream
                .decrypt_last(payload)
                .map_err(|_| BackupError::Decrypt)?;
            out.write_all(&plain)?;
            let mut extra = [0u8; 1];
            if fill(input, &mut extra)? != 0 {
                return Err(BackupError::Decrypt);
            }
            break;
        }
        let plain = match stream.decrypt_next(payload) {
            Ok(p) => p,
            // A full-size chunk may also be the last one.
            Err(_) => {
                let mut extra = [0u8; 1];
                if fill(input, &mut extra)? != 0 {
                    return Err(BackupError::Decrypt);
                }
                let plain = stream
                    .decrypt_last(Payload {
                        msg: &sealed[..len],
                        aad: &aad,
                    })
                    .map_err(|_| BackupError::Decrypt)?;
                out.write_all(&plain)?;
                break;
            }
        };
        out.write_all(&plain)?;
    }
    out.flush()?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(master: &MasterKey, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write(master, br#"{"m":1}"#, &mut &data[..], &mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_at_every_chunk_boundary_and_refuses_any_change() {
        let master = MasterKey::generate();
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 5] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let file = sealed(&master, &data);
            let mut back = Vec::new();
            assert_eq!(
                read(&master, &mut &file[..], &mut back).unwrap(),
                br#"{"m":1}"#
            );
            assert_eq!(back, data, "size {size}");
            assert_eq!(manifest(&mut &file[..]).unwrap(), br#"{"m":1}"#);
        }
        let data = vec![7u8; 2 * CHUNK + 5];
        let file = sealed(&master, &data);
        let refused = |f: &[u8], key: &MasterKey| read(key, &mut &f[..], &mut Vec::new()).is_err();
        assert!(refused(&file, &MasterKey::generate()), "another master key");
        for at in [20, 60, 70, file.len() / 2, file.len() - 1] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            assert!(refused(&bad, &master), "a bit flipped at {at}");
        }
        // Cut after the first chunk (a whole frame), cut anywhere, or with bytes added.
        let first_frame = 12 + SALT + NONCE + 4 + 7 + 4 + CHUNK + 16;
        assert!(refused(&file[..first_frame], &master));
        assert!(refused(&file[..file.len() - 3], &master));
        let mut longer = file.clone();
        longer.push(0);
        assert!(refused(&longer, &master));
        assert!(matches!(
            manifest(&mut &b"not a backup"[..]),
            Err(BackupError::Format)
        ));
        assert!(matches!(manifest(&mut &[][..]), Err(BackupError::Format)));
    }
}
