//! The certificate issuance center (証明書交付センター): its own process between convenience-store
//! kiosks and the system. It accepts only kiosks it knows (by token), checks the card's
//! signatures on the application, relays it to the system's LGWAN API with its own service
//! credential and returns the PDF. It keeps nothing: no database, no files, no personal data
//! in its log (security events name the kiosk and the client address only).

use openvrs_domain::audit::SecurityEventKind;
use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use openvrs_cert::{card, pki};
use openvrs_crypto::credentials::secret_digest;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::{error::ApiError, http_client};

/// What the center is configured with, read at start and never written.
#[derive(Clone)]
pub struct CenterConfig {
    /// The system's LGWAN base URL, e.g. `https://lgwan.example:8443`.
    pub system: String,
    /// The center's service token for the system (an account with the role `center`).
    pub service_token: String,
    /// Registered kiosks: id and SHA-256 of its token.
    pub kiosks: Vec<(String, [u8; 32])>,
    /// The trusted card issuers.
    pub card_issuers: Vec<pki::Certificate>,
    /// Extra root certificates (DER) to trust for the system's TLS, e.g. a development CA.
    pub system_roots: Vec<Vec<u8>>,
}

impl std::fmt::Debug for CenterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CenterConfig")
            .field("system", &self.system)
            .field("kiosks", &self.kiosks.len())
            .finish_non_exhaustive()
    }
}

/// Reads a kiosk registry: one kiosk per line, `ID SHA256-HEX-OF-TOKEN`; `#` starts a comment.
pub fn parse_kiosks(text: &str) -> Result<Vec<(String, [u8; 32])>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let parsed = line.split_once(' ').and_then(|(id, digest)| {
            let digest: [u8; 32] = hex::decode(digest.trim()).ok()?.try_into().ok()?;
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            id_ok.then(|| (id.to_owned(), digest))
        });
        match parsed {
            Some(k) => out.push(k),
            None => {
                return Err(format!(
                    "{} 行目: 「端末ID SHA-256(16進)」ではありません / line {}: not `ID SHA256-HEX`",
                    n + 1,
                    n + 1
                ));
            }
        }
    }
    Ok(out)
}

/// One registry line for a kiosk and its token.
pub fn kiosk_line(id: &str, token: &str) -> String {
    format!("{id} {}", hex::encode(secret_digest(token)))
}

/// What a kiosk sends: the application its card reader had the card sign.
#[derive(Debug, Deserialize)]
pub struct KioskRequest {
    pub application: String,
}

fn security_event(kind: SecurityEventKind, kiosk: Option<&str>, client: &SocketAddr) {
    tracing::warn!(kind = kind.code(), kiosk, client = %client.ip(), "security event");
}

fn kiosk_of(config: &CenterConfig, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let digest = secret_digest(token);
    // Comparing digests of the token: the time taken tells nothing about the token.
    config
        .kiosks
        .iter()
        .find(|(_, d)| *d == digest)
        .map(|(id, _)| id.clone())
}

async fn apply(
    State(config): State<Arc<CenterConfig>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(input): Json<KioskRequest>,
) -> Result<Response, ApiError> {
    let Some(kiosk) = kiosk_of(&config, &headers) else {
        security_event(SecurityEventKind::UnknownKiosk, None, &client);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "kiosk.unknown",
            "登録されていない端末です",
            "not a registered kiosk",
        ));
    };
    if let Err(e) = card::open_application(&input.application, &config.card_issuers) {
        if e.kind != "card.application" {
            security_event(SecurityEventKind::ForgedCard, Some(&kiosk), &client);
        }
        return Err(ApiError::new(StatusCode::BAD_REQUEST, e.kind, e.ja, e.en));
    }
    let url = format!("{}/api/center/certificates", config.system);
    let body = json!({ "kiosk": kiosk, "application": input.application }).to_string();
    let c = config.clone();
    let answer = tokio::task::spawn_blocking(move || {
        http_client::post(&url, &c.service_token, &body, &c.system_roots)
    })
    .await
    .map_err(|_| unavailable())?
    .map_err(|e| {
        tracing::warn!(error = %e, "the system cannot be reached");
        unavailable()
    })?;
    // The system's answer goes back as it is: the PDF, or its bilingual refusal.
    let mut r = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
        Bytes::from(answer.body),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&answer.content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "system.unavailable",
        "システムに接続できません",
        "the system cannot be reached",
    )
}

/// The center's routes.
pub fn router(config: CenterConfig) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/kiosk/certificates",
            post(apply).layer(DefaultBodyLimit::max(64 * 1024)),
        )
        .with_state(Arc::new(config))
}

/// Serves the center on `listener` (plain HTTP, or TLS with `tls`) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    config: CenterConfig,
    tls: Option<crate::TlsPem>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::serve_routers(vec![(listener, router(config))], tls, shutdown).await
}
