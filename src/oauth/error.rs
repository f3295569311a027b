//! OAuth errors in RFC 6749 form (`{"error", "error_description"}`), mapped
//! to HTTP in one place.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// The body of every OAuth error answer (RFC 6749 section 5.2), and its
/// schema in the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// The RFC 6749 / 7591 / 8628 error code (`invalid_request`,
    /// `invalid_client`, `invalid_grant`, `authorization_pending`, ...).
    pub error: String,
    /// What went wrong, in words.
    pub error_description: String,
}

impl From<&OAuthError> for OAuthErrorBody {
    fn from(e: &OAuthError) -> Self {
        Self {
            error: e.code.to_string(),
            error_description: e.description.clone(),
        }
    }
}

/// An OAuth protocol error.
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// RFC 6749 / 7591 / 8628 error code.
    pub code: &'static str,
    /// Human-readable description.
    pub description: String,
    /// HTTP status.
    pub status: StatusCode,
}

impl OAuthError {
    fn new(code: &'static str, status: StatusCode, d: impl Into<String>) -> Self {
        Self {
            code,
            description: d.into(),
            status,
        }
    }
    /// `invalid_request` (400).
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_client` (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", StatusCode::UNAUTHORIZED, d)
    }
    /// `invalid_grant` (400).
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", StatusCode::BAD_REQUEST, d)
    }
    /// `unauthorized_client` (400).
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::BAD_REQUEST, d)
    }
    /// `unsupported_grant_type` (400).
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_scope` (400).
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_target` (400, RFC 8707).
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", StatusCode::BAD_REQUEST, d)
    }
    /// `access_denied` (403).
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new("access_denied", StatusCode::FORBIDDEN, d)
    }
    /// `invalid_token` (401).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new("invalid_token", StatusCode::UNAUTHORIZED, d)
    }
    /// `invalid_redirect_uri` (400, RFC 7591).
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new("invalid_redirect_uri", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_client_metadata` (400, RFC 7591).
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new("invalid_client_metadata", StatusCode::BAD_REQUEST, d)
    }
    /// `temporarily_unavailable` (429 for rate limits).
    pub fn slow_down(d: impl Into<String>) -> Self {
        Self::new("temporarily_unavailable", StatusCode::TOO_MANY_REQUESTS, d)
    }
    /// Device flow states (RFC 8628), all 400.
    pub fn device(code: &'static str, d: impl Into<String>) -> Self {
        Self::new(code, StatusCode::BAD_REQUEST, d)
    }
    /// `temporarily_unavailable` (503): a dependency we need is down or not
    /// configured; the description says which, so an operator can act.
    pub fn unavailable(d: impl Into<String>) -> Self {
        Self::new("temporarily_unavailable", StatusCode::SERVICE_UNAVAILABLE, d)
    }
    /// No upstream login is configured, so nobody can log in (503, named).
    pub fn no_login_provider() -> Self {
        Self::unavailable("no login provider: set GITHUB_CLIENT_ID or OIDC_ISSUER")
    }
    /// The request body could not be taken: over the size limit (413) or
    /// unreadable (400), as an RFC 6749 error instead of a plain-text reply.
    pub fn body_rejected(status: StatusCode, d: impl Into<String>) -> Self {
        Self::new("invalid_request", status, d)
    }
    /// `server_error` (500); details are logged, not returned.
    pub fn server(d: impl Into<String>) -> Self {
        let d = d.into();
        tracing::error!(error = %d, "OAuth server error");
        Self::new("server_error", StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<StoreError> for OAuthError {
    /// A store that cannot be reached is an outage (503, retry later); any
    /// other store failure is ours (500, logged).
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "OAuth request failed: store unavailable");
                Self::unavailable("the store is unavailable; retry later")
            }
            other => Self::server(other.to_string()),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(OAuthErrorBody::from(&self))).into_response();
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            let v = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.code,
                self.description.replace('"', "'")
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        r
    }
}

/// Result alias.
pub type OAuthResult<T> = Result<T, OAuthError>;
