//! `/api/v1/routes/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::error::ApiResult;
use super::{both, reply, ApiJson, AppState, Authed, JsonResult};

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.create_route(&c, b).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_routes(&c).await?)
}
async fn formatted(State(s): State<Arc<AppState>>, Authed(c): Authed) -> ApiResult<Response> {
    let text = s.manager.format_routes(&c).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_route(&c, &id).await?)
}
async fn update(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.update_route(&c, &id, b).await?)
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>) -> JsonResult {
    s.manager.delete_route(&c, &id).await?;
    reply(StatusCode::OK, json!({"status": "deleted", "route_id": id}))
}

/// Adds the route endpoints.
pub fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    both(r, "/api/v1/routes/", get(list).post(create))
        .route("/api/v1/routes/formatted", get(formatted))
        .route("/api/v1/routes/{route_id}", get(show).put(update).delete(delete))
}
