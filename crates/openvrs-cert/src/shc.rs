//! SMART Health Cards (Framework 1.4): a FHIR bundle in a JWS payload (`iss`, `nbf`, `vc`),
//! DEFLATE-compressed (`zip: DEF`, raw, no zlib header), signed ES256 with a P-256 key whose
//! `kid` is its RFC 7638 JWK thumbprint, carried in numeric-mode QR codes (`shc:/...`) or a
//! `.smart-health-card` file.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ring::{
    rand::SystemRandom,
    signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
        UnparsedPublicKey,
    },
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

use crate::CertError;

/// The largest decompressed payload accepted (a card is a few kilobytes; this bounds a
/// decompression bomb).
const MAX_PAYLOAD: u64 = 1 << 20;
/// The largest JWS accepted.
const MAX_JWS: usize = 1 << 20;

const FORMAT: CertError = CertError::new(
    "shc.format",
    "SMART Health Card の形式ではありません",
    "not a SMART Health Card",
);
const QR: CertError = CertError::new(
    "shc.qr",
    "QRコードの内容(shc:/ 数字列)が不正です",
    "the QR content (shc:/ digits) is malformed",
);
const CHUNKS: CertError = CertError::new(
    "shc.chunks",
    "分割QRコードがそろっていません",
    "the chunked QR codes are incomplete or inconsistent",
);
const HEADER: CertError = CertError::new(
    "shc.header",
    "JWSヘッダーが不正です(ES256・zip DEF・kid が必要)",
    "the JWS header is invalid (ES256, zip DEF and kid are required)",
);
const INFLATE: CertError = CertError::new(
    "shc.inflate",
    "ペイロードを展開できません",
    "the payload cannot be decompressed",
);
const PAYLOAD: CertError = CertError::new(
    "shc.payload",
    "ペイロードが SMART Health Card の内容ではありません",
    "the payload is not SMART Health Card content",
);
const UNKNOWN_KEY: CertError = CertError::new(
    "shc.unknown_key",
    "署名鍵(kid)が発行者の鍵一覧にありません",
    "the signing key (kid) is not among the issuer's keys",
);
const SIGNATURE: CertError = CertError::new(
    "shc.signature",
    "署名が正しくありません",
    "the signature does not verify",
);
const JWK: CertError = CertError::new(
    "shc.jwk",
    "公開鍵(JWK)が不正です",
    "a public key (JWK) is invalid",
);

/// A public issuer key from a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// The uncompressed point: 0x04, x, y.
    key: Vec<u8>,
    /// The revocation list version, when the issuer publishes one for this key.
    pub crl_version: Option<u64>,
}

impl PublicKey {
    /// The RFC 7638 thumbprint of this key, which SMART Health Cards use as its `kid`.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.key)
    }
}

/// The base64url x and y of an uncompressed point.
fn coordinates(point: &[u8]) -> (String, String) {
    match point {
        [4, xy @ ..] if xy.len() == 64 => (B64.encode(&xy[..32]), B64.encode(&xy[32..])),
        _ => (String::new(), String::new()),
    }
}

