//! Who is asking, and may they: authentication (session cookie or device token), authorisation
//! by the route's [`Access`], tenant binding, CSRF. Decided here, once, for every route.

use openvrs_domain::audit::SecurityEventKind;
use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::Response,
};
use openvrs_crypto::credentials::secret_digest;
use openvrs_domain::{
    account::{Account, Binding},
    ids::MunicipalityCode,
};
use openvrs_store::Store;

use crate::{AppState, Zone, error::ApiError, monitor::Verdict, routes::RouteSpec};

pub const SESSION_COOKIE: &str = "openvrs_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in account.
    Signed,
    /// The national administrator.
    National,
    /// Counts only: national administrator and prefecture viewers.
    Aggregates,
    /// Municipal staff of the municipality named by the route's `{municipality}`.
    Staff,
    /// A venue device.
    Venue,
    /// The certificate issuance center.
    Center,
}

/// The signed-in account of a request, and how it signed in.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    /// The session's digest when signed in with a cookie; `None` for a bearer token.
    pub session: Option<[u8; 32]>,
}

/// Timeouts and limits.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// A session unused this long ends (microseconds).
    pub idle_timeout: i64,
    /// A session ends this long after sign-in, used or not (microseconds).
    pub absolute_timeout: i64,
    /// Failed sign-ins that lock an account ...
    pub lockout_failures: u64,
    /// ... within this window (microseconds).
    pub lockout_window: i64,
    /// Mark cookies `Secure` (set when the listener speaks TLS).
    pub secure_cookies: bool,
    /// Requests per minute from one client address.
    pub requests_per_client: u64,
    /// Requests per minute by one account.
    pub requests_per_account: u64,
    /// Malformed or oversized requests per minute from one client before it is an event.
    pub malformed_per_client: u64,
    /// Distinct persons one account may read in an hour before it is an event.
    pub persons_per_hour: usize,
    /// How long a device token's account is kept in memory (microseconds); 0 looks every
    /// request up. Disabling through this server ends it at once; elsewhere, within this time.
    pub token_cache: i64,
    /// Volumes of inquiries between municipalities that are refused or reported.
    pub inquiry: openvrs_service::inquiry::Limits,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        const MINUTE: i64 = 60_000_000;
        Self {
            idle_timeout: 30 * MINUTE,
            absolute_timeout: 12 * 60 * MINUTE,
            lockout_failures: 5,
            lockout_window: 15 * MINUTE,
            secure_cookies: false,
            requests_per_client: 1200,
            requests_per_account: 1200,
            malformed_per_client: 20,
            persons_per_hour: 500,
            token_cache: 5_000_000,
            inquiry: openvrs_service::inquiry::Limits::default(),
        }
    }
}

/// Where a request came from, for security events.
pub fn client(req_extensions: &axum::http::Extensions) -> Option<String> {
    req_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Records a security event (and logs it); failures to record are logged, never shown.
pub async fn security_event(
    state: &AppState,
    kind: SecurityEventKind,
    municipality: Option<MunicipalityCode>,
    user: Option<String>,
    client: Option<String>,
    detail: String,
) {
    tracing::warn!(kind = kind.code(), user = user.as_deref(), client = client.as_deref(), %detail, "security event");
    state.metrics.security_event(kind.code());
    let store = state.store.clone();
    let stored = tokio::task::spawn_blocking(move || {
        openvrs_service::security_event(&*store, kind, municipality, user, client, detail)
    })
    .await;
    match stored {
        Ok(Ok(event)) => {
            if let Some(n) = &state.notifier {
                n.send(event);
            }
        }
        _ => tracing::error!(kind = kind.code(), "could not store a security event"),
    }
}

fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

/// Finds the signed-in account, ending sessions that timed out.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    let store: Arc<dyn Store> = state.store.clone();
    let now = state.now();
    let config = state.security.clone();
    let secret = session_secret(headers);
    let token = bearer(headers);
    // A device token seen a moment ago needs no database read (the tablets' hot path).
    let cached = token
        .as_deref()
        .filter(|_| secret.is_none())
        .map(secret_digest)
        .and_then(|d| {
            state
                .tokens
                .get(&d, now - config.token_cache)
                .map(|a| (d, a))
        });
    if let Some((_, account)) = cached {
        return Ok(Some(Principal {
            account,
            session: None,
        }));
    }
    let tokens = state.tokens.clone();
    crate::blocking(move || {
        if let Some(secret) = secret {
            let digest = secret_digest(&secret);
            let Some(session) = store.session(&digest)? else {
                return Ok(None);
            };
            if now - session.last_seen > config.idle_timeout
                || now - session.created_at > config.absolute_timeout
            {
                store.delete_session(&digest)?;
                return Ok(None);
            }
            let Some((account, _)) = store.account(&session.user)? else {
                return Ok(None);
            };
            if account.disabled {
                return Ok(None);
            }
            store.touch_session(&digest, now)?;
            return Ok(Some(Principal {
                account,
                session: Some(digest),
            }));
        }
        if let Some(token) = token {
            let digest = secret_digest(&token);
            let account = store.account_by_token(&digest)?.filter(|a| !a.disabled);
            if let Some(a) = &account
                && config.token_cache > 0
            {
                tokens.put(digest, a.clone(), now);
            }
            return Ok(account.map(|account| Principal {
                account,
                session: None,
            }));
        }
        Ok(None)
    })
    .await
}

