//! Certificates over HTTP. Internet: the issuer's public keys and revocation lists (any
//! verifier fetches them, so CORS is open), and a verifier anyone can use. LGWAN: a
//! municipality's certificates and their revocation.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use openvrs_cert::{pki, shc, verify};
use openvrs_domain::ids::AddressNumber;
use openvrs_service::certificate::{self as certs, CertificateError};
use openvrs_store::{CertificateRecord, Store, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    AppState,
    api::actor,
    auth::{Principal, Tenant},
    error::ApiError,
    records::Reason,
};

impl From<CertificateError> for ApiError {
    fn from(e: CertificateError) -> Self {
        match e {
            CertificateError::Refused(i) => i.into(),
            CertificateError::Store(s) => s.into(),
            CertificateError::NoPerson => Self::not_found(),
            CertificateError::Cert(c) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, c.kind, c.ja, c.en)
            }
            other => {
                tracing::error!(error = %other, "certificate configuration");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "certificates_unavailable",
                    "証明書の署名鍵が設定されていません",
                    "certificate signing keys are not set up",
                )
            }
        }
    }
}

/// Public JSON any verifier may fetch from any origin.
fn public_json(body: &Value) -> Response {
    let mut r = Json(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// `GET /.well-known/jwks.json` (and under `/issuer`): every SMART Health Card key, retired
/// ones too.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let jwks = crate::blocking(move || certs::jwks(&*store).map_err(store_error)).await?;
    Ok(public_json(&jwks))
}

fn store_error(e: CertificateError) -> StoreError {
    match e {
        CertificateError::Store(s) => s,
        _ => StoreError::Corrupt("certificate keys"),
    }
}

/// `GET /.well-known/crl/{kid}.json`: the revocation list of a key the issuer published.
pub async fn crl(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let kid = file
        .strip_suffix(".json")
        .ok_or_else(ApiError::not_found)?
        .to_owned();
    let store = state.store.clone();
    let list = crate::blocking(move || {
        if !store.signing_keys(certs::SHC)?.iter().any(|k| k.kid == kid) {
            return Ok(None);
        }
        certs::crl(&*store, &kid).map(Some).map_err(store_error)
    })
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(public_json(&list.to_json()))
}

/// What this deployment trusts: its own keys, revocation lists, CSCAs and DCC signers.
fn own_trust(store: &dyn Store, at: f64) -> Result<verify::Trust, StoreError> {
    let mut trust = verify::Trust {
        at,
        ..Default::default()
    };
    let jwks = certs::jwks(store).map_err(store_error)?;
    trust.jwks = shc::parse_jwks(&jwks.to_string()).map_err(|_| StoreError::Corrupt("jwks"))?;
    for key in &trust.jwks {
        trust
            .crls
            .push(certs::crl(store, &key.kid).map_err(store_error)?);
    }
    for (kind, pem) in certs::certificates_pem(store).map_err(store_error)? {
        if kind == certs::CSCA || kind == certs::DCC {
            for der in pki::read_certificates(pem.as_bytes())
                .map_err(|_| StoreError::Corrupt("certificate"))?
            {
                trust.certificates.push(
                    pki::Certificate::parse(&der)
                        .map_err(|_| StoreError::Corrupt("certificate"))?,
                );
            }
        }
    }
    Ok(trust)
}

/// The product as a person reads it: the catalogue's name for a CVX code (SMART Health Cards)
/// or an EU medicinal product (DCC), with the code after it; anything else as the certificate
/// names it.
fn product_name(catalogue: &[openvrs_domain::product::Product], named: &str) -> String {
    let known = match named.strip_prefix("CVX ") {
        Some(cvx) => catalogue.iter().find(|p| p.cvx == cvx),
        None => catalogue.iter().find(|p| p.eu_mp == named),
    };
    match known {
        Some(p) => format!("{} ({named})", p.name),
        None => named.to_owned(),
    }
}

/// What a certificate says, without the holder's full name or date of birth: the internet
/// listener never returns those, not even the caller's own.
fn summary(content: &Value, catalogue: &[openvrs_domain::product::Product]) -> Value {
    let Some(s) = verify::summary(content) else {
        return Value::Null;
    };
    json!({
        "kind": s.kind,
        "issuer": s.issuer,
        "holder": {
            "name": openvrs_domain::name::initials(&s.name),
            "birth_year": s.birth_date.get(..4).unwrap_or_default(),
        },
        "doses": s.doses.iter().map(|d| json!({
            "date": d.date, "product": product_name(catalogue, &d.product), "dose": d.dose,
            "lot": d.lot, "by": d.by,
        })).collect::<Vec<_>>(),
    })
}

/// `POST /api/verify`: a payload (text) or a QR image (PNG) in the body; the verdict of each
/// check against this deployment's keys, and a summary without the holder's identity.
pub async fn verify_payload(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "証明書の内容かQRコード画像を送ってください",
            "send a certificate's content or a QR code image",
        ));
    }
    // Images are drawn and scanned a few at a time; a caller who finds every slot taken for a
    // few seconds is told to come back rather than queued without end.
    let permit = match verify::image_kind(&body) {
        Some(_) => Some(
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                state.images.clone().acquire_owned(),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "画像の検証が混み合っています。しばらくしてからもう一度お試しください",
                    "too many images are being verified; try again shortly",
                )
            })?,
        ),
        None => None,
    };
    let store = state.store.clone();
    let at = state.now() as f64 / 1e6;
    let (report, catalogue) = crate::blocking(move || {
        // Held by the work itself: a caller who hangs up does not free the place while the
        // image is still being drawn.
        let _permit = permit;
        let trust = own_trust(&*store, at)?;
        Ok((verify::verify(&body, &trust), store.products()?))
    })
    .await?;
    Ok(Json(json!({
        "format": report.format,
        "passed": report.passed(),
        "checks": report.checks.iter().map(|c| json!({ "check": c.name, "ok": c.ok, "detail": c.detail })).collect::<Vec<_>>(),
        "certificates": report.content.iter().map(|c| summary(c, &catalogue)).collect::<Vec<_>>(),
    })))
}

