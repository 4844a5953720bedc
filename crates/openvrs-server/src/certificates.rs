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
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

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

/// The issuer's public keys: a JWK Set (RFC 7517) of the SMART Health Card signing keys.
// `openvrs_service::certificate::jwks` writes it and the answer carries it as it is: this type
// only describes it (a test checks real answers against the description).
#[derive(Debug, ToSchema)]
pub struct Jwks {
    /// One JWK per key (`kty` `EC`, `crv` `P-256`, `kid`, `use` `sig`, `alg` `ES256`, `x`, `y`;
    /// `crlVersion` once the key has revocations), retired keys too.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<Value>,
}

/// A key's revocation list, as SMART Health Cards define it.
// `openvrs_cert::shc::Crl::to_json` writes it: this type only describes it.
#[derive(Debug, ToSchema)]
pub struct RevocationList {
    /// The key it is for.
    pub kid: String,
    /// Always `rid`.
    pub method: String,
    /// The list's version: one more at each revocation.
    pub ctr: u64,
    /// The revoked ids, each `rid` or `rid.timestamp`.
    pub rids: Vec<String>,
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

/// What a certificate says, without the holder's full name or date of birth.
#[derive(Serialize, ToSchema)]
#[allow(missing_debug_implementations)] // Not `Debug`: the holder's initials and birth year.
pub struct CertificateSummary {
    /// `shc`, `dcc` or `vds`.
    pub kind: String,
    /// Who signed it, as the certificate names them.
    pub issuer: String,
    pub holder: Holder,
    pub doses: Vec<CertifiedDose>,
}

/// The holder, only as far as a verifier needs to match them with a document.
#[derive(Serialize, ToSchema)]
#[allow(missing_debug_implementations)] // Not `Debug`: initials and birth year.
pub struct Holder {
    /// Initials only, e.g. `T** H**`.
    pub name: String,
    /// `YYYY`, or empty if the certificate has no date of birth.
    pub birth_year: String,
}

/// A dose as the certificate states it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertifiedDose {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The vaccine: the catalogue's name with the certificate's code after it, or as the
    /// certificate names it.
    pub product: String,
    /// The dose number, where the format has one (`2`, or `2/2` in a DCC).
    #[schema(required = true)]
    pub dose: Option<String>,
    pub lot: String,
    /// The performer or administering authority.
    pub by: String,
}

/// One check of the verifier and its verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifierCheck {
    /// `decode`, `signature`, `trust`, `schema`, `key_usage`, `expiry` or `revocation`.
    pub check: &'static str,
    pub ok: bool,
    /// Why, Japanese / English.
    pub detail: String,
}

/// The verifier's report: how the input came, each check's verdict and what each certificate
/// says (never the holder's full name or date of birth).
#[derive(Serialize, ToSchema)]
#[allow(missing_debug_implementations)] // Not `Debug`: see `CertificateSummary`.
pub struct Verification {
    /// How the input came: `qr-png`, `qr-svg`, `shc-qr-text`, `smart-health-card-file`, `jws`,
    /// `eu-dcc` or `vds-nc`.
    pub format: &'static str,
    /// Every check passed, and something was decoded.
    pub passed: bool,
    pub checks: Vec<VerifierCheck>,
    /// One per certificate decoded (a `.smart-health-card` file may hold several); null for
    /// one whose content is not understood.
    pub certificates: Vec<Option<CertificateSummary>>,
}

/// What a certificate says, without the holder's full name or date of birth: the internet
/// listener never returns those, not even the caller's own.
fn summary(
    content: &Value,
    catalogue: &[openvrs_domain::product::Product],
) -> Option<CertificateSummary> {
    let s = verify::summary(content)?;
    Some(CertificateSummary {
        holder: Holder {
            name: openvrs_domain::name::initials(&s.name),
            birth_year: s.birth_date.get(..4).unwrap_or_default().to_owned(),
        },
        doses: s
            .doses
            .iter()
            .map(|d| CertifiedDose {
                date: d.date.clone(),
                product: product_name(catalogue, &d.product),
                dose: d.dose.clone(),
                lot: d.lot.clone(),
                by: d.by.clone(),
            })
            .collect(),
        kind: s.kind,
        issuer: s.issuer,
    })
}

