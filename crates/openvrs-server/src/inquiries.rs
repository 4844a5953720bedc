//! Inquiry and provision between municipalities on the LGWAN listener, for staff of the
//! asking municipality: single inquiries, bulk jobs with progress and a result file, attaching
//! what came back, and the provision records of the providing side.

use std::net::SocketAddr;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{ConnectInfo, Path, Query, State},
    http::StatusCode,
    response::Response,
};
use openvrs_domain::ids::{AddressNumber, MunicipalityCode, MyNumber};
use openvrs_service::{disclosure::dose_json, inquiry};
use openvrs_store::{Inquiry, InquiryJob, InquiryRequest, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    AppState,
    api::actor,
    auth::{Principal, Tenant, security_event},
    blocking,
    error::ApiError,
    records::{EncodingQuery, csv_download, municipality},
};

/// A single inquiry: whose records, from which municipality, for which of our residents, and
/// on what basis.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct InquiryInput {
    /// 照会先: the municipality the person moved from.
    pub source_municipality: String,
    /// The person's My Number (12 digits).
    pub my_number: String,
    /// Our own person (宛名番号) the records are for.
    pub address_number: String,
    /// The legal basis, or the person's consent.
    pub basis: String,
}

/// Which inquiries to attach.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AttachInput {
    pub inquiry_ids: Vec<i64>,
}

/// An inquiry made, and what it brought back: doses only, never the identity or the My
/// Number.
#[derive(Debug, Serialize, ToSchema)]
pub struct InquiryResult {
    pub id: i64,
    /// The bulk job, for a row of a bulk inquiry.
    #[schema(required = true)]
    pub job: Option<i64>,
    /// The line of the bulk file.
    #[schema(required = true)]
    pub row: Option<u64>,
    /// 照会先 (自治体コード); none when a bulk row could not be read.
    #[schema(required = true)]
    pub source_municipality: Option<String>,
    /// Our own person (宛名番号) the records are for.
    #[schema(required = true)]
    pub address_number: Option<String>,
    /// The legal basis, or the person's consent.
    pub basis: String,
    /// `found`, `not_found`, `suspended`, `format_error` or `refused`.
    pub status: &'static str,
    /// The status in Japanese (該当あり, 該当なし, ...).
    pub status_label: &'static str,
    /// Why a bulk row could not be read.
    #[schema(required = true)]
    pub message: Option<String>,
    /// The doses as the source provided them.
    #[schema(value_type = Vec<crate::records::DoseBody>)]
    pub doses: Vec<Value>,
    /// The account that asked.
    pub asked_by: String,
    /// When, Japan time.
    #[schema(required = true)]
    pub at: Option<String>,
    /// When the doses were attached to our records, Japan time.
    #[schema(required = true)]
    pub attached_at: Option<String>,
}

impl InquiryResult {
    fn new(i: &Inquiry, catalogue: &openvrs_domain::product::Catalogue) -> Self {
        let jst = |micros| openvrs_domain::date::jst_from_micros(micros).map(|t| t.to_string());
        Self {
            id: i.id,
            job: i.job,
            row: i.row,
            source_municipality: i.source.map(|s| s.to_string()),
            address_number: i.address.as_ref().map(|a| a.as_str().to_owned()),
            basis: i.basis.clone(),
            status: i.status.code(),
            status_label: i.status.label(),
            message: i.message.clone(),
            doses: i.doses.iter().map(|d| dose_json(d, catalogue)).collect(),
            asked_by: i.asked_by.clone(),
            at: jst(i.at),
            attached_at: i.attached_at.and_then(jst),
        }
    }
}

/// The single inquiries made, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Inquiries(pub Vec<InquiryResult>);

/// A bulk inquiry's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct InquiryJobProgress {
    pub id: i64,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Rows of the file.
    pub total_rows: u64,
    /// Rows answered so far.
    pub done_rows: u64,
    /// Rows per status so far, by status code (`found`, `not_found`, ...).
    pub counts: std::collections::BTreeMap<&'static str, u64>,
    /// The counts in one line, Japanese.
    pub summary: String,
    /// Why the job failed.
    #[schema(required = true)]
    pub error: Option<String>,
}

impl From<&InquiryJob> for InquiryJobProgress {
    fn from(j: &InquiryJob) -> Self {
        Self {
            id: j.id,
            state: j.state.clone(),
            total_rows: j.total_rows,
            done_rows: j.done_rows,
            counts: j.counts.iter().map(|(s, n)| (s.code(), *n)).collect(),
            summary: inquiry::summary(&j.counts),
            error: j.error.clone(),
        }
    }
}

/// What attaching inquiries did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachResult {
    /// Inquiries attached.
    pub inquiries: u64,
    /// Doses added to our records.
    pub doses: u64,
    /// Doses already recorded the same way.
    pub unchanged: u64,
}