fn thumbprint(key: &[u8]) -> String {
    let (x, y) = coordinates(key);
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// Reads the EC P-256 keys of a JWKS document; other keys are skipped.
pub fn parse_jwks(json: &str) -> Result<Vec<PublicKey>, CertError> {
    let doc: Value = serde_json::from_str(json).map_err(|_| JWK)?;
    let keys = doc.get("keys").and_then(Value::as_array).ok_or(JWK)?;
    let mut out = Vec::new();
    for k in keys {
        if k.get("kty").and_then(Value::as_str) != Some("EC")
            || k.get("crv").and_then(Value::as_str).unwrap_or("P-256") != "P-256"
        {
            continue;
        }
        let coordinate = |name: &str| -> Result<[u8; 32], CertError> {
            let text = k.get(name).and_then(Value::as_str).ok_or(JWK)?;
            B64.decode(text)
                .map_err(|_| JWK)?
                .try_into()
                .map_err(|_| JWK)
        };
        let (x, y) = (coordinate("x")?, coordinate("y")?);
        let mut key = vec![4];
        key.extend_from_slice(&x);
        key.extend_from_slice(&y);
        let kid = match k.get("kid").and_then(Value::as_str) {
            Some(kid) => kid.to_owned(),
            None => thumbprint(&key),
        };
        out.push(PublicKey {
            kid,
            key,
            crl_version: k.get("crlVersion").and_then(Value::as_u64),
        });
    }
    Ok(out)
}

/// An issuer's signing key (ring's P-256; the private part as PKCS#8).
pub struct SigningKeyPair {
    key: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyPair")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl SigningKeyPair {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system's random generator works");
        Self::from_bytes(pkcs8.as_ref()).expect("a key just made is valid")
    }

    /// From the PKCS#8 document (as stored, encrypted, by the caller).
    pub fn from_bytes(pkcs8: &[u8]) -> Result<Self, CertError> {
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| JWK)?;
        Ok(Self {
            key,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The PKCS#8 document, for the caller to store encrypted.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }

    pub fn kid(&self) -> String {
        thumbprint(self.key.public_key().as_ref())
    }

    /// The public JWK as an issuer publishes it in `/.well-known/jwks.json`.
    pub fn public_jwk(&self) -> Value {
        let (x, y) = coordinates(self.key.public_key().as_ref());
        json!({
            "kty": "EC", "kid": self.kid(), "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": x, "y": y,
        })
    }

    /// A bare ES256 signature, raw r || s (the benchmark's ceiling; JWS signatures too).
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(&SystemRandom::new(), message)
            .expect("signing with a valid key works")
            .as_ref()
            .to_vec()
    }

    /// The uncompressed public point: 0x04, x, y.
    pub fn public_point(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            kid: self.kid(),
            key: self.key.public_key().as_ref().to_vec(),
            crl_version: None,
        }
    }
}

/// What a card says: the issuer, when it became valid, the FHIR bundle, the revocation id.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub iss: String,
    /// NumericDate (seconds, possibly fractional).
    pub nbf: f64,
    pub exp: Option<f64>,
    /// The credential's types, e.g. `https://smarthealth.cards#health-card`.
    pub types: Vec<String>,
    pub bundle: Value,
    /// `vc.rid`, for revocation.
    pub rid: Option<String>,
}

/// Signs a card: the minified payload, raw DEFLATE, compact JWS with `zip: DEF`.
pub fn sign(card: &Card, key: &SigningKeyPair) -> Result<String, CertError> {
    let mut vc = json!({
        "type": card.types,
        "credentialSubject": { "fhirVersion": "4.0.1", "fhirBundle": card.bundle },
    });
    if let Some(rid) = &card.rid {
        vc["rid"] = json!(rid);
    }
    let mut payload = json!({ "iss": card.iss, "nbf": card.nbf, "vc": vc });
    if let Some(exp) = card.exp {
        payload["exp"] = json!(exp);
    }
    let minified = serde_json::to_vec(&payload).map_err(|_| PAYLOAD)?;
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflater.write_all(&minified).map_err(|_| INFLATE)?;
    let compressed = deflater.finish().map_err(|_| INFLATE)?;
    let header = json!({ "zip": "DEF", "alg": "ES256", "kid": key.kid() });
    let signing_input = format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(&header).map_err(|_| HEADER)?),
        B64.encode(compressed)
    );
    let signature = key.sign_raw(signing_input.as_bytes());
    Ok(format!("{signing_input}.{}", B64.encode(signature)))
}

/// A JWS taken apart, before its signature is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub kid: String,
    pub payload: Value,
    pub card: Card,
    signing_input: String,
    signature: Vec<u8>,
}

