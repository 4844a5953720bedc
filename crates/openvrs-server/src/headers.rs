//! One security policy on every response of both listeners: no sniffing, no referrer to other
//! sites, never framed by another site, and a Content-Security-Policy that lets a page run only
//! its own files and the inline `<script>`/`<style>` blocks the templates wrote, marked with this
//! response's nonce (markup that came from data cannot carry it). Pages that serve their own
//! files (the tablet, the resident app, the verifier) set a stricter policy of their own, which
//! is kept.

use axum::{
    extract::Request,
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use base64::Engine as _;

tokio::task_local! {
    static NONCE: String;
}

/// The nonce of the response being made (empty outside a request).
pub fn nonce() -> String {
    NONCE.try_with(Clone::clone).unwrap_or_default()
}

/// The policy of the server-rendered pages (and a harmless one for everything else).
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The middleware: a fresh nonce for the handler, then the headers on whatever it answered.
pub async fn secure(req: Request, next: Next) -> Response {
    let mut bytes = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
    let nonce = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut response = NONCE.scope(nonce.clone(), next.run(req)).await;
    let h = response.headers_mut();
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: under it a browser sends `Origin: null` with our own forms, and
        // the guard proves a form by its origin. Other sites never learn our addresses.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(v) = HeaderValue::from_str(&policy(&nonce))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response
}
