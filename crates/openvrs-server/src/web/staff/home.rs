//! The staff's home page: the municipality's counts today and what is waiting (conflicts,
//! quality warnings, bulk inquiries, security events), and the cached count of quality warnings
//! it shows.

use super::*;

#[derive(Template)]
#[template(path = "staff_home.html")]
struct StaffHome {
    chrome: Chrome,
    code: String,
    name: String,
    persons: u64,
    vouchers: u64,
    doses: Vec<(u32, u64)>,
    moved_out: u64,
    deceased: u64,
    suspended: u64,
    conflicts: usize,
    /// Data-quality warnings over the current doses.
    warnings: usize,
    /// The latest bulk inquiries: (started, state, rows done, summary).
    jobs: Vec<(String, String, String, String)>,
    kiosk: bool,
    /// (when, kind, user)
    events: Vec<(String, String, String)>,
}

/// `GET /m/{municipality}/`: today's counts and what is waiting.
pub(crate) async fn staff_home(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/"));
    let m = municipality(&code)?;
    let store = state.store.clone();
    let (stats, conflicts, events, town, jobs) = blocking(move || {
        Ok((
            store.stats(m)?,
            store.dose_conflicts(m)?.len(),
            store.security_events(Some(m), 10)?,
            store.municipalities()?.into_iter().find(|t| t.code == m),
            store.inquiry_jobs(m, 5)?,
        ))
    })
    .await?;
    let warnings = state.quality_counts.get(&state, &p, m).await?;
    let town = town.ok_or_else(ApiError::not_found)?;
    render(&StaffHome {
        chrome: chrome.clone(),
        code: code.clone(),
        name: town.name,
        persons: stats.persons,
        vouchers: stats.vouchers,
        doses: stats.doses_by_number,
        moved_out: stats.moved_out,
        deceased: stats.deceased,
        suspended: stats.use_suspended,
        conflicts,
        warnings,
        jobs: jobs
            .iter()
            .map(|j| {
                (
                    when(j.created_at),
                    labels::label(chrome.lang, &j.state),
                    format!("{} / {}", j.done_rows, j.total_rows),
                    openvrs_service::inquiry::summary(&j.counts),
                )
            })
            .collect(),
        kiosk: town.kiosk,
        events: events
            .into_iter()
            .map(|e| {
                let kind = labels::label(chrome.lang, e.kind.code());
                (when(e.at), kind, e.user.unwrap_or_default())
            })
            .collect(),
    })
}

/// Data-quality warnings per municipality, counted at most every few minutes.
#[derive(Debug, Default)]
pub struct QualityCounts {
    last:
        std::sync::Mutex<std::collections::HashMap<MunicipalityCode, (std::time::Instant, usize)>>,
}

impl QualityCounts {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(300);

    async fn get(
        &self,
        state: &AppState,
        p: &Principal,
        m: MunicipalityCode,
    ) -> Result<usize, ApiError> {
        if let Some((at, n)) = self.last.lock().unwrap_or_else(|e| e.into_inner()).get(&m)
            && at.elapsed() < Self::FRESH
        {
            return Ok(*n);
        }
        let (store, actor) = (state.store.clone(), api::actor(p));
        let n = blocking(move || store.quality_report(m, &actor))
            .await?
            .len();
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(m, (std::time::Instant::now(), n));
        Ok(n)
    }
}
