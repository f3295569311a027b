//! `/api/v1/tokens/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::json;

use super::{both, reply, ApiJson, AppState, Authed, JsonResult};

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.create_token(&c, b, false).await?)
}
async fn generate(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.create_token(&c, b, true).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_tokens(&c).await?)
}
async fn info(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.token_info(&c).await?)
}
async fn email(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.update_token_email(&c, b).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(name): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_token(&c, &name).await?)
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(name): Path<String>) -> JsonResult {
    let report = s.manager.delete_token(&c, &name).await?;
    reply(StatusCode::OK, json!({"status": "deleted", "name": name, "deleted": report}))
}
async fn reveal(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(name): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.reveal_token(&c, &name).await?)
}

/// Adds the token endpoints.
pub fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    both(r, "/api/v1/tokens/", get(list).post(create))
        .route("/api/v1/tokens/generate", post(generate))
        .route("/api/v1/tokens/info", get(info))
        .route("/api/v1/tokens/email", put(email))
        .route("/api/v1/tokens/{name}", get(show).delete(delete))
        .route("/api/v1/tokens/{name}/reveal", get(reveal))
}