impl From<openvrs_store::Attached> for AttachResult {
    fn from(a: openvrs_store::Attached) -> Self {
        Self {
            inquiries: a.inquiries,
            doses: a.doses,
            unchanged: a.unchanged,
        }
    }
}

impl std::fmt::Debug for InquiryInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InquiryInput({} -> .., ..)", self.source_municipality)
    }
}

/// `POST .../inquiries`: one inquiry, answered at once.
pub async fn ask(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    from: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(m): Path<String>,
    Json(input): Json<InquiryInput>,
) -> Result<Json<InquiryResult>, ApiError> {
    let client = from.as_ref().map(|c| c.0.0.ip().to_string());
    let (answer, catalogue) = single(&state, &p, client, &m, input).await?;
    Ok(Json(InquiryResult::new(&answer, &catalogue)))
}

/// One inquiry with its guard rails (volume limits, fishing alerts and their security
/// events); the API and the inquiry page both come here.
pub(crate) async fn single(
    state: &AppState,
    p: &Principal,
    client: Option<String>,
    m: &str,
    input: InquiryInput,
) -> Result<(Inquiry, openvrs_domain::product::Catalogue), ApiError> {
    let asker = municipality(m)?;
    let request = InquiryRequest {
        source: MunicipalityCode::parse_restoring_zero(&input.source_municipality)?,
        my_number: MyNumber::parse(&input.my_number)?,
        address: AddressNumber::parse(&input.address_number)?,
        basis: input.basis,
    };
    let actor = actor(p);
    let (store, limits) = (state.store.clone(), state.security.inquiry);
    let (asked, catalogue) = {
        let actor = actor.clone();
        blocking(move || {
            let asked = inquiry::ask(&*store, asker, &request, &actor, &limits)?;
            let catalogue = openvrs_domain::product::Catalogue::new(store.products()?)
                .map_err(StoreError::from)?;
            Ok((asked, catalogue))
        })
        .await?
    };
    for alert in asked.alerts {
        let who = Some(actor.user.clone());
        security_event(
            state,
            alert.kind,
            Some(asker),
            who,
            client.clone(),
            alert.detail,
        )
        .await;
    }
    state.metrics.inquiry(match asked.answer {
        Ok(_) => "answered",
        Err(_) => "refused",
    });
    match asked.answer {
        Ok(answer) => Ok((answer, catalogue)),
        Err(inquiry::Refusal::NotOwnResident) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_own_resident",
            "照会元の宛名番号が自団体の住民にありません(照会は自団体の住民についてのみ行えます。セキュリティ担当に通知しました)",
            "the address number is not one of your residents (an inquiry is for your own resident; the security officers were notified)",
        )),
        Err(inquiry::Refusal::Volume) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "inquiry_volume",
            "照会の件数が上限に達しました(セキュリティ担当に通知しました)",
            "too many inquiries (the security officers were notified)",
        )),
    }
}

/// `GET .../inquiries`: the single inquiries, newest first.
pub async fn list(
    State(state): State<AppState>,
    Tenant(asker): Tenant,
) -> Result<Json<Inquiries>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let catalogue =
            openvrs_domain::product::Catalogue::new(store.products()?).map_err(StoreError::from)?;
        let all = store.inquiries(asker, None)?;
        Ok(Json(Inquiries(
            all.iter()
                .map(|i| InquiryResult::new(i, &catalogue))
                .collect(),
        )))
    })
    .await
}

/// `POST .../inquiries/attach`: attach what the given inquiries brought back.
pub async fn attach(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(asker): Tenant,
    Json(input): Json<AttachInput>,
) -> Result<Json<AttachResult>, ApiError> {
    let (store, actor) = (state.store.clone(), actor(&p));
    let done =
        blocking(move || store.attach_inquiries(asker, &input.inquiry_ids, None, &actor)).await?;
    Ok(Json(done.into()))
}

/// Query of a bulk upload.
#[derive(Debug, Deserialize)]
pub struct BulkQuery {
    pub basis: String,
    pub encoding: Option<String>,
}

/// A bulk inquiry accepted; it runs in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStarted {
    /// The job's id.
    pub job: i64,
    /// Where to follow its progress (`GET`).
    pub progress: String,
}

