//! The one HTTP error type: logs the cause, shows the client a safe bilingual message.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use openvrs_store::StoreError;
use serde::Serialize;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Every finding or bad row, when there are several.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, ja: &str, en: &str) -> Self {
        Self {
            status,
            code,
            message: format!("{ja} / {en}"),
            details: None,
        }
    }

    /// Also the answer for another municipality's data: the two cannot be told apart.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "見つかりません",
            "not found",
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "ログインが必要です",
            "sign-in required",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "この操作の権限がありません",
            "not allowed for this account",
        )
    }

    /// Something on our side; its cause is logged, never shown.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "内部エラーです",
            "internal error",
        )
    }

    pub fn bad_request(ja: &str, en: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", ja, en)
    }
}

/// What every refusal and failure answers (4xx, 5xx), whatever the route. (A request the
/// framework cannot read at all, such as a body that is not JSON where JSON is expected, may
/// instead be answered in plain text.)
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code to branch on, e.g. `not_found`, `unauthorized`, `quality`, `rows`, `busy`.
    pub error: &'static str,
    /// What happened, Japanese then English: `日本語 / English`.
    pub message: String,
    /// Every finding (`quality`: `QualityFinding` objects) or every bad row (`rows`: strings),
    /// when there are several.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<Value>)]
    pub details: Option<serde_json::Value>,
}

/// A data-quality finding as the API shows it (errors and warnings alike).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QualityFinding {
    /// The rule's code, e.g. `future_date`, `lot_format`.
    pub rule: &'static str,
    /// `error` (refused) or `warning` (recorded; staff should look).
    pub severity: &'static str,
    /// Japanese / English.
    pub message: String,
}

/// Data-quality findings as the API shows them.
pub fn findings(findings: &[openvrs_domain::quality::Finding]) -> Vec<QualityFinding> {
    findings
        .iter()
        .map(|f| QualityFinding {
            rule: f.rule.code(),
            severity: f.severity.code(),
            message: f.to_string(),
        })
        .collect()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) | StoreError::UnknownMunicipality(_) => Self::not_found(),
            StoreError::Shredded(_) => Self {
                status: StatusCode::GONE,
                code: "shredded",
                message: e.to_string(),
                details: None,
            },
            StoreError::Conflict(m) => Self {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: m.to_owned(),
                details: None,
            },
            StoreError::Invalid(i) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: i.kind,
                message: i.to_string(),
                details: None,
            },
            StoreError::Quality(ref findings) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "quality",
                message: e.to_string(),
                details: Some(json!(self::findings(findings))),
            },
            StoreError::Busy => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "busy",
                message: e.to_string(),
                details: None,
            },
            StoreError::Unavailable => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "database_unavailable",
                message: e.to_string(),
                details: None,
            },
            StoreError::Rejected(rows) => {
                openvrs_service::Failure::Rows(rows.iter().map(ToString::to_string).collect())
                    .into()
            }
            other => {
                // Store errors carry no personal values; still, the client sees none of it.
                tracing::error!(error = %other, "store error");
                Self::internal()
            }
        }
    }
}

impl From<openvrs_service::Failure> for ApiError {
    fn from(f: openvrs_service::Failure) -> Self {
        match f {
            openvrs_service::Failure::Rows(ref rows) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "rows",
                message: f.to_string(),
                details: Some(json!(rows)),
            },
            openvrs_service::Failure::Store(e) => e.into(),
            // Already bilingual.
            openvrs_service::Failure::Io(message) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "unreadable",
                message,
                details: None,
            },
        }
    }
}

impl From<openvrs_domain::Invalid> for ApiError {
    fn from(i: openvrs_domain::Invalid) -> Self {
        StoreError::Invalid(i).into()
    }
}

/// An error's message, left on its response for the layer that shows a page's errors as pages
/// (`web::error_pages`).
#[derive(Debug, Clone)]
pub struct Shown(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let shown = Shown(self.message.clone());
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.code,
                message: self.message,
                details: self.details,
            }),
        )
            .into_response();
        response.extensions_mut().insert(shown);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection to the database busy: a clear 503 in both languages, not a 500.
    #[test]
    fn a_busy_database_is_a_503_that_says_so() {
        let e = ApiError::from(StoreError::Busy);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "busy")
        );
        assert!(
            e.message.contains("使用中") && e.message.contains("try again"),
            "{}",
            e.message
        );
    }
}