/// `POST /api/verify`: a payload (text) or a QR image (PNG) in the body; the verdict of each
/// check against this deployment's keys, and a summary without the holder's identity.
pub async fn verify_payload(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Verification>, ApiError> {
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
    Ok(Json(Verification {
        format: report.format,
        passed: report.passed(),
        checks: report
            .checks
            .iter()
            .map(|c| VerifierCheck {
                check: c.name,
                ok: c.ok,
                detail: c.detail.clone(),
            })
            .collect(),
        certificates: report
            .content
            .iter()
            .map(|c| summary(c, &catalogue))
            .collect(),
    }))
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
    let body = CounterCertificate {
        record: CertificateEntry::from(&c.record),
        payload: String::from_utf8_lossy(&c.payload).into_owned(),
        qr_png: png.map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A certificate issued at the counter in a digital format: its record, its content and its
/// QR code.
#[derive(Debug, Serialize, ToSchema)]
pub struct CounterCertificate {
    #[serde(flatten)]
    pub record: CertificateEntry,
    /// The certificate itself: the SMART Health Card (JWS), the VDS-NC JSON or the EU DCC
    /// (`HC1:...`).
    pub payload: String,
    /// Its QR code, PNG in base64.
    #[schema(required = true)]
    pub qr_png: Option<String>,
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

/// A certificate as the issuing municipality recorded it (never its content).
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateEntry {
    /// The certificate id printed on it.
    pub id: String,
    /// 宛名番号 of the person it was issued to.
    pub address_number: String,
    /// `domestic` or `overseas`.
    pub kind: &'static str,
    /// `pdf`, `shc`, `vds` or `dcc`.
    pub format: &'static str,
    /// How it was asked for: `counter`, `app`, `kiosk` or `console`.
    pub channel: &'static str,
    /// The signing key used.
    pub kid: String,
    /// Unix time in microseconds.
    pub issued_at: i64,
    /// The account that issued it.
    pub issued_by: String,
    /// Unix time in microseconds.
    #[schema(required = true)]
    pub revoked_at: Option<i64>,
    #[schema(required = true)]
    pub revoked_by: Option<String>,
    #[schema(required = true)]
    pub revocation_reason: Option<String>,
}

impl From<&CertificateRecord> for CertificateEntry {
    fn from(c: &CertificateRecord) -> Self {
        Self {
            id: c.id.clone(),
            address_number: c.address_number.as_str().to_owned(),
            kind: c.kind.code(),
            format: c.format.code(),
            channel: c.channel.code(),
            kid: c.kid.clone(),
            issued_at: c.issued_at,
            issued_by: c.issued_by.clone(),
            revoked_at: c.revoked_at,
            revoked_by: c.revoked_by.clone(),
            revocation_reason: c.revocation_reason.clone(),
        }
    }
}

/// Certificates issued by the municipality, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Certificates(pub Vec<CertificateEntry>);

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
) -> Result<Json<Certificates>, ApiError> {
    let address = q
        .address_number
        .as_deref()
        .map(AddressNumber::parse)
        .transpose()?;
    let store = state.store.clone();
    let list = crate::blocking(move || store.certificates(m, address.as_ref())).await?;
    Ok(Json(Certificates(
        list.iter().map(CertificateEntry::from).collect(),
    )))
}

/// `POST /api/municipalities/{m}/certificates/{id}/revoke`: revoke by id with a reason.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(m): Tenant,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<Reason>,
) -> Result<Json<CertificateEntry>, ApiError> {
    let store = state.store.clone();
    let actor = actor(&p);
    let r =
        crate::blocking(move || store.revoke_certificate(m, &id, &input.reason, &actor)).await?;
    Ok(Json(CertificateEntry::from(&r)))
}
