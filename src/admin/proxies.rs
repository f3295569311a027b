//! `/api/v1/proxy/targets/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::{both, reply, ApiJson, ApiJsonOrEmpty, AppState, Authed, JsonResult};

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.create_proxy(&c, b).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_proxies(&c).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_proxy(&c, &h).await?)
}
async fn update(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.update_proxy(&c, &h, b).await?)
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>) -> JsonResult {
    s.manager.delete_proxy(&c, &h).await?;
    reply(StatusCode::OK, json!({"status": "deleted", "hostname": h.to_ascii_lowercase()}))
}

async fn cert_generate(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(h): Path<String>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty,
) -> JsonResult {
    reply(StatusCode::ACCEPTED, s.manager.proxy_cert_generate(&c, &h, b).await?)
}
async fn cert_attach(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.proxy_cert_attach(&c, &h, b).await?)
}

/// Adds the proxy endpoints.
pub fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    both(r, "/api/v1/proxy/targets/", get(list).post(create))
        .route("/api/v1/proxy/targets/{hostname}", get(show).put(update).delete(delete))
        .route("/api/v1/proxy/targets/{hostname}/cert/generate", axum::routing::post(cert_generate))
        .route("/api/v1/proxy/targets/{hostname}/cert/attach", axum::routing::post(cert_attach))
}
