//! `/api/v1/tokens/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::openapi::{Api, Op};
use super::{reply, ApiJson, AppState, Authed, JsonResult};

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
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/tokens/")
        .get(list, Op::new("List the tokens the caller may see").ok_json(StatusCode::OK))
        .post(create, Op::new("Store a token the caller gives").ok_json(StatusCode::CREATED))
        .done()
        .at("/api/v1/tokens/generate")
        .post(generate, Op::new("Generate a new token").ok_json(StatusCode::CREATED))
        .done()
        .at("/api/v1/tokens/info")
        .get(info, Op::new("The calling token").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/tokens/email")
        .put(email, Op::new("Set the calling token's certificate e-mail").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/tokens/{name}")
        .get(show, Op::new("Show a token").ok_json(StatusCode::OK))
        .delete(delete, Op::new("Delete a token and what it owns").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/tokens/{name}/reveal")
        .get(reveal, Op::new("Reveal a token's value").ok_json(StatusCode::OK))
        .done()
}
