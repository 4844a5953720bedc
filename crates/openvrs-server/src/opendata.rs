//! The open data on the internet listener (`/opendata/{latest|YYYY-MM-DD}/{file}`): the
//! national counts as files, computed from the store at most every few minutes and kept in
//! memory. Counts only: the internet never sees a person.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use openvrs_service::opendata::{self, Publish, Row};

use crate::{AppState, blocking, error::ApiError};

/// How long computed counts are served before they are counted again.
const FRESH: Duration = Duration::from_secs(300);

/// The counts last computed, and when.
#[derive(Debug, Default)]
pub struct Cache {
    last: Mutex<Option<(Instant, Arc<Vec<Row>>)>>,
}

/// The current counts (from the cache while fresh).
pub(crate) async fn rows(state: &AppState) -> Result<Arc<Vec<Row>>, ApiError> {
    if let Some((at, rows)) = &*state
        .opendata
        .last
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        && at.elapsed() < FRESH
    {
        return Ok(rows.clone());
    }
    let store = state.store.clone();
    let rows = Arc::new(blocking(move || opendata::collect(&*store)).await?);
    *state
        .opendata
        .last
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), rows.clone()));
    Ok(rows)
}

/// `GET /opendata/{day}/{file}`: `prefecture.ndjson`, `summary_by_date.csv` or
/// `summary_by_prefecture.csv`, as of `latest` or of a day (`YYYY-MM-DD`: vaccinations up to
/// and including it).
pub async fn file(
    State(state): State<AppState>,
    Path((day, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let until = match day.as_str() {
        "latest" => None,
        d => Some(
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|_| ApiError::not_found())?,
        ),
    };
    let publish = Publish {
        until,
        suppress_below: state.opendata_suppress_below,
    };
    let write: fn(&[Row], Publish) -> String = match file.as_str() {
        "prefecture.ndjson" => opendata::prefecture_ndjson,
        "summary_by_date.csv" => opendata::summary_by_date_csv,
        "summary_by_prefecture.csv" => opendata::summary_by_prefecture_csv,
        _ => return Err(ApiError::not_found()),
    };
    let kind = if file.ends_with(".ndjson") {
        "application/x-ndjson"
    } else {
        "text/csv; charset=utf-8"
    };
    let rows = rows(&state).await?;
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        write(&rows, publish),
    )
        .into_response())
}
