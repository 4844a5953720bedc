//! Handlers for a municipality's records on the LGWAN listener: doses (add, correct, delete,
//! history), flags, corrections, disclosure, the quality report, file uploads and the ledger
//! download. Staff only (the guard checks the account and its municipality).

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use openvrs_csv::Encoding;
use openvrs_domain::{
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    name::{KanaName, Name},
    person::{BirthDate, Flags, MovedOut},
    product::Catalogue,
    sex::Sex,
};
use openvrs_service::disclosure;
use openvrs_store::{DoseWritten, StoredDose};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    AppState,
    api::actor,
    auth::{Principal, Tenant},
    error::{ApiError, findings_json},
};

/// The largest file an upload accepts.
pub const MAX_UPLOAD: usize = 256 << 20;

/// A municipality in a path; one that cannot be is not found, like another municipality's.
pub(crate) fn municipality(m: &str) -> Result<MunicipalityCode, ApiError> {
    MunicipalityCode::parse(m).map_err(|_| ApiError::not_found())
}

pub(crate) fn target(m: &str, a: &str) -> Result<(MunicipalityCode, AddressNumber), ApiError> {
    Ok((
        municipality(m)?,
        AddressNumber::parse(a).map_err(|_| ApiError::not_found())?,
    ))
}

/// A dose as staff enter it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DoseInput {
    pub dose_number: u32,
    /// Any date form: ISO, 令和3年6月1日, R3.6.1, ...
    pub date: String,
    /// A product code of the catalogue, e.g. `comirnaty`.
    pub product: String,
    #[serde(default)]
    pub lot: String,
    #[serde(default)]
    pub venue: String,
    #[serde(default)]
    pub doctor: String,
    pub voucher_number: Option<String>,
    /// 接種自治体コード.
    pub given_in: Option<String>,
    /// `given` (default) or `not_given`.
    pub status: Option<String>,
}

impl DoseInput {
    pub(crate) fn dose(&self) -> Result<Dose, ApiError> {
        Ok(Dose {
            number: DoseNumber::new(self.dose_number)?,
            status: match self.status.as_deref() {
                None => DoseStatus::Given,
                Some(s) => DoseStatus::from_code(s).ok_or_else(|| {
                    ApiError::bad_request(
                        "status は given か not_given です",
                        "status is given or not_given",
                    )
                })?,
            },
            date: parse_date(&self.date)?,
            product: Short::parse(&self.product)?,
            lot: Short::parse(&self.lot)?,
            venue: Short::parse(&self.venue)?,
            doctor: Short::parse(&self.doctor)?,
            source: DoseSource::Staff,
            voucher: self
                .voucher_number
                .as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(VoucherNumber::parse_restoring_zeros)
                .transpose()?,
            given_in: self
                .given_in
                .as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(MunicipalityCode::parse_restoring_zero)
                .transpose()?,
        })
    }
}

/// A correction of a dose: the whole new version and why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DoseCorrection {
    pub dose: DoseInput,
    pub reason: String,
}

/// Why a dose is deleted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub reason: String,
}

/// The whole set of flags of a person, and why they change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FlagsInput {
    pub moved_out_on: Option<String>,
    pub moved_out_to: Option<String>,
    pub deceased_on: Option<String>,
    #[serde(default)]
    pub use_suspended: bool,
    pub reason: String,
}

/// A correction of a person's identity (訂正請求), and why. Not `Debug`: it holds personal data.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(missing_debug_implementations)]
pub struct PersonCorrection {
    pub name: String,
    pub name_kana: String,
    pub birth_date: String,
    /// 1/2/男/女/...
    pub sex: String,
    pub my_number: Option<String>,
    pub reason: String,
}

fn written(w: DoseWritten) -> Json<Value> {
    Json(json!({ "dose_id": w.id, "warnings": findings_json(&w.warnings) }))
}