const PAGE: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../assets/verify/index.html"),
    ),
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/verify/verify.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/verify/style.css"),
    ),
];

/// `GET /` on the internet listener: where to go from here.
pub async fn landing() -> Response {
    crate::venue::asset(
        &[(
            "",
            "text/html; charset=utf-8",
            include_bytes!("../assets/index.html"),
        )],
        &PAGE_HEADERS,
        "",
    )
}

/// `GET /verify/` and its files.
pub async fn page() -> Response {
    page_file(Path(String::new())).await
}

pub async fn page_file(Path(file): Path<String>) -> Response {
    crate::venue::asset(PAGE, &PAGE_HEADERS, &file)
}

/// Only the page's own files, no inline script, no framing.
const PAGE_HEADERS: [(header::HeaderName, &str); 3] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// A certificate asked for at the counter; overseas ones with the passport's data as typed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CertificateRequest {
    /// `domestic` or `overseas`.
    pub kind: String,
    /// `pdf` (to print), `shc`, `vds` or `dcc`.
    pub format: String,
    /// Overseas: the romanized name as in the passport, `FAMILY GIVEN`, A-Z.
    pub passport_name: Option<String>,
    /// Overseas: ISO 3166 alpha-3, e.g. `JPN`.
    pub nationality: Option<String>,
    /// Overseas: the passport number.
    pub passport_number: Option<String>,
}

