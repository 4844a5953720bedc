//! Certificates a resident asks for with their own My Number card: through the resident app
//! (electronic, internet) and at a convenience-store kiosk (paper, through the issuance center).
//!
//! The app or kiosk reads the card with the holder's PIN and has the card sign the request
//! ([`openvrs_cert::card::application`]). Here the card data must carry the card issuer's
//! signature, the application the card's own, it must be recent, and it must be new: the
//! issuance record keeps a digest of the application, and the same application twice is a
//! replay. The person is found by My Number, through the keyed index, in the municipality
//! the resident chose, and only there. Nothing but the issuance record is kept.

use openvrs_cert::{CertError, card, pki};
use openvrs_crypto::envelope::{self, Receiver};
use openvrs_domain::{
    Invalid,
    audit::Actor,
    certificate::{Channel, Format, Kind, Passport},
    ids::{MunicipalityCode, MyNumber},
};
use openvrs_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::certificate::{self as certs, Certificate, CertificateError, Issuer, Signers};

/// Seconds an application stays valid after the card signed it (and before: clock skew).
pub const MAX_AGE: i64 = 300;

/// Why nothing was issued. Nothing was recorded in any case.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not card data, altered, forged, or signed by another card.
    #[error("{0}")]
    Card(CertError),
    #[error(
        "申請の有効期限が切れています(もう一度カードを読み取ってください) / the application has expired: read the card again"
    )]
    Stale,
    #[error("{0}")]
    Replay(&'static str),
    #[error("{0}")]
    Request(Invalid),
    #[error(
        "この市区町村はコンビニ交付を行っていません / this municipality does not issue certificates at kiosks"
    )]
    NoKiosk,
    #[error(
        "選んだ市区町村にこのカードの方の記録がありません / the card holder has no record in the chosen municipality"
    )]
    NotRegistered,
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

impl Refusal {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Card(e) => e.kind,
            Refusal::Stale => "application.expired",
            Refusal::Replay(_) => "application.replay",
            Refusal::Request(e) => e.kind,
            Refusal::NoKiosk => "kiosk.disabled",
            Refusal::NotRegistered => "application.not_registered",
            Refusal::Certificate(CertificateError::Refused(e)) => e.kind,
            Refusal::Certificate(_) => "certificate.failed",
        }
    }

    /// Whether it is an attack, to be raised as a security event: forged or altered card
    /// data, an application signed by another card, a replay.
    pub fn attack(&self) -> Option<openvrs_domain::audit::SecurityEventKind> {
        use openvrs_domain::audit::SecurityEventKind;
        match self {
            Refusal::Card(e) if e.kind != "card.application" => Some(SecurityEventKind::ForgedCard),
            Refusal::Replay(_) => Some(SecurityEventKind::ReplayedApplication),
            _ => None,
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) if m == openvrs_store::REPLAYED_APPLICATION => {
                Refusal::Replay(m)
            }
            e => Refusal::Certificate(e.into()),
        }
    }
}

/// What a resident asks for.
#[derive(Debug, Clone)]
pub struct Ask {
    pub municipality: MunicipalityCode,
    pub kind: Kind,
    pub passport: Option<Passport>,
}

/// The request the card signs: what is asked, a fresh nonce, and the time (Unix seconds).
pub fn request(ask: &Ask, now: i64) -> Value {
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .expect("the system's random generator works");
    json!({
        "municipality": ask.municipality.to_string(),
        "kind": ask.kind.code(),
        "passport": ask.passport.as_ref().map(|p| json!({
            "name": p.full_name(), "nationality": p.nationality, "number": p.number,
        })),
        "nonce": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, nonce),
        "time": now,
    })
}

const REQUEST: Invalid = Invalid::new(
    "application.request",
    "申請の内容が不正です",
    "the application's request is malformed",
);

/// A verified application.
#[derive(Debug, Clone)]
pub struct Opened {
    pub ask: Ask,
    my_number: MyNumber,
    /// Hex of the application's digest, as the issuance record keeps it.
    digest: String,
}

