//! ICAO VDS-NC (Visible Digital Seal for non-constrained environments), the overseas
//! certificate: `{"data": {"hdr", "msg"}, "sig": {"alg", "cer", "sigvl"}}`, the signature
//! (ES256, raw r || s) over the RFC 8785 canonical JSON of `data`, the signer's certificate
//! embedded and chained by the verifier to a trusted CSCA.

use base64::{
    Engine as _,
    alphabet::URL_SAFE,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use serde_json::{Value, json};

use crate::{
    CertError,
    pki::{Algorithm, Certificate, Issued},
};

/// base64url, with or without padding (real seals carry `==`).
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// The largest seal accepted (a QR holds under 3 KB).
const MAX_TEXT: usize = 64 * 1024;

const FORMAT: CertError = CertError::new(
    "vds.format",
    "VDS-NC の形式ではありません(data・sig が必要)",
    "not a VDS-NC document (data and sig are required)",
);
const CONTENT: CertError = CertError::new(
    "vds.content",
    "VDS-NC の内容が不正です(icao.vacc の必須項目が欠けています)",
    "the VDS-NC content is invalid (a required icao.vacc field is missing)",
);
const ALG: CertError = CertError::new(
    "vds.algorithm",
    "署名アルゴリズムが未対応です(ES256)",
    "unsupported signature algorithm (ES256)",
);
const CHAIN: CertError = CertError::new(
    "vds.chain",
    "署名者証明書が信頼する CSCA から発行されていません",
    "the signer certificate was not issued by a trusted CSCA",
);
const NO_TRUST: CertError = CertError::new(
    "vds.no_trust",
    "信頼する CSCA が与えられていません(--trust)",
    "no trusted CSCA given (--trust)",
);
const VALIDITY: CertError = CertError::new(
    "vds.validity",
    "署名者証明書または CSCA の有効期間外です",
    "outside the validity of the signer certificate or its CSCA",
);
const ENCODE: CertError = CertError::new(
    "vds.encode",
    "VDS-NC を作成できません",
    "the VDS-NC cannot be made",
);

/// One dose as the seal lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dose {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub seq: u32,
    /// ISO 3166-1 alpha-3.
    pub country: String,
    pub administered_by: String,
    pub lot: String,
}

/// The doses of one product (`ve` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// ICD-11 vaccine code, e.g. `XM0GQ8`.
    pub des: String,
    /// Product name, e.g. `COMIRNATY`.
    pub name: String,
    /// Disease, ICD-11 (`RA01.0`).
    pub disease: String,
    pub doses: Vec<Dose>,
}

/// What an overseas certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vaccination {
    pub issuing_country: String,
    pub uvci: String,
    /// Romanized, passport style: `FAMILY GIVEN`.
    pub name: String,
    pub birth_date: String,
    /// `M`, `F` or `X`, when given.
    pub sex: Option<String>,
    pub passport: String,
    pub products: Vec<Product>,
}

