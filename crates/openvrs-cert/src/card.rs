//! What a My Number card's 券面事項入力補助AP returns after the PIN: My Number, name, address,
//! date of birth and sex, signed by the card issuer. Here the issuer is a development key pair
//! standing in for J-LIS, and the document is `{"data": {...}, "sig": base64url(ES256 raw r||s
//! over the RFC 8785 JSON of data)}`. The system trusts the data only when the signature verifies
//! with a configured card-issuer certificate.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};

use crate::{
    CertError,
    pki::{Algorithm, Certificate, Issued},
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
}

impl std::fmt::Debug for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardData(..)")
    }
}

fn data_json(d: &CardData) -> Value {
    json!({
        "my_number": d.my_number, "name": d.name, "address": d.address,
        "birth_date": d.birth_date, "sex": d.sex,
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
    })
}
