//! The one HTTP error type: logs the cause, shows the client a safe bilingual message.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use openvrs_store::StoreError;
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

/// Data-quality findings as the API shows them (errors and warnings alike).
pub fn findings_json(findings: &[openvrs_domain::quality::Finding]) -> serde_json::Value {
    json!(
        findings
            .iter()
            .map(|f| json!({
                "rule": f.rule.code(),
                "severity": f.severity.code(),
                "message": f.to_string(),
            }))
            .collect::<Vec<_>>()
    )
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
                details: Some(findings_json(findings)),
            },
            StoreError::Busy => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "busy",
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
            Json(match self.details {
                None => json!({ "error": self.code, "message": self.message }),
                Some(d) => json!({ "error": self.code, "message": self.message, "details": d }),
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
