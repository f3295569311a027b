//! `/api/v1/routes/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiResult;
use super::openapi::{Api, Op};
use super::{reply, ApiJson, AppState, Authed, JsonResult};

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
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/routes/")
        .get(list, Op::new("List the routes the caller may see").ok_json(StatusCode::OK))
        .post(create, Op::new("Create a route").ok_json(StatusCode::CREATED))
        .done()
        .at("/api/v1/routes/formatted")
        .get(
            formatted,
            Op::new("The routes as a text table").ok_media(StatusCode::OK, "text/plain"),
        )
        .done()
        .at("/api/v1/routes/{route_id}")
        .get(show, Op::new("Show a route").ok_json(StatusCode::OK))
        .put(update, Op::new("Change some fields of a route").ok_json(StatusCode::OK))
        .delete(delete, Op::new("Delete a route").ok_json(StatusCode::OK))
        .done()
}
