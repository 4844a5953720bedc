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
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    AppState,
    api::actor,
    auth::{Principal, Tenant},
    error::{ApiError, QualityFinding, findings},
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

/// A dose as every answer shows it.
// `openvrs_service::disclosure::dose_json` writes it and the answers carry it as it is: this
// type only describes it (a test checks real answers against the description).
#[derive(Debug, ToSchema)]
#[schema(as = Dose)]
pub struct DoseBody {
    /// The dose's id (0 for a tablet's record not yet accepted).
    pub dose_id: i64,
    /// 1 when recorded, one more at each correction.
    pub version: i64,
    /// 接種回数.
    pub dose_number: u32,
    /// `given` or `not_given`.
    pub status: String,
    /// The vaccination date, `YYYY-MM-DD`.
    pub date: String,
    /// The product code of the catalogue.
    pub product: String,
    /// The product's name in the catalogue, if the code is known.
    #[schema(required = true)]
    pub product_name: Option<String>,
    pub lot: String,
    pub venue: String,
    pub doctor: String,
    /// Where it came from: `staff`, `tablet`, `csv` or `inquiry`.
    pub source: String,
    /// 券番号.
    #[schema(required = true)]
    pub voucher_number: Option<String>,
    /// 接種自治体コード.
    #[schema(required = true)]
    pub given_in: Option<String>,
    /// When it was recorded, Japan time (`YYYY-MM-DD hh:mm:ss`).
    pub recorded_at: String,
    /// The account that recorded it.
    pub recorded_by: String,
}

/// A dose written: its id, and the warnings staff should look at (errors refuse the write).
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenDose {
    pub dose_id: i64,
    pub warnings: Vec<QualityFinding>,
}

fn written(w: DoseWritten) -> Json<WrittenDose> {
    Json(WrittenDose {
        dose_id: w.id,
        warnings: findings(&w.warnings),
    })
}

/// A person's doses as they stand, and every earlier version of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonDoses {
    #[schema(value_type = Vec<DoseBody>)]
    pub doses: Vec<Value>,
    /// Earlier versions, oldest first.
    pub history: Vec<ReplacedDose>,
}

/// An earlier version of a dose: what it was, and who replaced it, when and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplacedDose {
    #[schema(value_type = DoseBody)]
    pub was: Value,
    /// `corrected` or `deleted`.
    pub change: &'static str,
    pub reason: String,
    /// Unix time in microseconds.
    pub changed_at: i64,
    /// The account that replaced it.
    pub changed_by: String,
}

pub async fn doses(
    State(state): State<AppState>,
    Path((m, a)): Path<(String, String)>,
) -> Result<Json<PersonDoses>, ApiError> {
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
    Ok(Json(PersonDoses {
        doses: current.iter().map(dose_json).collect(),
        history: history
            .iter()
            .map(|h| ReplacedDose {
                was: dose_json(&h.was),
                change: h.change.code(),
                reason: h.reason.clone(),
                changed_at: h.changed_at,
                changed_by: h.changed_by.clone(),
            })
            .collect(),
    }))
}

pub async fn add_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
    Json(input): Json<DoseInput>,
) -> Result<(StatusCode, Json<WrittenDose>), ApiError> {
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
) -> Result<Json<WrittenDose>, ApiError> {
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

/// Which identity fields a correction changed (their names, never their values).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangedFields {
    /// E.g. `name`, `birth_date`; empty when nothing differed.
    pub changed: Vec<&'static str>,
}