pub async fn doses(
    State(state): State<AppState>,
    Path((m, a)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (m, a) = target(&m, &a)?;
    let store = state.store.clone();
    let (current, history, catalogue) = crate::blocking(move || {
        Ok((
            store.doses(m, &a)?,
            store.dose_history(m, &a)?,
            Catalogue::new(store.products()?)?,
        ))
    })
    .await?;
    let dose_json = |d: &StoredDose| disclosure::dose_json(d, &catalogue);
    Ok(Json(json!({
        "doses": current.iter().map(dose_json).collect::<Vec<_>>(),
        "history": history.iter().map(|h| json!({
            "was": dose_json(&h.was),
            "change": h.change.code(),
            "reason": h.reason,
            "changed_at": h.changed_at,
            "changed_by": h.changed_by,
        })).collect::<Vec<_>>(),
    })))
}

pub async fn add_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
    Json(input): Json<DoseInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (m, a) = target(&m, &a)?;
    let dose = input.dose()?;
    let store = state.store.clone();
    let actor = actor(&p);
    let w = crate::blocking(move || store.add_dose(m, &a, &dose, &actor)).await?;
    Ok((StatusCode::CREATED, written(w)))
}

pub async fn correct_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a, id)): Path<(String, String, i64)>,
    Json(input): Json<DoseCorrection>,
) -> Result<Json<Value>, ApiError> {
    let (m, a) = target(&m, &a)?;
    let dose = input.dose.dose()?;
    let store = state.store.clone();
    let actor = actor(&p);
    let w = crate::blocking(move || store.correct_dose(m, &a, id, &dose, &input.reason, &actor))
        .await?;
    Ok(written(w))
}

