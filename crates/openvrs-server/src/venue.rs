//! The venue tablet's API on the internet listener: record a dose from a voucher's OCR line,
//! with the date of birth from the paper form as the second factor. The answer says only what
//! the operator must confirm: the dose number and a masked name.

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use openvrs_domain::{
    account::Binding,
    audit::{Actor, Zone},
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::OcrLine,
};
use openvrs_store::{StoreError, TabletRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::Principal,
    error::{ApiError, QualityFinding, findings},
};

/// A dose as the tablet sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VenueDose {
    /// The voucher's 18-digit OCR line (typed, or read from its QR code).
    pub ocr_line: String,
    /// The date of birth from the paper form (any date form).
    pub birth_date: String,
    /// A product code of the catalogue.
    pub product: String,
    pub lot: String,
    /// The vaccination date; today (Japan) when absent. Queued offline records send theirs.
    pub date: Option<String>,
    #[serde(default)]
    pub doctor: String,
    /// Chosen by the tablet for this record; a retry sends the same key.
    pub idempotency_key: String,
}

/// What the operator must confirm of a record: the dose number and a masked name.
#[derive(Serialize, ToSchema)]
#[allow(missing_debug_implementations)] // Not `Debug`: the masked name.
pub struct VenueRecorded {
    /// `recorded`, `already_recorded` (the same dose was there) or `conflict` (a different one
    /// was: staff decide).
    pub outcome: &'static str,
    /// The dose id, or the conflict id.
    pub id: i64,
    /// 接種回数, from the voucher.
    pub dose_number: u32,
    /// Initials only, e.g. `ウ** タ**`: never the full name.
    pub masked_name: String,
    /// The same idempotency key was seen before: this is the first answer again.
    pub replayed: bool,
    /// Data-quality warnings for staff to look at.
    pub warnings: Vec<QualityFinding>,
}

pub async fn record(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(input): Json<VenueDose>,
) -> Result<(StatusCode, Json<VenueRecorded>), ApiError> {
    let Binding::Venue { venue, .. } = &p.account.binding else {
        return Err(ApiError::forbidden());
    };
    let line = OcrLine::parse(&input.ocr_line)?;
    let date = match input.date.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(d) => parse_date(d)?,
        None => state.store.clock().now().today_jst(),
    };
    let record = TabletRecord {
        voucher: line.voucher,
        birth_date: parse_date(&input.birth_date)?,
        dose: Dose {
            number: DoseNumber::new(u32::from(line.dose_number))?,
            status: DoseStatus::Given,
            date,
            product: Short::parse(&input.product)?,
            lot: Short::parse(&input.lot)?,
            venue: Short::parse(venue.as_str())?,
            doctor: Short::parse(&input.doctor)?,
            source: DoseSource::Tablet,
            voucher: Some(line.voucher),
            given_in: Some(line.municipality),
        },
        idempotency_key: input.idempotency_key,
    };
    let actor = Actor {
        user: p.account.id.to_string(),
        role: p.account.binding.role(),
        zone: Zone::Internet,
    };
    // The dose goes to the voucher's municipality, whichever venue records it; the answer
    // comes once the transaction holding it is committed (group commit).
    let answer = match state.tablets.record(line.municipality, record, actor).await {
        Ok(a) => a,
        Err(StoreError::NotFound(_) | StoreError::UnknownMunicipality(_)) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "voucher_not_found",
                "接種券が見つかりません(OCRラインを確認してください)",
                "no such voucher (check the OCR line)",
            ));
        }
        Err(StoreError::BirthDateMismatch) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "birth_date_mismatch",
                "生年月日が一致しません(予診票と接種券を確認してください)",
                "the date of birth does not match (check the form and the voucher)",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let status = match answer.outcome {
        openvrs_store::TabletOutcome::Recorded if !answer.replayed => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    Ok((
        status,
        Json(VenueRecorded {
            outcome: answer.outcome.code(),
            id: answer.id,
            dose_number: answer.dose_number,
            masked_name: answer.masked_name,
            replayed: answer.replayed,
            warnings: findings(&answer.warnings),
        }),
    ))
}

/// A vaccine product of the catalogue, as the tablet sets up its lots.
#[derive(Debug, Serialize, ToSchema)]
pub struct VenueProduct {
    /// The product code to send, e.g. `comirnaty`.
    pub code: String,
    /// The product's name (Japanese).
    pub name: String,
    /// A regular expression the whole lot number must match.
    pub lot_pattern: String,
}

/// The catalogue's products.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct VenueProducts(pub Vec<VenueProduct>);

/// The catalogue's products, for the tablet's lot set-up: code, name and lot format.
pub async fn products(State(state): State<AppState>) -> Result<Json<VenueProducts>, ApiError> {
    let store = state.store.clone();
    let products = crate::blocking(move || store.products()).await?;
    Ok(Json(VenueProducts(
        products
            .into_iter()
            .map(|p| VenueProduct {
                code: p.code,
                name: p.name,
                lot_pattern: p.lot_pattern,
            })
            .collect(),
    )))
}

/// The tablet page's files, compiled into the binary: (name under `/venue/`, content type, bytes).
const PAGE: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../assets/venue/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/venue/app.js"),
    ),
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/venue/sw.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/venue/style.css"),
    ),
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_bytes!("../assets/venue/manifest.webmanifest"),
    ),
];

/// Only the page's own files, no inline script, no framing; the camera for the voucher's QR code.
const PAGE_HEADERS: [(header::HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    // Always revalidated: a new release reaches every tablet (the service worker keeps a copy
    // only for when there is no connection).
    (header::CACHE_CONTROL, "no-cache"),
    (
        header::HeaderName::from_static("permissions-policy"),
        "camera=(self), microphone=(), geolocation=()",
    ),
];

/// `GET /venue/`: the tablet page.
pub async fn page() -> Response {
    page_file(Path(String::new())).await
}

/// `GET /venue/{file}`: the page's script, style sheet, service worker and manifest.
pub async fn page_file(Path(file): Path<String>) -> Response {
    asset(PAGE, &PAGE_HEADERS, &file)
}

/// One of a page's files compiled into the binary, with the page's security headers; any other
/// name is not found.
pub(crate) fn asset(
    files: &[(&str, &'static str, &'static [u8])],
    headers: &[(header::HeaderName, &'static str)],
    file: &str,
) -> Response {
    match files.iter().find(|(name, ..)| *name == file) {
        Some((_, content_type, body)) => {
            let mut response = (
                [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                *body,
            )
                .into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name.clone(), HeaderValue::from_static(value));
            }
            response
        }
        None => ApiError::not_found().into_response(),
    }
}
