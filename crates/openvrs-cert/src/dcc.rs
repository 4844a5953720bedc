//! EU Digital COVID Certificate (HCERT): the DCC JSON in a CWT (`1` iss, `4` exp, `6` iat,
//! `-260: {1: DCC}`), signed as COSE_Sign1 (ES256, or PS256 from others), zlib, Base45, `HC1:`.
//! Each step is its own function so that a verifier (and the EU test data) can say which one
//! failed; [`decode`] runs them all.

use ciborium::Value as Cbor;
use coset::{
    AsCborValue as _, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable as _, iana,
};
use serde_json::{Value, json};
use std::{
    io::{Read, Write},
    sync::OnceLock,
};

use crate::{
    CertError,
    pki::{Algorithm, Certificate, DCC_KEY_USAGES, Issued},
};

/// The only context this verifier knows (HCERT version 1).
pub const PREFIX: &str = "HC1:";
/// The largest decompressed CWT accepted (a DCC is about 300 bytes; this bounds a bomb).
const MAX_COSE: u64 = 64 * 1024;
/// The largest QR text accepted.
const MAX_TEXT: usize = 16 * 1024;

const UNPREFIX: CertError = CertError::new(
    "dcc.prefix",
    "HC1: で始まっていません(EU DCC ではないか、未対応の版です)",
    "does not start with HC1: (not an EU DCC, or an unsupported version)",
);
const BASE45: CertError =
    CertError::new("dcc.base45", "Base45 として読めません", "not valid Base45");
const ZLIB: CertError = CertError::new(
    "dcc.zlib",
    "zlib で展開できません",
    "cannot be decompressed with zlib",
);
const COSE: CertError = CertError::new(
    "dcc.cose",
    "COSE_Sign1 として読めません",
    "not a COSE_Sign1 structure",
);
const CWT: CertError = CertError::new(
    "dcc.cwt",
    "CWT(HCERT)の内容ではありません",
    "not an HCERT CWT payload",
);
const CBOR: CertError = CertError::new(
    "dcc.cbor",
    "DCC の CBOR を読めません",
    "the DCC CBOR cannot be read",
);
const NO_KEY: CertError = CertError::new(
    "dcc.unknown_key",
    "署名者証明書(kid)が信頼リストにありません",
    "the signer certificate (kid) is not among the trusted ones",
);
const ALG: CertError = CertError::new(
    "dcc.algorithm",
    "署名アルゴリズムが未対応です(ES256・PS256)",
    "unsupported signature algorithm (ES256, PS256)",
);
const SCHEMA: CertError = CertError::new(
    "dcc.schema",
    "DCC スキーマに適合しません",
    "does not conform to the DCC schema",
);
const NOT_YET: CertError = CertError::new(
    "dcc.not_yet_valid",
    "発行日時(iat)より前の時点です",
    "the time is before the certificate's issue time (iat)",
);
const EXPIRED: CertError = CertError::new("dcc.expired", "有効期限(exp)切れです", "expired (exp)");
const KEY_USAGE: CertError = CertError::new(
    "dcc.key_usage",
    "署名者証明書の用途(拡張キー使用法)がこの種類の証明書を許していません",
    "the signer certificate's extended key usage does not allow this kind of certificate",
);
const ENCODE: CertError = CertError::new(
    "dcc.encode",
    "DCC を作成できません",
    "the DCC cannot be made",
);

/// Step 1: the Base45 text after the prefix.
pub fn unprefix(text: &str) -> Result<&str, CertError> {
    text.trim().strip_prefix(PREFIX).ok_or(UNPREFIX)
}

/// Step 2: Base45 to bytes.
pub fn base45_decode(text: &str) -> Result<Vec<u8>, CertError> {
    if text.len() > MAX_TEXT {
        return Err(BASE45);
    }
    base45::decode(text).map_err(|_| BASE45)
}

/// Step 3: zlib (RFC 1950) to the COSE bytes, bounded.
pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>, CertError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .take(MAX_COSE + 1)
        .read_to_end(&mut out)
        .map_err(|_| ZLIB)?;
    if out.len() as u64 > MAX_COSE {
        return Err(ZLIB);
    }
    Ok(out)
}

/// The CWT claims of an HCERT.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// Issuing country (ISO 3166-1 alpha-2).
    pub iss: Option<String>,
    pub iat: Option<i64>,
    pub exp: Option<i64>,
    /// The DCC itself (claim -260, key 1), as CBOR.
    pub dcc: Cbor,
}

/// A COSE_Sign1 taken apart, before its signature is checked.
#[derive(Debug, Clone)]
pub struct Signed {
    pub algorithm: Option<Algorithm>,
    /// The key id: from the protected header when it has one, else from the unprotected one.
    pub kid: Option<[u8; 8]>,
    pub claims: Claims,
    tbs: Vec<u8>,
    signature: Vec<u8>,
}

fn int(v: &Cbor) -> Option<i64> {
    match v {
        Cbor::Integer(i) => i64::try_from(*i).ok(),
        Cbor::Float(f) if f.is_finite() => Some(*f as i64),
        Cbor::Tag(1, inner) => int(inner),
        _ => None,
    }
}

