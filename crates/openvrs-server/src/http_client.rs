//! The one HTTP client: the issuance center calling the system, and the command line's resident
//! app and kiosk calling the system and the center - the calls themselves, their statuses and
//! their refusals, so that the console only reads and writes files. Blocking (call it off the
//! async runtime).

use std::{sync::Arc, time::Duration};

use openvrs_service::application;
use serde::Deserialize;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// An answer, whatever its status.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The largest answer read (a PDF certificate is far smaller).
const LIMIT: u64 = 16 << 20;

fn agent(roots: &[Vec<u8>]) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)));
    if !roots.is_empty() {
        let certs = roots
            .iter()
            .map(|der| Certificate::from_der(der).to_owned())
            .collect();
        config = config.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(certs)))
                .build(),
        );
    }
    config.build().into()
}

fn answer(mut r: ureq::http::Response<ureq::Body>) -> Result<Answer, String> {
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(LIMIT)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// `POST url` with a JSON body, and a bearer token when not empty. `roots` (DER) are trusted
/// for TLS beyond the defaults, e.g. a development CA.
pub fn post(url: &str, bearer: &str, json: &str, roots: &[Vec<u8>]) -> Result<Answer, String> {
    let mut request = agent(roots)
        .post(url)
        .header("content-type", "application/json");
    if !bearer.is_empty() {
        request = request.header("authorization", &format!("Bearer {bearer}"));
    }
    answer(request.send(json.as_bytes()).map_err(|e| e.to_string())?)
}

/// `GET url`.
pub fn get(url: &str, roots: &[Vec<u8>]) -> Result<Answer, String> {
    answer(agent(roots).get(url).call().map_err(|e| e.to_string())?)
}

/// Why a call gave nothing: the far end could not be reached, or it refused (its bilingual
/// message, or the status when it gave none).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0} に接続できません / cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("{0}")]
    Refused(String),
}

fn refusal(answer: &Answer) -> CallError {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    CallError::Refused(
        serde_json::from_slice::<Message>(&answer.body)
            .map(|m| m.message)
            .unwrap_or_else(|_| format!("HTTP {}", answer.status)),
    )
}

/// A certificate the resident app received.
#[derive(Debug, Deserialize)]
pub struct Received {
    pub id: String,
    /// `shc` or `vds-nc`.
    pub format: String,
    /// The `.smart-health-card` file or the VDS-NC JSON.
    pub payload: String,
}

/// The resident app's request to the system at `server` (its base URL): fetches the system's
/// intake key, seals the card-signed `application` to it, sends it and opens the answer.
pub fn app_certificates(
    server: &str,
    application: &str,
    roots: &[Vec<u8>],
) -> Result<Vec<Received>, CallError> {
    let server = server.trim_end_matches('/');
    let unreachable = |e: String| CallError::Unreachable(server.to_owned(), e);
    let key =
        get(&format!("{server}/.well-known/openvrs-app-key.json"), roots).map_err(unreachable)?;
    if key.status != 200 {
        return Err(refusal(&key));
    }
    let refused = |e: application::Refusal| CallError::Refused(e.to_string());
    let intake =
        serde_json::from_slice(&key.body).map_err(|e| CallError::Refused(e.to_string()))?;
    let (body, reply) = application::seal_application(&intake, application).map_err(refused)?;
    let answer = post(
        &format!("{server}/api/app/certificates"),
        "",
        &body.to_string(),
        roots,
    )
    .map_err(unreachable)?;
    if answer.status != 201 {
        return Err(refusal(&answer));
    }
    let body =
        serde_json::from_slice(&answer.body).map_err(|e| CallError::Refused(e.to_string()))?;
    #[derive(Deserialize)]
    struct Certificates {
        certificates: Vec<Received>,
    }
    let opened = application::open_answer(&reply, &body).map_err(refused)?;
    serde_json::from_value::<Certificates>(opened)
        .map(|c| c.certificates)
        .map_err(|e| CallError::Refused(e.to_string()))
}

/// A kiosk's request to the issuance center at `center` (its base URL) with its `token`: the
/// printed certificate (PDF).
pub fn kiosk_certificate(
    center: &str,
    token: &str,
    application: &str,
    roots: &[Vec<u8>],
) -> Result<Vec<u8>, CallError> {
    let center = center.trim_end_matches('/');
    let body = serde_json::json!({ "application": application }).to_string();
    let answer = post(&format!("{center}/kiosk/certificates"), token, &body, roots)
        .map_err(|e| CallError::Unreachable(center.to_owned(), e))?;
    if answer.status != 201 || answer.content_type != "application/pdf" {
        return Err(refusal(&answer));
    }
    Ok(answer.body)
}
