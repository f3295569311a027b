//! The admin API's one error type and its single mapping to HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::manage::ManageError;

/// An error answered as `{"error", "message"[, "field"]}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Unauthorized(m) => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
            ManageError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            ManageError::NotFound(w) => Self::new(StatusCode::NOT_FOUND, "not_found", format!("{w} not found")),
            ManageError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            ManageError::Invalid(v) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "validation_error",
                message: v.to_string(),
                field: Some(v.field),
            },
            ManageError::Store(m) => {
                tracing::error!(error = %m, "store failure in admin API");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store is unavailable, try again",
                )
            }
            ManageError::Engine(m) => {
                tracing::warn!(error = %m, "Docker engine failure in admin API");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable", m)
            }
            ManageError::OAuth(e) => Self::new(e.status, e.code, e.description),
            ManageError::Seal(e) => {
                tracing::error!(error = %e, "cannot open a sealed secret");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "a stored secret cannot be decrypted",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "message": self.message});
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
