//! The venue tablet's API on the internet listener: record a dose from a voucher's OCR line,
//! with the date of birth from the paper form as the second factor. The answer says only what
//! the operator must confirm: the dose number and a masked name.

use axum::{Extension, Json, extract::State, http::StatusCode};
use openvrs_domain::{
    account::Binding,
    audit::{Actor, Zone},
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::OcrLine,
};
use openvrs_store::{StoreError, TabletRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    AppState,
    auth::Principal,
    error::{ApiError, findings_json},
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

pub async fn record(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(input): Json<VenueDose>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Binding::Venue { venue, .. } = &p.account.binding else {
        return Err(ApiError::forbidden());
    };
    let line = OcrLine::parse(&input.ocr_line)?;
    let date = match input.date.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(d) => parse_date(d)?,
        None => openvrs_service::today(),
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
        Json(json!({
            "outcome": answer.outcome.code(),
            "id": answer.id,
            "dose_number": answer.dose_number,
            "masked_name": answer.masked_name,
            "replayed": answer.replayed,
            "warnings": findings_json(&answer.warnings),
        })),
    ))
}