fn claims(payload: &[u8]) -> Result<Claims, CertError> {
    let value: Cbor = ciborium::from_reader(payload).map_err(|_| CWT)?;
    let Cbor::Map(entries) = value else {
        return Err(CWT);
    };
    let get = |key: i64| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Cbor::Integer(i) if i64::try_from(*i) == Ok(key)))
            .map(|(_, v)| v)
    };
    let hcert = match get(-260) {
        Some(Cbor::Map(h)) => h,
        _ => return Err(CWT),
    };
    let dcc = hcert
        .iter()
        .find(|(k, _)| matches!(k, Cbor::Integer(i) if i64::try_from(*i) == Ok(1)))
        .map(|(_, v)| v.clone())
        .ok_or(CWT)?;
    Ok(Claims {
        iss: get(1).and_then(|v| v.as_text()).map(str::to_owned),
        exp: get(4).and_then(int),
        iat: get(6).and_then(int),
        dcc,
    })
}

fn algorithm(header: &coset::Header) -> Option<Algorithm> {
    use coset::{Algorithm as A, RegisteredLabelWithPrivate::Assigned};
    match header.alg {
        Some(Assigned(iana::Algorithm::ES256)) => Some(Algorithm::Es256),
        Some(Assigned(iana::Algorithm::PS256)) => Some(Algorithm::Ps256),
        Some(A::PrivateUse(_) | A::Text(_) | A::Assigned(_)) | None => None,
    }
}

/// Step 4: the COSE_Sign1 (tag 18, possibly inside CWT tag 61) and its CWT claims.
pub fn parse_cose(bytes: &[u8]) -> Result<Signed, CertError> {
    let mut value: Cbor = ciborium::from_reader(bytes).map_err(|_| COSE)?;
    if let Cbor::Tag(61, inner) = value {
        value = *inner;
    }
    if let Cbor::Tag(18, inner) = value {
        value = *inner;
    }
    let sign1 = CoseSign1::from_cbor_value(value).map_err(|_| COSE)?;
    let kid_of = |h: &coset::Header| <[u8; 8]>::try_from(h.key_id.as_slice()).ok();
    let kid = if sign1.protected.header.key_id.is_empty() {
        kid_of(&sign1.unprotected)
    } else {
        kid_of(&sign1.protected.header)
    };
    let payload = sign1.payload.as_deref().ok_or(CWT)?;
    Ok(Signed {
        algorithm: algorithm(&sign1.protected.header).or_else(|| algorithm(&sign1.unprotected)),
        kid,
        claims: claims(payload)?,
        tbs: sign1.tbs_data(b""),
        signature: sign1.signature.clone(),
    })
}

impl Signed {
    /// Step 5: the signature, with the trusted signer certificate its `kid` names.
    pub fn verify<'a>(&self, trusted: &'a [Certificate]) -> Result<&'a Certificate, CertError> {
        let kid = self.kid.ok_or(NO_KEY)?;
        let algorithm = self.algorithm.ok_or(ALG)?;
        let mut last = NO_KEY;
        for cert in trusted.iter().filter(|c| c.kid == kid) {
            match cert.verify(algorithm, &self.tbs, &self.signature) {
                Ok(()) => return Ok(cert),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The DCC as JSON.
    pub fn dcc_json(&self) -> Result<Value, CertError> {
        cbor_to_json(&self.claims.dcc)
    }

    /// Step 6: valid at `at` (Unix seconds): not before `iat`, not after `exp`.
    pub fn check_time(&self, at: i64) -> Result<(), CertError> {
        if self.claims.iat.is_some_and(|iat| at < iat) {
            return Err(NOT_YET);
        }
        if self.claims.exp.is_some_and(|exp| at > exp) {
            return Err(EXPIRED);
        }
        Ok(())
    }
}

/// The kind of certificate: `v` vaccination, `t` test, `r` recovery (the one group present).
pub fn kind(dcc: &Value) -> Option<char> {
    let present: Vec<char> = ['v', 't', 'r']
        .into_iter()
        .filter(|k| dcc.get(k.to_string()).is_some())
        .collect();
    match present.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Step 7: whether the signer certificate may sign this kind of certificate. A certificate
/// whose extended key usages name HCERT kinds may sign only those; one that names none may sign
/// every kind, unless the extension is critical (RFC 5280: then the certificate is restricted
/// to the usages it names - the EU test data refuses such a certificate, IS/3, and accepts a
/// non-critical one, common/CO15).
pub fn check_key_usage(cert: &Certificate, dcc: &Value) -> Result<(), CertError> {
    let Some(usages) = &cert.key_usages else {
        return Ok(());
    };
    let named: Vec<char> = DCC_KEY_USAGES
        .iter()
        .filter(|(oid, _)| usages.oids.iter().any(|u| u == oid))
        .map(|(_, k)| *k)
        .collect();
    match kind(dcc) {
        _ if named.is_empty() && !usages.critical => Ok(()),
        Some(k) if named.contains(&k) => Ok(()),
        _ => Err(KEY_USAGE),
    }
}

/// Step 8: the DCC JSON schema (1.3.3, combined, from ehn-dcc-development/eu-dcc-schema).
pub fn check_schema(dcc: &Value) -> Result<(), CertError> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("../schema/DCC.combined-schema.json")).ok()?;
        jsonschema::validator_for(&schema).ok()
    });
    match validator {
        Some(v) if v.is_valid(dcc) => Ok(()),
        _ => Err(SCHEMA),
    }
}