/// The `data` of a vaccination seal.
pub fn document(v: &Vaccination) -> Value {
    let mut pid = json!({ "n": v.name, "dob": v.birth_date, "i": v.passport });
    if let Some(sex) = &v.sex {
        pid["sex"] = json!(sex);
    }
    let ve: Vec<Value> = v
        .products
        .iter()
        .map(|p| {
            json!({
                "des": p.des, "nam": p.name, "dis": p.disease,
                "vd": p.doses.iter().map(|d| json!({
                    "dvc": d.date, "seq": d.seq, "ctr": d.country, "adm": d.administered_by, "lot": d.lot,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "hdr": { "t": "icao.vacc", "v": 1, "is": v.issuing_country },
        "msg": { "uvci": v.uvci, "pid": pid, "ve": ve },
    })
}

fn canonical(data: &Value) -> Result<Vec<u8>, CertError> {
    serde_jcs::to_vec(data).map_err(|_| ENCODE)
}

/// Signs `data` with the signer (whose certificate is embedded); the seal as compact JSON.
pub fn sign(data: &Value, signer: &Issued) -> Result<String, CertError> {
    let signature = signer.key.sign_raw(&canonical(data)?);
    let seal = json!({
        "data": data,
        "sig": { "alg": "ES256", "cer": B64.encode(&signer.der), "sigvl": B64.encode(signature) },
    });
    serde_json::to_string(&seal).map_err(|_| ENCODE)
}

/// A seal taken apart, before its signature and chain are checked.
#[derive(Debug, Clone)]
pub struct Seal {
    pub data: Value,
    pub signer: Certificate,
    algorithm: Option<Algorithm>,
    signature: Vec<u8>,
}

fn require_text(v: &Value, path: &[&str]) -> Result<(), CertError> {
    let mut at = v;
    for p in path {
        at = at.get(p).ok_or(CONTENT)?;
    }
    match at {
        Value::String(s) if !s.is_empty() => Ok(()),
        Value::Number(_) => Ok(()),
        _ => Err(CONTENT),
    }
}

/// Reads a seal: its structure, the required `icao.vacc` fields and the embedded certificate.
/// The seal may also come as a JSON array holding that one document, as Japan's certificate
/// app writes it into its QR code.
pub fn parse(text: &str) -> Result<Seal, CertError> {
    if text.len() > MAX_TEXT {
        return Err(FORMAT);
    }
    let doc: Value = match serde_json::from_str(text.trim()).map_err(|_| FORMAT)? {
        Value::Array(mut one) if one.len() == 1 => one.remove(0),
        doc => doc,
    };
    let data = doc.get("data").filter(|d| d.is_object()).ok_or(FORMAT)?;
    let sig = doc.get("sig").filter(|s| s.is_object()).ok_or(FORMAT)?;
    let text_of = |k: &str| sig.get(k).and_then(Value::as_str).ok_or(FORMAT);
    let der = B64.decode(text_of("cer")?).map_err(|_| FORMAT)?;
    let signature = B64.decode(text_of("sigvl")?).map_err(|_| FORMAT)?;
    let algorithm = match text_of("alg")? {
        "ES256" => Some(Algorithm::Es256),
        _ => None,
    };
    if data.pointer("/hdr/t").and_then(Value::as_str) != Some("icao.vacc")
        || data.pointer("/hdr/v").and_then(Value::as_i64) != Some(1)
    {
        return Err(CONTENT);
    }
    require_text(data, &["hdr", "is"])?;
    require_text(data, &["msg", "uvci"])?;
    require_text(data, &["msg", "pid", "n"])?;
    let ve = data
        .pointer("/msg/ve")
        .and_then(Value::as_array)
        .filter(|ve| !ve.is_empty())
        .ok_or(CONTENT)?;
    for entry in ve {
        require_text(entry, &["des"])?;
        require_text(entry, &["nam"])?;
        let vd = entry
            .get("vd")
            .and_then(Value::as_array)
            .filter(|vd| !vd.is_empty())
            .ok_or(CONTENT)?;
        for dose in vd {
            for field in ["dvc", "seq", "ctr", "lot"] {
                require_text(dose, &[field])?;
            }
        }
    }
    Ok(Seal {
        data: data.clone(),
        signer: Certificate::parse(&der)?,
        algorithm,
        signature,
    })
}

impl Seal {
    /// The signature over the canonical JSON of `data`, with the embedded signer's key.
    pub fn verify_signature(&self) -> Result<(), CertError> {
        let algorithm = self.algorithm.ok_or(ALG)?;
        self.signer
            .verify(algorithm, &canonical(&self.data)?, &self.signature)
    }

    /// The trusted CSCA that issued the signer certificate.
    pub fn verify_chain<'a>(&self, cscas: &'a [Certificate]) -> Result<&'a Certificate, CertError> {
        if cscas.is_empty() {
            return Err(NO_TRUST);
        }
        cscas
            .iter()
            .find(|ca| ca.subject == self.signer.issuer && self.signer.is_signed_by(ca))
            .ok_or(CHAIN)
    }

    /// Both the signer certificate and its CSCA are valid at `at` (Unix seconds).
    pub fn check_validity(&self, csca: &Certificate, at: i64) -> Result<(), CertError> {
        if self.signer.valid_at(at) && csca.valid_at(at) {
            Ok(())
        } else {
            Err(VALIDITY)
        }
    }
}
