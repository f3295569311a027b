//! The control plane's HTTP front end (axum): admin API under `/api/v1/`,
//! `/health`, `/metrics`, and the MCP endpoint `/mcp` (`crate::mcp`).
//! Handlers only extract, call `manage`, and shape.

mod certs;
pub mod error;
mod logs;
mod oauth;
mod oauth_admin;
pub mod openapi;
mod proxies;
mod resources;
mod routes;
pub mod service;
mod services;
mod tokens;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::manage::{Caller, Manager};
use crate::metrics;
use error::{ApiError, ApiResult};
use openapi::{Api, Op};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Management operations.
    pub manager: Manager,
    /// When the process started, for `/health`.
    pub started: Instant,
    /// Changes when the process begins to stop: long-lived streams end on it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The authenticated caller, from `Authorization: Bearer`.
pub struct Authed(pub Caller);

impl FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let bearer = header.and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest)
        });
        let caller = state.manager.authenticate(bearer).await?;
        if caller.read_only && !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD) {
            return Err(
                crate::manage::ManageError::Forbidden("this token may only read (scope user); writes need the admin scope".into()).into(),
            );
        }
        Ok(Authed(caller))
    }
}

/// Largest request body the admin API reads (axum's default limit): a
/// certificate chain with its key fits many times over.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The request body, or a 400 (413 when over [`MAX_BODY_BYTES`]) in the API's error shape.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string())
        }
    })
}

/// Parses a JSON object; malformed JSON or another JSON type is a 400.
fn json_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("malformed JSON body: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    Ok(v)
}

/// A JSON object body; malformed JSON is a 400 in the API's error shape.
pub struct ApiJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ApiJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiJson(json_object(&body_bytes(req, state).await?)?))
    }
}

/// A JSON object body read as the request type `T`: malformed JSON or
/// another JSON type is a 400; a field `T` refuses (unknown, fixed at
/// creation, of the wrong type) is a 422 naming it.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let v = json_object(&body_bytes(req, state).await?)?;
        Ok(Body(crate::manage::from_json(v)?))
    }
}

/// Like [`Body`], but an empty body reads as `{}` (every field optional).
pub struct BodyOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for BodyOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let v = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            json_object(&bytes)?
        };
        Ok(BodyOrEmpty(crate::manage::from_json(v)?))
    }
}

/// Like [`ApiJson`], but an empty body reads as `{}` (optional options).
pub struct ApiJsonOrEmpty(pub Value);

impl<S: Send + Sync> FromRequest<S> for ApiJsonOrEmpty {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(json!({})));
        }
        Ok(Self(json_object(&bytes)?))
    }
}

/// The answer of `/health`, healthy (200) or not (503).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// `healthy` or `unhealthy`.
    status: &'static str,
    /// `redis` or `embedded`.
    store: &'static str,
    /// `ok`, `unreachable`, or `not used` (embedded store).
    redis: &'static str,
    /// Why the store is unreachable (unhealthy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Seconds since the process started.
    uptime_seconds: u64,
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let uptime_seconds = state.started.elapsed().as_secs();
    let redis = matches!(state.manager.config.store, crate::config::StoreBackend::Redis);
    let store = if redis { "redis" } else { "embedded" };
    let (code, h) = match state.manager.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Health {
                status: "healthy",
                store,
                redis: if redis { "ok" } else { "not used" },
                message: None,
                uptime_seconds,
            },
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Health {
                status: "unhealthy",
                store,
                redis: if redis { "unreachable" } else { "not used" },
                message: Some(e.to_string()),
                uptime_seconds,
            },
        ),
    };
    (code, Json(h)).into_response()
}

async fn prometheus_text() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn count_requests(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let resp = next.run(req).await;
    metrics::API_REQUESTS
        .with_label_values(&[&method, &route, resp.status().as_str()])
        .inc();
    resp
}

/// Every route of the control plane, each with its OpenAPI entry.
fn api() -> Api {
    let mut api = Api::new()
        .at("/health")
        .get(
            health,
            Op::new("Liveness and store reachability").public().ok::<Health>(StatusCode::OK),
        )
        .done()
        .at("/metrics")
        .get(
            prometheus_text,
            Op::new("Prometheus metrics").public().ok_media(StatusCode::OK, "text/plain"),
        )
        .done();
    api = tokens::routes(api);
    api = proxies::routes(api);
    api = routes::routes(api);
    api = certs::routes(api);
    api = services::routes(api);
    api = oauth::routes(api);
    api = oauth_admin::routes(api);
    api = resources::routes(api);
    api = logs::routes(api);
    crate::mcp::routes(api)
}

/// The control plane's routes without state or fallback: what the router
/// serves, for tests that compare it with the OpenAPI document.
pub fn routes() -> Router<Arc<AppState>> {
    api().finish().0
}

/// The whole control plane router.
pub fn router(state: Arc<AppState>) -> Router {
    routes()
        .fallback(not_found)
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

/// Shorthand for handlers returning JSON.
pub type JsonResult = ApiResult<(StatusCode, Json<Value>)>;

/// Serializes a value into a JSON response with `status`.
pub fn reply<T: serde::Serialize>(status: StatusCode, v: T) -> JsonResult {
    serde_json::to_value(v)
        .map(|v| (status, Json(v)))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string()))
}