/// CBOR to JSON: maps with text keys, arrays, text, numbers, booleans, null; tags are seen
/// through. Anything else (byte strings, non-text keys) is not DCC content.
pub fn cbor_to_json(value: &Cbor) -> Result<Value, CertError> {
    Ok(match value {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => json!(b),
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            match (i64::try_from(i), u64::try_from(i)) {
                (Ok(n), _) => json!(n),
                (_, Ok(n)) => json!(n),
                _ => return Err(CBOR),
            }
        }
        Cbor::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or(CBOR)?,
        Cbor::Text(t) => json!(t),
        Cbor::Array(items) => {
            Value::Array(items.iter().map(cbor_to_json).collect::<Result<_, _>>()?)
        }
        Cbor::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.as_text().ok_or(CBOR)?.to_owned(), cbor_to_json(v)?)))
                .collect::<Result<_, CertError>>()?,
        ),
        Cbor::Tag(_, inner) => cbor_to_json(inner)?,
        _ => return Err(CBOR),
    })
}

/// JSON to CBOR, as the DCC is put in the CWT.
pub fn json_to_cbor(value: &Value) -> Cbor {
    match value {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Cbor::Integer(i.into()),
            (_, Some(u), _) => Cbor::Integer(u.into()),
            (_, _, f) => Cbor::Float(f.unwrap_or_default()),
        },
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => Cbor::Array(items.iter().map(json_to_cbor).collect()),
        Value::Object(map) => Cbor::Map(
            map.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), json_to_cbor(v)))
                .collect(),
        ),
    }
}

/// Reads a DCC's CBOR: the DCC map itself, or the CWT claims that carry it (the test data
/// gives both).
pub fn read_cbor(bytes: &[u8]) -> Result<Cbor, CertError> {
    let value: Cbor = ciborium::from_reader(bytes).map_err(|_| CBOR)?;
    match &value {
        Cbor::Map(entries)
            if entries
                .iter()
                .any(|(k, _)| matches!(k, Cbor::Integer(i) if i128::from(*i) == -260)) =>
        {
            claims(bytes).map(|c| c.dcc).map_err(|_| CBOR)
        }
        Cbor::Map(_) => Ok(value),
        _ => Err(CBOR),
    }
}

/// Every step from the QR text to the COSE structure.
pub fn decode(text: &str) -> Result<Signed, CertError> {
    parse_cose(&inflate(&base45_decode(unprefix(text)?)?)?)
}

/// Signs a DCC: CWT claims, COSE_Sign1 ES256 with the signer's `kid` in the protected header,
/// zlib, Base45, `HC1:`.
pub fn sign(
    dcc: &Value,
    iss: &str,
    iat: i64,
    exp: i64,
    signer: &Issued,
) -> Result<String, CertError> {
    let kid = Certificate::parse(&signer.der)?.kid;
    let claims = Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Text(iss.to_owned())),
        (Cbor::Integer(4.into()), Cbor::Integer(exp.into())),
        (Cbor::Integer(6.into()), Cbor::Integer(iat.into())),
        (
            Cbor::Integer((-260).into()),
            Cbor::Map(vec![(Cbor::Integer(1.into()), json_to_cbor(dcc))]),
        ),
    ]);
    let mut payload = Vec::new();
    ciborium::into_writer(&claims, &mut payload).map_err(|_| ENCODE)?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .key_id(kid.to_vec())
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| signer.key.sign_raw(tbs))
        .build();
    let cose = sign1.to_tagged_vec().map_err(|_| ENCODE)?;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&cose).map_err(|_| ENCODE)?;
    Ok(format!(
        "{PREFIX}{}",
        base45::encode(z.finish().map_err(|_| ENCODE)?)
    ))
}

/// The Luhn mod N check character of a UVCI (over the alphabet `A-Z 0-9 / :`, the whole
/// identifier before `#`), or `None` when it has a character outside that alphabet.
pub fn uvci_check(uvci: &str) -> Option<char> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:";
    let n = ALPHABET.len();
    let mut factor = 2;
    let mut sum = 0;
    for c in uvci.bytes().rev() {
        let code = ALPHABET.iter().position(|&a| a == c)?;
        let addend = factor * code;
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / n + addend % n;
    }
    Some(ALPHABET[(n - sum % n) % n] as char)
}

/// A UVCI for a Japanese certificate: `URN:UVCI:01:JP:<id>#<check>`; `id` in upper case
/// letters and digits.
pub fn uvci(id: &str) -> String {
    let base = format!("URN:UVCI:01:JP:{}", id.to_ascii_uppercase());
    match uvci_check(&base) {
        Some(c) => format!("{base}#{c}"),
        None => base,
    }
}
