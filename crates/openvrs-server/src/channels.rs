//! Certificates a resident asks for with their My Number card. Internet: the resident app,
//! which sends its application sealed to the intake key and receives its certificates sealed
//! to a key of its own, so the internet listener passes ciphertext only. LGWAN: the issuance
//! center relays a kiosk's application and receives the PDF; staff turn kiosk issuance on or
//! off for their municipality. The rules are in `openvrs_service::application`.

use std::net::SocketAddr;

use axum::{
    Extension, Json,
    extract::{ConnectInfo, Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use openvrs_domain::audit::{Actor, Role, Zone};
use openvrs_service::{
    application::{self as app, Refusal},
    certificate::{CertificateError, Signers},
};
use serde::Deserialize;

use crate::{
    AppState,
    api::actor,
    auth::{Principal, Tenant},
    error::ApiError,
};

fn now_seconds(state: &AppState) -> i64 {
    state.now() / 1_000_000
}

/// A refusal as the client reads it; an attack also becomes a security event.
async fn refused(
    state: &AppState,
    r: Refusal,
    user: Option<String>,
    client: Option<String>,
) -> ApiError {
    if let Some(kind) = r.attack() {
        crate::auth::security_event(state, kind, None, user, client, r.code().to_owned()).await;
    }
    let status = match r {
        Refusal::Certificate(e @ (CertificateError::Store(_) | CertificateError::NoKey(_))) => {
            return e.into();
        }
        Refusal::Card(_) | Refusal::Request(_) => StatusCode::BAD_REQUEST,
        Refusal::Stale | Refusal::Replay(_) => StatusCode::CONFLICT,
        Refusal::NoKiosk => StatusCode::FORBIDDEN,
        Refusal::NotRegistered => StatusCode::NOT_FOUND,
        Refusal::Certificate(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let message = r.to_string();
    let (ja, en) = message.split_once(" / ").unwrap_or((&message, &message));
    ApiError::new(status, r.code(), ja, en)
}

fn client(from: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<String> {
    from.map(|Extension(ConnectInfo(a))| a.ip().to_string())
}

/// The intake key the resident app seals its application to.
// `openvrs_service::application::intake_public` writes it: this type only describes it.
#[derive(Debug, utoipa::ToSchema)]
pub struct IntakeKey {
    /// The key's id, to send back with the sealed application.
    pub kid: String,
    /// The public key, base64url.
    pub key: String,
    /// The HPKE suite (RFC 9180) to seal with.
    pub suite: String,
}

/// The answer to the resident app: the certificates (id, format, payload and QR code of each)
/// sealed to the app's reply key, so that only the app reads them.
// `openvrs_service::application::seal_answer` writes it: this type only describes it.
#[derive(Debug, utoipa::ToSchema)]
pub struct SealedAnswer {
    /// base64url of the HPKE envelope.
    pub sealed: String,
}

/// `GET /.well-known/openvrs-app-key.json`: the key the app seals its application to.
pub async fn intake_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let key = tokio::task::spawn_blocking(move || app::intake_public(&*store))
        .await
        .map_err(|_| ApiError::from(openvrs_store::StoreError::Corrupt("worker failed")))??;
    let mut r = Json(key).into_response();
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(r)
}

/// What the resident app sends: its application sealed to the intake key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SealedApplication {
    /// The intake key's id, from `/.well-known/openvrs-app-key.json`.
    pub kid: String,
    /// base64url of the HPKE envelope (encapsulated key, then ciphertext).
    pub sealed: String,
}

/// `POST /api/app/certificates`: the resident app's sealed application (`{kid, sealed}`); the
/// answer is `{sealed}`, the certificates sealed to the app's reply key. Nothing is kept but
/// the issuance records.
pub async fn app_apply(
    State(state): State<AppState>,
    from: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(body): Json<SealedApplication>,
) -> Result<Response, ApiError> {
    let client = client(from);
    let store = state.store.clone();
    let (issuer, trusted) = (state.issuer.clone(), state.card_issuers.clone());
    let metrics = state.metrics.clone();
    let now = now_seconds(&state);
    let actor = Actor {
        user: "resident-app".into(),
        role: Role::Resident,
        zone: Zone::Internet,
    };
    let result = tokio::task::spawn_blocking(move || {
        let (application, reply_key) = app::open_sealed(&*store, &body.kid, &body.sealed)?;
        let opened = app::open(&application, &trusted, now)?;
        let signers = Signers::load(&*store)?;
        let issued = app::issue_app(&*store, &signers, &issuer, &opened, &actor)?;
        for c in &issued {
            metrics.certificate(c.record.format.code(), "app");
        }
        app::seal_answer(&reply_key, &app::answer(&issued)?)
    })
    .await
    .map_err(|_| ApiError::from(openvrs_store::StoreError::Corrupt("worker failed")))?;
    match result {
        Ok(sealed) => Ok((StatusCode::CREATED, Json(sealed)).into_response()),
        Err(r) => Err(refused(&state, r, None, client).await),
    }
}

/// A kiosk's application as the issuance center relays it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct KioskApplication {
    /// The kiosk's id as registered with the center.
    pub kiosk: String,
    /// The application the card signed at the kiosk (card data and request).
    pub application: String,
}

/// `POST /api/center/certificates`: the issuance center relays a kiosk's application; the
/// answer is the paper certificate (`application/pdf`).
pub async fn kiosk_apply(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(input): Json<KioskApplication>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let (issuer, trusted) = (state.issuer.clone(), state.card_issuers.clone());
    let now = now_seconds(&state);
    let actor = actor(&p);
    let result = tokio::task::spawn_blocking(move || {
        let opened = app::open(&input.application, &trusted, now)?;
        let signers = Signers::load(&*store)?;
        app::issue_kiosk(&*store, &signers, &issuer, &opened, &actor)
    })
    .await
    .map_err(|_| ApiError::from(openvrs_store::StoreError::Corrupt("worker failed")))?;
    match result {
        Ok(c) => {
            state.metrics.certificate("pdf", "kiosk");
            let mut r = c.payload.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok((StatusCode::CREATED, r).into_response())
        }
        Err(r) => Err(refused(&state, r, Some(p.account.id.to_string()), None).await),
    }
}

/// Whether the municipality offers certificates at kiosks.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct KioskSetting {
    pub enabled: bool,
}

/// `PUT /api/municipalities/{m}/kiosk`: staff turn kiosk issuance on or off (audited).
pub async fn set_kiosk(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(m): Tenant,
    Json(input): Json<KioskSetting>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let actor = actor(&p);
    crate::blocking(move || store.set_kiosk(m, input.enabled, &actor)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The reference resident app page, its script and style, and the vendored HPKE and Argon2id
/// (see `assets/app/THIRD-PARTY-LICENSES.txt`).
const PAGE: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../assets/app/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app/app.js"),
    ),
    (
        "hpke.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app/hpke.js"),
    ),
    (
        "argon2.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app/argon2.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app/style.css"),
    ),
];

/// Only the page's own files; WebAssembly for Argon2id; no framing.
const PAGE_HEADERS: [(header::HeaderName, &str); 3] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// `GET /app/` and its files.
pub async fn page() -> Response {
    page_file(Path(String::new())).await
}

pub async fn page_file(Path(file): Path<String>) -> Response {
    crate::venue::asset(PAGE, &PAGE_HEADERS, &file)
}