/// Verifies an application (card issuer's signature, the card's signature, age) and reads its
/// request. `issuers` are the trusted card-issuer certificates; `now` is Unix seconds.
pub fn open(text: &str, issuers: &[pki::Certificate], now: i64) -> Result<Opened, Refusal> {
    let app = card::open_application(text, issuers).map_err(Refusal::Card)?;
    let r = &app.request;
    let time = r["time"].as_i64().ok_or(Refusal::Request(REQUEST))?;
    if (now - time).abs() > MAX_AGE {
        return Err(Refusal::Stale);
    }
    let text = |k: &str| r[k].as_str().ok_or(Refusal::Request(REQUEST));
    let municipality = MunicipalityCode::parse(text("municipality")?).map_err(Refusal::Request)?;
    let kind = Kind::from_code(text("kind")?).ok_or(Refusal::Request(REQUEST))?;
    let passport = match &r["passport"] {
        Value::Null => None,
        p => Some(
            Passport::parse(
                p["name"].as_str().unwrap_or_default(),
                p["nationality"].as_str().unwrap_or_default(),
                p["number"].as_str().unwrap_or_default(),
            )
            .map_err(Refusal::Request)?,
        ),
    };
    let my_number = MyNumber::parse(&app.card.my_number).map_err(Refusal::Request)?;
    Ok(Opened {
        ask: Ask {
            municipality,
            kind,
            passport,
        },
        my_number,
        digest: app.digest.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Issues what an application asks for, in `format`, recorded with `channel` and the
/// application's digest (`tag` tells apart the certificates one application gives).
fn issue_one(
    store: &dyn Store,
    signers: &Signers,
    issuer: &Issuer,
    opened: &Opened,
    (format, channel, tag): (Format, Channel, &str),
    actor: &Actor,
) -> Result<Certificate, Refusal> {
    let m = opened.ask.municipality;
    let person = store
        .person_by_my_number(m, &opened.my_number, actor)?
        .ok_or(Refusal::NotRegistered)?;
    let request = certs::Request {
        address: person.address_number,
        kind: opened.ask.kind,
        format,
        passport: opened.ask.passport.clone(),
        channel,
        application: Some(format!("{}{tag}", opened.digest)),
    };
    match certs::issue(store, signers, issuer, m, &request, actor) {
        Err(CertificateError::Store(e)) => Err(e.into()),
        other => Ok(other?),
    }
}

/// The resident app: the SMART Health Card, and for an overseas certificate the ICAO VDS-NC
/// first (each recorded with channel `app`).
pub fn issue_app(
    store: &dyn Store,
    signers: &Signers,
    issuer: &Issuer,
    opened: &Opened,
    actor: &Actor,
) -> Result<Vec<Certificate>, Refusal> {
    let mut out = Vec::new();
    if opened.ask.kind == Kind::Overseas {
        let vds = (Format::Vds, Channel::App, "/vds");
        out.push(issue_one(store, signers, issuer, opened, vds, actor)?);
    }
    let shc = (Format::Shc, Channel::App, "");
    out.insert(0, issue_one(store, signers, issuer, opened, shc, actor)?);
    Ok(out)
}

/// A kiosk, through the issuance center: the paper certificate (PDF), for a municipality that
/// offers kiosk issuance (recorded with channel `kiosk`).
pub fn issue_kiosk(
    store: &dyn Store,
    signers: &Signers,
    issuer: &Issuer,
    opened: &Opened,
    actor: &Actor,
) -> Result<Certificate, Refusal> {
    let offers = store
        .municipalities()?
        .iter()
        .any(|t| t.code == opened.ask.municipality && t.kiosk);
    if !offers {
        return Err(Refusal::NoKiosk);
    }
    let pdf = (Format::Pdf, Channel::Kiosk, "");
    issue_one(store, signers, issuer, opened, pdf, actor)
}

/// The kind of the intake key in the store: the key the resident app seals its applications to.
pub const INTAKE: &str = "intake";
/// What an envelope is for, bound into its encryption.
const TO_SYSTEM: &[u8] = b"openvrs resident app: application v1";
const TO_APP: &[u8] = b"openvrs resident app: answer v1";

const SEALED: Invalid = Invalid::new(
    "application.sealed",
    "暗号化された申請を開けません(鍵が更新された場合はもう一度申請してください)",
    "the sealed application cannot be opened (if the key was renewed, apply again)",
);

fn b64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, text).ok()
}

/// Makes the intake key if there is none (part of `openvrs keys init`).
pub fn init_intake(
    store: &dyn Store,
    actor: &Actor,
) -> Result<Option<certs::NewKey>, CertificateError> {
    if store.active_signing_key(INTAKE)?.is_some() {
        return Ok(None);
    }
    rotate_intake(store, actor).map(Some)
}

/// A new intake key; applications sealed to the old one are refused from now on.
pub fn rotate_intake(store: &dyn Store, actor: &Actor) -> Result<certs::NewKey, CertificateError> {
    let key = Receiver::generate();
    let public = key.public();
    let kid = b64(&ring::digest::digest(&ring::digest::SHA256, &public).as_ref()[..12]);
    store.add_signing_key(INTAKE, &kid, &b64(&public), &key.to_bytes(), actor)?;
    Ok(certs::NewKey { kind: INTAKE, kid })
}

/// The intake key as the app fetches it (`/.well-known/openvrs-app-key.json`).
pub fn intake_public(store: &dyn Store) -> Result<Value, CertificateError> {
    let key = store
        .signing_keys(INTAKE)?
        .into_iter()
        .next()
        .ok_or(CertificateError::NoKey(INTAKE))?;
    Ok(json!({
        "kid": key.kid, "key": key.public_part,
        "suite": "HPKE base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (RFC 9180)",
    }))
}

/// The app's side: seals `application` to the published intake key `intake`, with a fresh key
/// for the answer. Returns the body to send and the key that opens the answer.
pub fn seal_application(intake: &Value, application: &str) -> Result<(Value, Receiver), Refusal> {
    let key = intake["key"]
        .as_str()
        .and_then(unb64)
        .ok_or(Refusal::Request(SEALED))?;
    let reply = Receiver::generate();
    let inner = json!({ "application": application, "reply_key": b64(&reply.public()) });
    let sealed = envelope::seal(&key, TO_SYSTEM, inner.to_string().as_bytes())
        .map_err(|_| Refusal::Request(SEALED))?;
    Ok((
        json!({ "kid": intake["kid"], "sealed": b64(&sealed) }),
        reply,
    ))
}

/// The system's side: opens what the app sent with the active intake key; gives the
/// application and the key to seal the answer to.
pub fn open_sealed(
    store: &dyn Store,
    kid: &str,
    sealed: &str,
) -> Result<(String, Vec<u8>), Refusal> {
    let sealed_kid = kid;
    let (kid, secret) = store
        .active_signing_key(INTAKE)?
        .ok_or(Refusal::Certificate(CertificateError::NoKey(INTAKE)))?;
    if sealed_kid != kid {
        return Err(Refusal::Request(SEALED));
    }
    let sealed = Some(sealed)
        .filter(|s| s.len() <= 64 * 1024)
        .and_then(unb64)
        .ok_or(Refusal::Request(SEALED))?;
    let key = Receiver::from_bytes(&secret).map_err(|_| Refusal::Request(SEALED))?;
    let inner = key
        .open(&sealed, TO_SYSTEM)
        .map_err(|_| Refusal::Request(SEALED))?;
    let inner: Value = serde_json::from_slice(&inner).map_err(|_| Refusal::Request(SEALED))?;
    match (
        inner["application"].as_str(),
        inner["reply_key"].as_str().and_then(unb64),
    ) {
        (Some(a), Some(k)) => Ok((a.to_owned(), k)),
        _ => Err(Refusal::Request(SEALED)),
    }
}

/// The system's answer, sealed to the app's reply key.
pub fn seal_answer(reply_key: &[u8], answer: &Value) -> Result<Value, Refusal> {
    let sealed = envelope::seal(reply_key, TO_APP, answer.to_string().as_bytes())
        .map_err(|_| Refusal::Request(SEALED))?;
    Ok(json!({ "sealed": b64(&sealed) }))
}

/// The app's side: opens the answer.
pub fn open_answer(reply: &Receiver, body: &Value) -> Result<Value, Refusal> {
    let sealed = body["sealed"]
        .as_str()
        .and_then(unb64)
        .ok_or(Refusal::Request(SEALED))?;
    let plain = reply
        .open(&sealed, TO_APP)
        .map_err(|_| Refusal::Request(SEALED))?;
    serde_json::from_slice(&plain).map_err(|_| Refusal::Request(SEALED))
}

/// What the app receives for each certificate: its record's id and format, the payload (the
/// `.smart-health-card` file or the VDS-NC JSON) and the QR image (PNG, base64).
pub fn answer(certificates: &[Certificate]) -> Result<Value, Refusal> {
    let mut out = Vec::new();
    for c in certificates {
        out.push(json!({
            "id": c.record.id, "format": c.record.format.code(),
            "payload": String::from_utf8_lossy(&c.payload),
            "qr_png": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c.qr_png()?),
        }));
    }
    Ok(json!({ "certificates": out }))
}