/// Where an account's credentials work: venue tablets on the internet listener; people and the
/// issuance center (on its dedicated line) on the LGWAN listener.
pub fn usable_in(zone: Zone, binding: &Binding) -> bool {
    match binding {
        Binding::Venue { .. } => zone == Zone::Internet,
        Binding::National | Binding::Prefecture(_) | Binding::Municipality(_) | Binding::Center => {
            zone == Zone::Lgwan
        }
    }
}

/// The `{municipality}` segment of the request path, by the route's template.
/// Whether the browser says the request comes from a page of this very site (`Origin` names the
/// host the request is for).
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match (
        header(axum::http::header::ORIGIN),
        header(axum::http::header::HOST),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host),
        _ => false,
    }
}

fn csrf_refused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "csrf",
        "CSRFトークンが一致しないか、別のサイトからの送信です",
        "CSRF token missing or wrong, or sent from another site",
    )
}

fn path_municipality(template: &str, path: &str) -> Option<String> {
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == "{municipality}")
        .map(|(_, p)| p.to_owned())
}

/// Counts a request of `key` (a client address or an account) against `limit` per minute, across
/// every server process of the database: the first request of a key in a minute here reads the
/// count the others shared.
async fn count_request(state: &AppState, key: &str, limit: u64) -> Verdict {
    let now = state.now();
    if let Some((counter, start)) = state.monitor.unread_request(key, now) {
        let store = state.store.clone();
        let name = counter.clone();
        if let Ok(Ok(total)) =
            tokio::task::spawn_blocking(move || store.shared_count(&name, start)).await
        {
            state.monitor.learn(counter, start, total);
        }
    }
    state.monitor.request(key, limit, now)
}

/// Turns a rate-limit verdict into a refusal (and, the first time, an event).
async fn limit(
    state: &AppState,
    verdict: Verdict,
    municipality: Option<MunicipalityCode>,
    user: Option<String>,
    client: Option<String>,
) -> Result<(), ApiError> {
    if verdict == Verdict::JustOver {
        let detail = if user.is_some() {
            "per account"
        } else {
            "per client address"
        };
        security_event(
            state,
            SecurityEventKind::RateLimited,
            municipality,
            user,
            client,
            detail.into(),
        )
        .await;
    }
    if verdict == Verdict::Within {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "要求が多すぎます。しばらく待ってください",
            "too many requests; slow down",
        ))
    }
}

/// Counts malformed and oversized requests per client; a burst is a security event.
pub async fn watch_malformed(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let client = client(req.extensions());
    let response = next.run(req).await;
    let bad = matches!(response.status().as_u16(), 400 | 413 | 415 | 422 | 431);
    if bad {
        let key = client.clone().unwrap_or_else(|| "unknown".into());
        let limit = state.security.malformed_per_client;
        if state.monitor.malformed(&key, limit, state.now()) == Verdict::JustOver {
            security_event(
                &state,
                SecurityEventKind::MalformedBurst,
                None,
                None,
                client,
                format!("more than {limit} malformed requests in a minute"),
            )
            .await;
        }
    }
    response
}

