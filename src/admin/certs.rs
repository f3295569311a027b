//! `/api/v1/certificates/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::{both, reply, ApiJson, AppState, Authed, JsonResult};

async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_certs(&c).await?)
}
async fn upload(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.upload_cert(&c, b).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_cert(&c, &n).await?)
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    s.manager.delete_cert(&c, &n).await?;
    reply(StatusCode::OK, json!({"status": "deleted", "cert_name": n}))
}

/// Adds the certificate endpoints.
pub fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    both(r, "/api/v1/certificates/", get(list))
        .route("/api/v1/certificates/upload", post(upload))
        .route("/api/v1/certificates/{cert_name}", get(show).delete(delete))
}