/// `POST /api/municipalities/{m}/persons/{a}/certificates`: staff issue a certificate at the
/// counter (窓口) after checking the person's identity. A PDF comes back as `application/pdf`
/// to print; the other formats as JSON with the payload and the QR image (PNG, base64).
pub async fn issue_at_counter(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
    Json(input): Json<CertificateRequest>,
) -> Result<Response, ApiError> {
    use openvrs_domain::certificate::Format;
    let (c, png) = counter(&state, &p, &m, &a, &input).await?;
    if c.record.format == Format::Pdf {
        let mut r = c.payload.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pdf"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!(
            "inline; filename=\"certificate-{}.pdf\"",
            c.record.id
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok((StatusCode::CREATED, r).into_response());
    }
    use base64::Engine as _;
    let mut body = record_json(&c.record);
    body["payload"] = json!(String::from_utf8_lossy(&c.payload));
    body["qr_png"] = json!(png.map(|p| base64::engine::general_purpose::STANDARD.encode(p)));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A certificate issued at the counter for person `a` of `m`, with its QR image unless it is
/// the paper PDF; the API and the person's page both come here.
pub(crate) async fn counter(
    state: &AppState,
    p: &Principal,
    m: &str,
    a: &str,
    input: &CertificateRequest,
) -> Result<(certs::Certificate, Option<Vec<u8>>), ApiError> {
    use openvrs_domain::certificate::{Channel, Format, Kind, Passport};
    let m = crate::records::municipality(m)?;
    let address = AddressNumber::parse(a).map_err(|_| ApiError::not_found())?;
    let bad = |what: &str| {
        ApiError::bad_request(&format!("{what} が不正です"), &format!("invalid {what}"))
    };
    let kind = Kind::from_code(&input.kind).ok_or_else(|| bad("kind"))?;
    let format = Format::from_code(&input.format).ok_or_else(|| bad("format"))?;
    let given = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let passport = match (
        given(&input.passport_name),
        given(&input.nationality),
        given(&input.passport_number),
    ) {
        (None, None, None) => None,
        (name, nationality, number) => Some(Passport::parse(
            name.as_deref().unwrap_or_default(),
            nationality.as_deref().unwrap_or_default(),
            number.as_deref().unwrap_or_default(),
        )?),
    };
    let request = certs::Request {
        address,
        kind,
        format,
        passport,
        channel: Channel::Counter,
        application: None,
    };
    let store = state.store.clone();
    let issuer = state.issuer.clone();
    let actor = actor(p);
    let (c, png) = tokio::task::spawn_blocking(move || {
        let signers = certs::Signers::load(&*store)?;
        let c = certs::issue(&*store, &signers, &issuer, m, &request, &actor)?;
        let png = match c.record.format {
            Format::Pdf => None,
            _ => Some(c.qr_png()?),
        };
        Ok::<_, CertificateError>((c, png))
    })
    .await
    .map_err(|_| StoreError::Corrupt("worker failed"))??;
    state.metrics.certificate(c.record.format.code(), "counter");
    Ok((c, png))
}

fn record_json(c: &CertificateRecord) -> Value {
    json!({
        "id": c.id, "address_number": c.address_number.as_str(), "kind": c.kind.code(),
        "format": c.format.code(), "channel": c.channel.code(), "kid": c.kid,
        "issued_at": c.issued_at, "issued_by": c.issued_by, "revoked_at": c.revoked_at,
        "revoked_by": c.revoked_by, "revocation_reason": c.revocation_reason,
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub address_number: Option<String>,
}

/// `GET /api/municipalities/{m}/certificates`: what the municipality issued (one person's with
/// `?address_number=`), newest first.
pub async fn list(
    State(state): State<AppState>,
    Tenant(m): Tenant,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let address = q
        .address_number
        .as_deref()
        .map(AddressNumber::parse)
        .transpose()?;
    let store = state.store.clone();
    let list = crate::blocking(move || store.certificates(m, address.as_ref())).await?;
    Ok(Json(json!(
        list.iter().map(record_json).collect::<Vec<_>>()
    )))
}

/// `POST /api/municipalities/{m}/certificates/{id}/revoke`: revoke by id with a reason.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(m): Tenant,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<Reason>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let actor = actor(&p);
    let r =
        crate::blocking(move || store.revoke_certificate(m, &id, &input.reason, &actor)).await?;
    Ok(Json(record_json(&r)))
}