/// Takes a compact JWS apart: header, inflated payload, the card in it.
pub fn decode(jws: &str) -> Result<Decoded, CertError> {
    let jws = jws.trim();
    if jws.len() > MAX_JWS {
        return Err(FORMAT);
    }
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FORMAT);
    };
    let header: Value =
        serde_json::from_slice(&B64.decode(h).map_err(|_| HEADER)?).map_err(|_| HEADER)?;
    let kid = header.get("kid").and_then(Value::as_str).ok_or(HEADER)?;
    if header.get("alg").and_then(Value::as_str) != Some("ES256")
        || header.get("zip").and_then(Value::as_str) != Some("DEF")
    {
        return Err(HEADER);
    }
    let compressed = B64.decode(p).map_err(|_| FORMAT)?;
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(compressed.as_slice())
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut inflated)
        .map_err(|_| INFLATE)?;
    if inflated.len() as u64 > MAX_PAYLOAD {
        return Err(INFLATE);
    }
    let payload: Value = serde_json::from_slice(&inflated).map_err(|_| PAYLOAD)?;
    let card = card(&payload)?;
    Ok(Decoded {
        kid: kid.to_owned(),
        payload,
        card,
        signing_input: format!("{h}.{p}"),
        signature: B64.decode(s).map_err(|_| FORMAT)?,
    })
}

fn card(payload: &Value) -> Result<Card, CertError> {
    let vc = payload.get("vc").ok_or(PAYLOAD)?;
    let bundle = vc
        .pointer("/credentialSubject/fhirBundle")
        .filter(|b| b.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
        .ok_or(PAYLOAD)?;
    Ok(Card {
        iss: payload
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(PAYLOAD)?
            .to_owned(),
        nbf: payload.get("nbf").and_then(Value::as_f64).ok_or(PAYLOAD)?,
        exp: payload.get("exp").and_then(Value::as_f64),
        types: vc
            .get("type")
            .and_then(Value::as_array)
            .ok_or(PAYLOAD)?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        bundle: bundle.clone(),
        rid: vc.get("rid").and_then(Value::as_str).map(str::to_owned),
    })
}

impl Decoded {
    /// Checks the signature with the issuer's key of this `kid`.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<(), CertError> {
        let key = keys.iter().find(|k| k.kid == self.kid).ok_or(UNKNOWN_KEY)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.key)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| SIGNATURE)
    }
}

/// The numeric QR text of a JWS that fits one QR code: `shc:/` and two digits per character.
pub fn qr_numeric(jws: &str) -> String {
    let mut out = String::with_capacity(5 + 2 * jws.len());
    out.push_str("shc:/");
    for b in jws.bytes() {
        let n = b.saturating_sub(45);
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    }
    out
}

/// The JWS in one or more QR texts (`shc:/DIGITS`, or chunks `shc:/i/n/DIGITS` in any order).
pub fn jws_from_qr(texts: &[&str]) -> Result<String, CertError> {
    let mut chunks: Vec<(usize, usize, &str)> = Vec::new();
    for t in texts {
        let rest = t.trim().strip_prefix("shc:/").ok_or(QR)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [digits] => chunks.push((1, 1, digits)),
            [i, n, digits] => chunks.push((
                i.parse().map_err(|_| QR)?,
                n.parse().map_err(|_| QR)?,
                digits,
            )),
            _ => return Err(QR),
        }
    }
    let total = chunks.first().map(|c| c.1).ok_or(QR)?;
    chunks.sort_by_key(|c| c.0);
    if chunks.len() != total
        || chunks
            .iter()
            .enumerate()
            .any(|(k, (i, n, _))| *n != total || *i != k + 1)
    {
        return Err(CHUNKS);
    }
    let mut jws = String::new();
    for (_, _, digits) in chunks {
        let bytes = digits.as_bytes();
        if bytes.is_empty() || bytes.len() % 2 != 0 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(QR);
        }
        for pair in bytes.chunks(2) {
            let n = (pair[0] - b'0') * 10 + (pair[1] - b'0');
            if n > 77 {
                return Err(QR);
            }
            jws.push(char::from(n + 45));
        }
        if jws.len() > MAX_JWS {
            return Err(QR);
        }
    }
    Ok(jws)
}

/// A `.smart-health-card` file holding these JWSs.
pub fn file(jws: &[String]) -> String {
    json!({ "verifiableCredential": jws }).to_string()
}

/// The JWSs of a `.smart-health-card` file.
pub fn jws_from_file(text: &str) -> Result<Vec<String>, CertError> {
    let doc: Value = serde_json::from_str(text).map_err(|_| FORMAT)?;
    let list = doc
        .get("verifiableCredential")
        .and_then(Value::as_array)
        .ok_or(FORMAT)?;
    list.iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or(FORMAT))
        .collect()
}