pub async fn correct_person(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
    Json(input): Json<PersonCorrection>,
) -> Result<Json<ChangedFields>, ApiError> {
    let (m, a) = target(&m, &a)?;
    let corrected = input.person(a)?;
    let store = state.store.clone();
    let actor = actor(&p);
    let fields =
        crate::blocking(move || store.correct_person(m, &corrected, &input.reason, &actor)).await?;
    Ok(Json(ChangedFields { changed: fields }))
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

/// Everything held about one person (開示): `person` (identity, My Number, flags, vouchers),
/// `doses`, `dose_history`, `changes`, `inquiries`, `provisions`, `certificates` (issued to
/// them) and `audit` (the operation-log entries that name them).
// `openvrs_service::disclosure::json` writes it and the answer carries it as it is; only its
// outline is described here.
#[derive(Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
#[allow(missing_debug_implementations)] // Not `Debug`: the identity and the My Number.
pub struct Disclosure(pub Value);

pub async fn disclose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((m, a)): Path<(String, String)>,
) -> Result<Json<Disclosure>, ApiError> {
    let (m, a) = target(&m, &a)?;
    let store = state.store.clone();
    let actor = actor(&p);
    let (d, catalogue) = crate::blocking(move || {
        let d = store.disclosure(m, &a, &actor)?;
        Ok((d, Catalogue::new(store.products()?)?))
    })
    .await?;
    let d = d.ok_or_else(ApiError::not_found)?;
    Ok(Json(Disclosure(disclosure::json(&d, &catalogue))))
}

/// One finding of the data-quality report: which dose of whom, and what is wrong with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportLine {
    /// 宛名番号 of the person.
    pub address_number: String,
    pub dose_id: i64,
    pub dose_number: u32,
    /// The rule's code, e.g. `interval_too_short`.
    pub rule: &'static str,
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Japanese / English.
    pub message: String,
}

/// The data-quality report: every finding on the municipality's doses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct QualityReport(pub Vec<ReportLine>);

pub async fn quality(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(m): Tenant,
) -> Result<Json<QualityReport>, ApiError> {
    let store = state.store.clone();
    let actor = actor(&p);
    let lines = crate::blocking(move || store.quality_report(m, &actor)).await?;
    Ok(Json(QualityReport(
        lines
            .iter()
            .map(|l| ReportLine {
                address_number: l.address.as_str().to_owned(),
                dose_id: l.dose_id,
                dose_number: l.dose_number,
                rule: l.finding.rule.code(),
                severity: l.finding.severity.code(),
                message: l.finding.to_string(),
            })
            .collect(),
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

/// What a targets file (接種対象者・接種券) did.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetsImported {
    /// Persons new to the municipality.
    pub inserted: u64,
    /// Persons whose identity or flags changed.
    pub updated: u64,
    pub unchanged: u64,
    /// Vouchers added or changed.
    pub vouchers_written: u64,
}

/// What a ledger file did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerImported {
    /// Rows read.
    pub rows: u64,
    /// Doses recorded.
    pub inserted: u64,
    /// Doses already recorded the same way.
    pub unchanged: u64,
    /// Rows recorded with a data-quality warning, each as `N行目 ... / row N ...`.
    pub warnings: Vec<String>,
}

/// What a flags file (転出・死亡・利用停止) did.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagsImported {
    /// Persons whose flags changed.
    pub changed: u64,
}

/// Runs an import of an uploaded file (all or nothing) off the async workers, counts its rows
/// for the metrics (`rows` of the answer) and answers what it did.
async fn upload<T: Send + 'static>(
    state: AppState,
    p: Principal,
    m: String,
    body: Bytes,
    file: &'static str,
    rows: fn(&T) -> u64,
    import: impl FnOnce(
        &dyn openvrs_store::Store,
        &openvrs_service::Open<'_>,
        MunicipalityCode,
        &openvrs_domain::audit::Actor,
    ) -> Result<T, openvrs_service::Failure>
    + Send
    + 'static,
) -> Result<Json<T>, ApiError> {
    let m = municipality(&m)?;
    let store = state.store.clone();
    let actor = actor(&p);
    let result = tokio::task::spawn_blocking(move || {
        let open =
            || Ok(Box::new(std::io::Cursor::new(body.clone())) as Box<dyn std::io::Read + Send>);
        import(&*store, &open, m, &actor)
    })
    .await
    .map_err(|_| ApiError::from(openvrs_store::StoreError::Corrupt("worker failed")))?;
    let result = result?;
    state.metrics.import_rows(file, rows(&result));
    Ok(Json(result))
}