/// The guard every route passes through, configured by its [`RouteSpec`]: one span per request,
/// named by the route template (never the raw path, which can hold ids).
pub async fn guard(
    State((state, spec)): State<(AppState, &'static RouteSpec)>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    use tracing::Instrument;
    let span =
        tracing::info_span!("request", zone = ?spec.zone, method = %spec.method, route = spec.path);
    async move {
        let started = std::time::Instant::now();
        let metrics = state.metrics.clone();
        let result = decide(state, spec, req, next).await;
        let status = match &result {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.status.as_u16(),
        };
        metrics.request(spec, status, started.elapsed().as_secs_f64());
        tracing::info!(
            status,
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        result
    }
    .instrument(span)
    .await
}

async fn decide(
    state: AppState,
    spec: &'static RouteSpec,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let client = client(req.extensions());
    if let Some(c) = &client {
        let verdict = count_request(&state, c, state.security.requests_per_client).await;
        limit(&state, verdict, None, None, client.clone()).await?;
    }
    // A page's form must come from a page of this site, signed in or not: a form posted from
    // another site to the sign-in page would sign the victim's browser into the attacker's
    // account (login CSRF).
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD);
    if changes_state && spec.is_page() && !same_origin(req.headers()) {
        security_event(
            &state,
            SecurityEventKind::CsrfRejected,
            None,
            None,
            client.clone(),
            format!("{} {} from another origin", req.method(), spec.path),
        )
        .await;
        return Err(csrf_refused());
    }
    let principal = match authenticate(&state, req.headers()).await? {
        Some(p) if !usable_in(spec.zone, &p.account.binding) => {
            security_event(
                &state,
                SecurityEventKind::WrongZoneAccount,
                p.account.binding.municipality(),
                Some(p.account.id.to_string()),
                client.clone(),
                format!(
                    "{} {} on the {:?} listener",
                    req.method(),
                    spec.path,
                    spec.zone
                ),
            )
            .await;
            None
        }
        other => other,
    };
    if let Some(p) = &principal {
        let verdict = count_request(
            &state,
            &format!("account:{}", p.account.id),
            state.security.requests_per_account,
        )
        .await;
        let who = Some(p.account.id.to_string());
        limit(
            &state,
            verdict,
            p.account.binding.municipality(),
            who,
            client.clone(),
        )
        .await?;
    }
    if spec.access != Access::Public {
        let Some(p) = &principal else {
            // A person opening a page is sent to sign in; a program gets 401.
            if spec.is_page() && req.method() == Method::GET {
                return Ok(axum::response::IntoResponse::into_response(
                    axum::response::Redirect::to("/signin"),
                ));
            }
            return Err(ApiError::unauthorized());
        };
        let role_ok = match spec.access {
            Access::Public | Access::Signed => true,
            Access::National => matches!(p.account.binding, Binding::National),
            Access::Aggregates => matches!(
                p.account.binding,
                Binding::National | Binding::Prefecture(_)
            ),
            Access::Staff => matches!(p.account.binding, Binding::Municipality(_)),
            Access::Venue => matches!(p.account.binding, Binding::Venue { .. }),
            Access::Center => matches!(p.account.binding, Binding::Center),
        };
        if !role_ok {
            return Err(ApiError::forbidden());
        }
        if spec.access == Access::Staff {
            let asked = path_municipality(spec.path, req.uri().path()).unwrap_or_default();
            let own = p.account.binding.municipality().map(|m| m.to_string());
            if own.as_deref() != Some(asked.as_str()) {
                security_event(
                    &state,
                    SecurityEventKind::CrossMunicipality,
                    p.account.binding.municipality(),
                    Some(p.account.id.to_string()),
                    client,
                    format!("{} {}", req.method(), spec.path),
                )
                .await;
                return Err(ApiError::not_found());
            }
        }
        // A cookie is sent by the browser on its own; a state change must also prove it came
        // from our page. Bearer tokens are not ambient, so they need no such proof.
        if let (true, Some(digest)) = (changes_state, p.session) {
            let sent = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let store = state.store.clone();
            let expected =
                crate::blocking(move || Ok(store.session(&digest)?.map(|s| s.csrf_token))).await?;
            // The API's callers send the token (compared in constant time); the pages' forms
            // are known by their origin, which a browser sets and another site cannot.
            let token_matches = match (&sent, &expected) {
                (Some(sent), Some(expected)) => bool::from(subtle::ConstantTimeEq::ct_eq(
                    sent.as_bytes(),
                    expected.as_bytes(),
                )),
                _ => false,
            };
            let proven = token_matches || same_origin(req.headers());
            if !proven {
                security_event(
                    &state,
                    SecurityEventKind::CsrfRejected,
                    p.account.binding.municipality(),
                    Some(p.account.id.to_string()),
                    client,
                    format!("{} {}", req.method(), spec.path),
                )
                .await;
                return Err(csrf_refused());
            }
        }
    }
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    Ok(next.run(req).await)
}

/// The municipality a staff route is about: `{municipality}` of its path, which the guard has
/// already held to the signed-in staff member's own (another town's answered 404 before the
/// handler ran). Handlers take it instead of parsing the path again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant(pub MunicipalityCode);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let code = params
            .iter()
            .find(|(k, _)| *k == "municipality")
            .map(|(_, v)| v)
            .ok_or_else(ApiError::not_found)?;
        Ok(Tenant(
            MunicipalityCode::parse(code).map_err(|_| ApiError::not_found())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn municipality_from_path() {
        assert_eq!(
            super::path_municipality(
                "/api/municipalities/{municipality}/persons/{address_number}",
                "/api/municipalities/472131/persons/12"
            )
            .as_deref(),
            Some("472131")
        );
        assert_eq!(super::path_municipality("/api/me", "/api/me"), None);
    }
}
