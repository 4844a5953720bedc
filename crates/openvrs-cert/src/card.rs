//! What a My Number card's 券面事項入力補助AP returns after the PIN: My Number, name, address,
//! date of birth and sex, signed by the card issuer. Here the issuer is a development key pair
//! standing in for J-LIS, and the document is `{"data": {...}, "sig": base64url(ES256 raw r||s
//! over the RFC 8785 JSON of data)}`. The system trusts the data only when the signature verifies
//! with a configured card-issuer certificate.
//!
//! The card also holds an authentication key (as the real card's 利用者証明用 key) that signs
//! each application after the PIN, so that captured card data alone asks for nothing: an
//! [`application`] is the card data and the request, signed by the key the card data names.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};

use crate::{
    CertError,
    pki::{Algorithm, Certificate, Issued},
    shc::SigningKeyPair,
};

const FORMAT: CertError = CertError::new(
    "card.format",
    "カードの読み取りデータの形式ではありません",
    "not the data read from a card",
);
const FORGED: CertError = CertError::new(
    "card.signature",
    "カード発行者の署名が正しくありません(改ざんまたは未登録の発行者)",
    "the card issuer's signature does not verify (altered data or an unknown issuer)",
);
const APPLICATION: CertError = CertError::new(
    "card.application",
    "申請データの形式ではありません",
    "not an application made with a card",
);
const HOLDER: CertError = CertError::new(
    "card.holder",
    "カードによる申請の署名が正しくありません(改ざんされた申請)",
    "the card's signature on the application does not verify (an altered application)",
);
const ENCODE: CertError = CertError::new(
    "card.encode",
    "カードのデータを作成できません",
    "the card data cannot be made",
);

/// The card's face data (券面事項).
#[derive(Clone, PartialEq, Eq)]
pub struct CardData {
    pub my_number: String,
    pub name: String,
    pub address: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// ISO 5218 code: `1` male, `2` female.
    pub sex: String,
    /// The card's authentication public key: base64url of the uncompressed P-256 point.
    pub auth_key: String,
}

impl std::fmt::Debug for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardData(..)")
    }
}

fn data_json(d: &CardData) -> Value {
    json!({
        "my_number": d.my_number, "name": d.name, "address": d.address,
        "birth_date": d.birth_date, "sex": d.sex, "auth_key": d.auth_key,
    })
}

/// The signed document the card returns, signed by its issuer.
pub fn sign(data: &CardData, issuer: &Issued) -> Result<String, CertError> {
    let data = data_json(data);
    let signature = issuer
        .key
        .sign_raw(&serde_jcs::to_vec(&data).map_err(|_| ENCODE)?);
    serde_json::to_string(&json!({ "data": data, "sig": B64.encode(signature) }))
        .map_err(|_| ENCODE)
}

/// The card data, once the signature verifies with one of the trusted issuer certificates.
pub fn verify(signed: &str, issuers: &[Certificate]) -> Result<CardData, CertError> {
    if signed.len() > 16 * 1024 {
        return Err(FORMAT);
    }
    let doc: Value = serde_json::from_str(signed).map_err(|_| FORMAT)?;
    let data = doc.get("data").filter(|d| d.is_object()).ok_or(FORMAT)?;
    let signature = doc
        .get("sig")
        .and_then(Value::as_str)
        .and_then(|s| B64.decode(s).ok())
        .ok_or(FORMAT)?;
    let message = serde_jcs::to_vec(data).map_err(|_| FORMAT)?;
    if !issuers
        .iter()
        .any(|c| c.verify(Algorithm::Es256, &message, &signature).is_ok())
    {
        return Err(FORGED);
    }
    let field = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(FORMAT)
    };
    Ok(CardData {
        my_number: field("my_number")?,
        name: field("name")?,
        address: field("address")?,
        birth_date: field("birth_date")?,
        sex: field("sex")?,
        auth_key: field("auth_key")?,
    })
}

/// The text form of a card's authentication public key, as [`CardData::auth_key`] holds it.
pub fn auth_key(key: &SigningKeyPair) -> String {
    B64.encode(key.public_point())
}

/// A verified application: who (the card's data) and what (the request, as the holder signed
/// it), and a digest of the signed application that tells a replay from a new one.
#[derive(Debug, Clone)]
pub struct Application {
    pub card: CardData,
    pub request: Value,
    pub digest: [u8; 32],
}

/// The message an application's signature covers: the RFC 8785 JSON of the card data as read
/// and the request.
fn application_message(card: &str, request: &Value) -> Result<Vec<u8>, CertError> {
    serde_jcs::to_vec(&json!({ "card": card, "request": request })).map_err(|_| ENCODE)
}

/// An application: `signed` card data and the `request` (a JSON object), signed with the
/// card's authentication key `auth` after the PIN.
pub fn application(
    signed: &str,
    request: &Value,
    auth: &SigningKeyPair,
) -> Result<String, CertError> {
    if !request.is_object() {
        return Err(ENCODE);
    }
    let signature = auth.sign_raw(&application_message(signed, request)?);
    serde_json::to_string(
        &json!({ "card": signed, "request": request, "sig": B64.encode(signature) }),
    )
    .map_err(|_| ENCODE)
}

/// Opens an application: the card data must carry a trusted issuer's signature and the
/// application the signature of the key that card data names.
pub fn open_application(text: &str, issuers: &[Certificate]) -> Result<Application, CertError> {
    if text.len() > 32 * 1024 {
        return Err(APPLICATION);
    }
    let doc: Value = serde_json::from_str(text).map_err(|_| APPLICATION)?;
    let (Some(signed), Some(request), Some(signature)) = (
        doc.get("card").and_then(Value::as_str),
        doc.get("request").filter(|r| r.is_object()),
        doc.get("sig")
            .and_then(Value::as_str)
            .and_then(|s| B64.decode(s).ok()),
    ) else {
        return Err(APPLICATION);
    };
    let card = verify(signed, issuers)?;
    let point = B64.decode(&card.auth_key).map_err(|_| FORMAT)?;
    let message = application_message(signed, request)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(&message, &signature)
        .map_err(|_| HOLDER)?;
    Ok(Application {
        card,
        request: request.clone(),
        digest: ring::digest::digest(&ring::digest::SHA256, &message)
            .as_ref()
            .try_into()
            .map_err(|_| ENCODE)?,
    })
}