pub async fn upload_targets(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(m): Path<String>,
    Query(q): Query<EncodingQuery>,
    body: Bytes,
) -> Result<Json<TargetsImported>, ApiError> {
    let encoding = q.get()?;
    let rows = |t: &TargetsImported| t.inserted + t.updated + t.unchanged;
    upload(
        state,
        p,
        m,
        body,
        "targets",
        rows,
        move |store, open, m, actor| {
            let s = openvrs_service::import_targets(store, open, m, encoding, actor)?;
            Ok(TargetsImported {
                inserted: s.inserted,
                updated: s.updated,
                unchanged: s.unchanged,
                vouchers_written: s.vouchers_written,
            })
        },
    )
    .await
}

pub async fn upload_ledger(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(m): Path<String>,
    Query(q): Query<EncodingQuery>,
    body: Bytes,
) -> Result<Json<LedgerImported>, ApiError> {
    let encoding = q.get()?;
    let rows = |l: &LedgerImported| l.rows;
    upload(
        state,
        p,
        m,
        body,
        "ledger",
        rows,
        move |store, open, m, actor| {
            let s = openvrs_service::import_ledger(store, open, m, encoding, actor)?;
            Ok(LedgerImported {
                rows: s.rows,
                inserted: s.inserted,
                unchanged: s.unchanged,
                warnings: s.warnings.iter().map(ToString::to_string).collect(),
            })
        },
    )
    .await
}

pub async fn upload_flags(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(m): Path<String>,
    Query(q): Query<EncodingQuery>,
    body: Bytes,
) -> Result<Json<FlagsImported>, ApiError> {
    let encoding = q.get()?;
    let rows = |f: &FlagsImported| f.changed;
    upload(
        state,
        p,
        m,
        body,
        "flags",
        rows,
        move |store, open, m, actor| {
            let changed = openvrs_service::import_flags(
                store,
                open,
                m,
                encoding,
                "CSVアップロード / uploaded flags file",
                actor,
            )?;
            Ok(FlagsImported { changed })
        },
    )
    .await
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

/// A tablet's record that disagrees with a recorded dose, waiting for staff.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DoseConflict)]
pub struct ConflictBody {
    pub conflict_id: i64,
    /// 宛名番号 of the person.
    pub address_number: String,
    /// The recorded dose it disagrees with.
    pub existing_dose_id: i64,
    /// The tablet's record (`dose_id` 0, `version` 0).
    #[schema(value_type = DoseBody)]
    pub proposed: Value,
    /// The venue device's account.
    pub device: String,
    /// Unix time in microseconds.
    pub at: i64,
}

/// The tablet records waiting for the municipality's staff.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct DoseConflicts(pub Vec<ConflictBody>);

/// The tablet records waiting for this municipality's staff.
pub async fn conflicts(
    State(state): State<AppState>,
    Tenant(m): Tenant,
) -> Result<Json<DoseConflicts>, ApiError> {
    let store = state.store.clone();
    let (queue, catalogue) =
        crate::blocking(move || Ok((store.dose_conflicts(m)?, Catalogue::new(store.products()?)?)))
            .await?;
    Ok(Json(DoseConflicts(
        queue
            .iter()
            .map(|c| ConflictBody {
                conflict_id: c.id,
                address_number: c.address.as_str().to_owned(),
                existing_dose_id: c.existing_dose_id,
                proposed: disclosure::dose_json(
                    &StoredDose {
                        id: 0,
                        version: 0,
                        dose: c.proposed.clone(),
                        recorded_at: c.at,
                        recorded_by: c.device.clone(),
                    },
                    &catalogue,
                ),
                device: c.device.clone(),
                at: c.at,
            })
            .collect(),
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