/// `POST .../inquiry-jobs?basis=...`: a bulk inquiry file; answered at once with the job,
/// which runs in the background.
pub async fn start_job(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(asker): Tenant,
    Query(q): Query<BulkQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<JobStarted>), ApiError> {
    let encoding = EncodingQuery {
        encoding: q.encoding,
    }
    .get()?;
    if q.basis.trim().is_empty() {
        return Err(ApiError::bad_request(
            "照会の根拠(basis)を指定してください",
            "give the basis of the inquiries",
        ));
    }
    let rows = inquiry::read_bulk(std::io::Cursor::new(body), encoding, &q.basis)?;
    let (store, actor) = (state.store.clone(), actor(&p));
    let job = {
        let (store, actor) = (store.clone(), actor.clone());
        let total = rows.len() as u64;
        blocking(move || store.create_inquiry_job(asker, total, &actor)).await?
    };
    let job_state = state.clone();
    tokio::spawn(async move {
        // The job records its own failure; progress is read from the store. Rows naming
        // someone who is not the municipality's resident are refused, and reported.
        let asked_by = actor.user.clone();
        let alert =
            blocking(move || inquiry::run_bulk(&*store, asker, job, &rows, &actor, &mut |_, _| {}))
                .await;
        if let Ok(Some(alert)) = alert {
            let who = Some(asked_by);
            security_event(&job_state, alert.kind, Some(asker), who, None, alert.detail).await;
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(JobStarted {
            job,
            progress: format!("/api/municipalities/{asker}/inquiry-jobs/{job}"),
        }),
    ))
}

/// `GET .../inquiry-jobs/{job}`: progress and counts.
pub async fn job(
    State(state): State<AppState>,
    Tenant(asker): Tenant,
    Path((_, job)): Path<(String, i64)>,
) -> Result<Json<InquiryJobProgress>, ApiError> {
    let store = state.store.clone();
    let j = blocking(move || store.inquiry_job(asker, job))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(InquiryJobProgress::from(&j)))
}

/// `GET .../inquiry-jobs/{job}/result.csv`: the result file (Shift_JIS unless `?encoding=utf8`).
pub async fn result(
    State(state): State<AppState>,
    Tenant(asker): Tenant,
    Path((_, job)): Path<(String, i64)>,
    Query(q): Query<EncodingQuery>,
) -> Result<Response, ApiError> {
    let encoding = q.download()?;
    let store = state.store.clone();
    let j = {
        let store = store.clone();
        blocking(move || store.inquiry_job(asker, job))
            .await?
            .ok_or_else(ApiError::not_found)?
    };
    if j.state == "running" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_running",
            "照会はまだ実行中です",
            "the job is still running",
        ));
    }
    let bytes = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        inquiry::bulk_result(&*store, asker, job, encoding, &mut out).map(|_| out)
    })
    .await
    .map_err(|_| ApiError::from(StoreError::Corrupt("worker failed")))??;
    Ok(csv_download(
        encoding,
        &format!("inquiry-{asker}-{job}.csv"),
        bytes,
    ))
}

/// `POST .../inquiry-jobs/{job}/attach`: attach every found row of a job in one action.
pub async fn attach_job(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Tenant(asker): Tenant,
    Path((_, job)): Path<(String, i64)>,
) -> Result<Json<AttachResult>, ApiError> {
    let (store, actor) = (state.store.clone(), actor(&p));
    let done = blocking(move || {
        store
            .inquiry_job(asker, job)?
            .map(|_| store.attach_inquiries(asker, &[], Some(job), &actor))
            .transpose()
    })
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(Json(done.into()))
}

/// One 情報提供等の記録: an answer this municipality gave another about one of its persons.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisionRecord {
    pub id: i64,
    /// When, Japan time.
    #[schema(required = true)]
    pub at: Option<String>,
    /// The asking municipality (自治体コード).
    pub to_municipality: String,
    /// The account that asked, there.
    pub asked_by: String,
    /// The asking municipality's inquiry id.
    pub inquiry_id: i64,
    /// Our own person (宛名番号).
    pub address_number: String,
    /// What the answer was: `found`, `not_found`, `suspended`, ...
    pub status: &'static str,
    /// Doses provided.
    pub records: u64,
    /// The basis the asker gave.
    pub basis: String,
}

/// The provision records, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Provisions(pub Vec<ProvisionRecord>);

/// `GET .../provisions`: 情報提供等の記録, newest first.
pub async fn provisions(
    State(state): State<AppState>,
    Tenant(provider): Tenant,
) -> Result<Json<Provisions>, ApiError> {
    let store = state.store.clone();
    let all = blocking(move || store.provisions(provider, None)).await?;
    Ok(Json(Provisions(
        all.iter()
            .map(|p| ProvisionRecord {
                id: p.id,
                at: openvrs_domain::date::jst_from_micros(p.at).map(|t| t.to_string()),
                to_municipality: p.asked_by_municipality.to_string(),
                asked_by: p.asked_by.clone(),
                inquiry_id: p.inquiry_id,
                address_number: p.address.as_str().to_owned(),
                status: p.status.code(),
                records: p.record_count,
                basis: p.basis.clone(),
            })
            .collect(),
    )))
}
