//! The one HTTP client: the issuance center calling the system, and the command line's resident
//! app and kiosk calling the system and the center. Blocking (call it off the async runtime).

use std::{sync::Arc, time::Duration};

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