pub async fn delete_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a, id)): Path<(String, String, i64)>,
    Json(input): Json<Reason>,
) -> Result<StatusCode, ApiError> {
    let (m, a) = target(&m, &a)?;
    let store = state.store.clone();
    let actor = actor(&p);
    crate::blocking(move || store.delete_dose(m, &a, id, &input.reason, &actor)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_flags(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
    Json(input): Json<FlagsInput>,
) -> Result<StatusCode, ApiError> {
    let (m, a) = target(&m, &a)?;
    let flags = input.flags()?;
    let store = state.store.clone();
    let actor = actor(&p);
    crate::blocking(move || store.set_flags(m, &a, flags, &input.reason, &actor)).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl FlagsInput {
    /// The flags these fields say (an empty field: the flag is not set).
    pub(crate) fn flags(&self) -> Result<Flags, ApiError> {
        let date = |s: &Option<String>| {
            s.as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(parse_date)
                .transpose()
        };
        Ok(Flags {
            moved_out: date(&self.moved_out_on)?
                .map(|on| -> Result<MovedOut, ApiError> {
                    Ok(MovedOut {
                        on,
                        to: self
                            .moved_out_to
                            .as_deref()
                            .filter(|v| !v.trim().is_empty())
                            .map(MunicipalityCode::parse_restoring_zero)
                            .transpose()?,
                    })
                })
                .transpose()?,
            deceased_on: date(&self.deceased_on)?,
            use_suspended: self.use_suspended,
        })
    }
}

pub async fn correct_person(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
    Json(input): Json<PersonCorrection>,
) -> Result<Json<Value>, ApiError> {
    let (m, a) = target(&m, &a)?;
    let corrected = input.person(a)?;
    let store = state.store.clone();
    let actor = actor(&p);
    let fields =
        crate::blocking(move || store.correct_person(m, &corrected, &input.reason, &actor)).await?;
    Ok(Json(json!({ "changed": fields })))
}

impl PersonCorrection {
    /// The corrected identity of person `a` (flags and vouchers are not corrected here).
    pub(crate) fn person(
        &self,
        a: AddressNumber,
    ) -> Result<openvrs_domain::person::Person, ApiError> {
        Ok(openvrs_domain::person::Person {
            address_number: a,
            name: Name::parse(&self.name)?,
            name_kana: KanaName::parse(&self.name_kana)?,
            birth_date: BirthDate(parse_date(&self.birth_date)?),
            sex: Sex::parse(&self.sex)?,
            my_number: self
                .my_number
                .as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(MyNumber::parse)
                .transpose()?,
            flags: Flags::default(),
            vouchers: Vec::new(),
        })
    }
}

pub async fn disclose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (m, a) = target(&m, &a)?;
    let store = state.store.clone();
    let actor = actor(&p);
    let (d, catalogue) = crate::blocking(move || {
        let d = store.disclosure(m, &a, &actor)?;
        Ok((d, Catalogue::new(store.products()?)?))
    })
    .await?;
    let d = d.ok_or_else(ApiError::not_found)?;
    Ok(Json(disclosure::json(&d, &catalogue)))
}

pub async fn quality(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(m): Tenant,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let actor = actor(&p);
    let lines = crate::blocking(move || store.quality_report(m, &actor)).await?;
    Ok(Json(json!(
        lines
            .iter()
            .map(|l| json!({
                "address_number": l.address.as_str(),
                "dose_id": l.dose_id,
                "dose_number": l.dose_number,
                "rule": l.finding.rule.code(),
                "severity": l.finding.severity.code(),
                "message": l.finding.to_string(),
            }))
            .collect::<Vec<_>>()
    )))
}

/// `?encoding=auto|sjis|utf8` of uploads and downloads.
#[derive(Debug, Deserialize)]
pub struct EncodingQuery {
    pub encoding: Option<String>,
}

impl EncodingQuery {
    pub(crate) fn get(&self) -> Result<Encoding, ApiError> {
        match self.encoding.as_deref() {
            None | Some("auto") => Ok(Encoding::Auto),
            Some("sjis") => Ok(Encoding::ShiftJis),
            Some("utf8") => Ok(Encoding::Utf8),
            Some(_) => Err(ApiError::bad_request(
                "encoding は auto, sjis, utf8 のいずれかです",
                "encoding is auto, sjis or utf8",
            )),
        }
    }

    /// For a file to download: Shift_JIS unless UTF-8 is asked for.
    pub(crate) fn download(&self) -> Result<Encoding, ApiError> {
        Ok(match self.get()? {
            Encoding::Utf8 => Encoding::Utf8,
            Encoding::Auto | Encoding::ShiftJis => Encoding::ShiftJis,
        })
    }
}

/// A CSV file as a download.
pub(crate) fn csv_download(encoding: Encoding, filename: &str, bytes: Vec<u8>) -> Response {
    let charset = if encoding == Encoding::Utf8 {
        "UTF-8"
    } else {
        "Shift_JIS"
    };
    (
        [
            (header::CONTENT_TYPE, format!("text/csv; charset={charset}")),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// What kind of file an upload is.
#[derive(Debug, Clone, Copy)]
enum Upload {
    Targets,
    Ledger,
    Flags,
}

async fn upload(
    state: AppState,
    p: Principal,
    m: String,
    encoding: Encoding,
    body: Bytes,
    kind: Upload,
) -> Result<Json<Value>, ApiError> {
    let m = municipality(&m)?;
    let store = state.store.clone();
    let actor = actor(&p);
    let result = tokio::task::spawn_blocking(move || {
        let open =
            || Ok(Box::new(std::io::Cursor::new(body.clone())) as Box<dyn std::io::Read + Send>);
        let store = &*store;
        Ok::<Value, openvrs_service::Failure>(match kind {
            Upload::Targets => {
                let s = openvrs_service::import_targets(store, &open, m, encoding, &actor)?;
                json!({
                    "inserted": s.inserted,
                    "updated": s.updated,
                    "unchanged": s.unchanged,
                    "vouchers_written": s.vouchers_written,
                })
            }
            Upload::Ledger => {
                let s = openvrs_service::import_ledger(store, &open, m, encoding, &actor)?;
                json!({
                    "rows": s.rows,
                    "inserted": s.inserted,
                    "unchanged": s.unchanged,
                    "warnings": s.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            }
            Upload::Flags => {
                let changed = openvrs_service::import_flags(
                    store,
                    &open,
                    m,
                    encoding,
                    "CSVアップロード / uploaded flags file",
                    &actor,
                )?;
                json!({ "changed": changed })
            }
        })
    })
    .await
    .map_err(|_| ApiError::from(openvrs_store::StoreError::Corrupt("worker failed")))?;
    let result = result?;
    let (file, rows) = match kind {
        Upload::Targets => (
            "targets",
            result["inserted"].as_u64().unwrap_or(0)
                + result["updated"].as_u64().unwrap_or(0)
                + result["unchanged"].as_u64().unwrap_or(0),
        ),
        Upload::Ledger => ("ledger", result["rows"].as_u64().unwrap_or(0)),
        Upload::Flags => ("flags", result["changed"].as_u64().unwrap_or(0)),
    };
    state.metrics.import_rows(file, rows);
    Ok(Json(result))
}

pub async fn upload_targets(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(m): Path<String>,
    Query(q): Query<EncodingQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    upload(state, p, m, q.get()?, body, Upload::Targets).await
}

pub async fn upload_ledger(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(m): Path<String>,
    Query(q): Query<EncodingQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    upload(state, p, m, q.get()?, body, Upload::Ledger).await
}

pub async fn upload_flags(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(m): Path<String>,
    Query(q): Query<EncodingQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    upload(state, p, m, q.get()?, body, Upload::Flags).await
}

/// The ledger as a download (Shift_JIS unless `?encoding=utf8`).
pub async fn ledger(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(m): Tenant,
    Query(q): Query<EncodingQuery>,
) -> Result<Response, ApiError> {
    let encoding = q.download()?;
    let store = state.store.clone();
    let actor = actor(&p);
    let bytes = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        openvrs_service::export_ledger(&*store, m, encoding, &actor, &mut out).map(|_| out)
    })
    .await
    .map_err(|_| ApiError::from(openvrs_store::StoreError::Corrupt("worker failed")))??;
    Ok(csv_download(encoding, &format!("ledger-{m}.csv"), bytes))
}

/// The tablet records waiting for this municipality's staff.
pub async fn conflicts(
    State(state): State<AppState>,
    Tenant(m): Tenant,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let (queue, catalogue) =
        crate::blocking(move || Ok((store.dose_conflicts(m)?, Catalogue::new(store.products()?)?)))
            .await?;
    Ok(Json(json!(
        queue
            .iter()
            .map(|c| json!({
                "conflict_id": c.id,
                "address_number": c.address.as_str(),
                "existing_dose_id": c.existing_dose_id,
                "proposed": disclosure::dose_json(
                    &StoredDose {
                        id: 0,
                        version: 0,
                        dose: c.proposed.clone(),
                        recorded_at: c.at,
                        recorded_by: c.device.clone(),
                    },
                    &catalogue,
                ),
                "device": c.device,
                "at": c.at,
            }))
            .collect::<Vec<_>>()
    )))
}

/// Staff's decision on a tablet conflict.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ConflictResolution {
    /// `keep` the recorded dose, or `replace` it with the tablet's record.
    pub action: String,
    pub reason: String,
}

pub async fn resolve_conflict(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(m): Tenant,
    Path((_, id)): Path<(String, i64)>,
    Json(input): Json<ConflictResolution>,
) -> Result<StatusCode, ApiError> {
    let replace = match input.action.as_str() {
        "keep" => false,
        "replace" => true,
        _ => {
            return Err(ApiError::bad_request(
                "action は keep か replace です",
                "action is keep or replace",
            ));
        }
    };
    let store = state.store.clone();
    let actor = actor(&p);
    crate::blocking(move || store.resolve_dose_conflict(m, id, replace, &input.reason, &actor))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