/// The person as a card names them (data-minimised: name and date of birth only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub family: String,
    pub given: Vec<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
}

/// One dose as a card carries it: no dose number (the profile forbids `protocolApplied`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    /// CVX code of the product.
    pub cvx: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub lot: String,
    /// `performer[].actor.display` (Japan's cards said `MHLW_Gov_of_JAPAN`).
    pub performer: String,
}

/// The data-minimised FHIR bundle of a vaccination card: the patient as `resource:0`, then one
/// Immunization per dose.
pub fn immunization_bundle(patient: &Patient, shots: &[Shot]) -> Value {
    let mut entries = vec![json!({
        "fullUrl": "resource:0",
        "resource": {
            "resourceType": "Patient",
            "name": [{ "family": patient.family, "given": patient.given }],
            "birthDate": patient.birth_date,
        },
    })];
    for (i, s) in shots.iter().enumerate() {
        let mut immunization = json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": s.cvx }] },
            "patient": { "reference": "resource:0" },
            "occurrenceDateTime": s.date,
            "performer": [{ "actor": { "display": s.performer } }],
        });
        if !s.lot.is_empty() {
            immunization["lotNumber"] = json!(s.lot);
        }
        entries.push(json!({ "fullUrl": format!("resource:{}", i + 1), "resource": immunization }));
    }
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}

/// The revocation id of a certificate: base64url of the first 64 bits of
/// HMAC-SHA-256(secret || kid, certificate id) - stable per key, unlinkable without the secret.
pub fn rid(secret: &[u8], kid: &str, certificate_id: &str) -> String {
    use hmac::Mac as _;
    let mut key = secret.to_vec();
    key.extend_from_slice(kid.as_bytes());
    let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&key)
        .expect("HMAC takes a key of any length");
    mac.update(certificate_id.as_bytes());
    B64.encode(&mac.finalize().into_bytes()[..8])
}

/// A revocation list, `<iss>/.well-known/crl/<kid>.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    pub kid: String,
    pub ctr: u64,
    /// (rid, revoked only for cards whose `nbf` is before this time).
    pub rids: Vec<(String, Option<i64>)>,
}

const CRL: CertError = CertError::new(
    "shc.crl",
    "失効リストが不正です",
    "the revocation list is invalid",
);

impl Crl {
    pub fn parse(json: &str) -> Result<Self, CertError> {
        let doc: Value = serde_json::from_str(json).map_err(|_| CRL)?;
        if doc.get("method").and_then(Value::as_str) != Some("rid") {
            return Err(CRL);
        }
        let rids = doc
            .get("rids")
            .and_then(Value::as_array)
            .ok_or(CRL)?
            .iter()
            .map(|r| {
                let r = r.as_str().ok_or(CRL)?;
                Ok(match r.split_once('.') {
                    Some((rid, ts)) => (rid.to_owned(), Some(ts.parse().map_err(|_| CRL)?)),
                    None => (r.to_owned(), None),
                })
            })
            .collect::<Result<_, CertError>>()?;
        Ok(Self {
            kid: doc
                .get("kid")
                .and_then(Value::as_str)
                .ok_or(CRL)?
                .to_owned(),
            ctr: doc.get("ctr").and_then(Value::as_u64).ok_or(CRL)?,
            rids,
        })
    }

    /// The list as published.
    pub fn to_json(&self) -> Value {
        json!({
            "kid": self.kid,
            "method": "rid",
            "ctr": self.ctr,
            "rids": self.rids.iter().map(|(rid, ts)| match ts {
                Some(t) => format!("{rid}.{t}"),
                None => rid.clone(),
            }).collect::<Vec<_>>(),
        })
    }

    /// Whether a card with this `rid` and `nbf` is revoked.
    pub fn revokes(&self, rid: &str, nbf: f64) -> bool {
        self.rids
            .iter()
            .any(|(r, ts)| r == rid && ts.is_none_or(|t| nbf < t as f64))
    }
}
