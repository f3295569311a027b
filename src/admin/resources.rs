//! `/api/v1/proxy/targets/{hostname}/auth|mcp` and `/api/v1/resources/...`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::openapi::{Api, Op};
use super::{reply, ApiJson, ApiJsonOrEmpty, AppState, Authed, JsonResult};

async fn auth_set(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(h): Path<String>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty,
) -> JsonResult {
    reply(StatusCode::OK, s.manager.set_proxy_auth(&c, &h, b).await?)
}
async fn auth_get(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_proxy_auth(&c, &h).await?)
}
async fn auth_clear(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.clear_proxy_auth(&c, &h).await?)
}
async fn mcp_set(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(h): Path<String>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty,
) -> JsonResult {
    reply(StatusCode::OK, s.manager.set_proxy_resource(&c, &h, b).await?)
}
async fn mcp_get(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_proxy_resource(&c, &h).await?)
}
async fn mcp_clear(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(h): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.clear_proxy_resource(&c, &h).await?)
}
async fn res_create(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.create_resource(&c, b).await?)
}
async fn res_list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_resources(&c).await?)
}
async fn res_get(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(u): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_resource(&c, &u).await?)
}
async fn res_update(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(u): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.update_resource(&c, &u, b).await?)
}
async fn res_delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(u): Path<String>) -> JsonResult {
    s.manager.delete_resource(&c, &u).await?;
    reply(StatusCode::OK, json!({"status": "deleted", "uri": u}))
}
async fn res_validate(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(u): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.validate_resource_token(&c, &u, b).await?)
}
async fn res_auto(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.auto_register_resources(&c).await?)
}

/// Adds the auth, resource-settings and registry endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/resources/")
        .get(
            res_list,
            Op::new("List the protected resources the caller may see").ok_json(StatusCode::OK),
        )
        .post(res_create, Op::new("Register a protected resource").ok_json(StatusCode::CREATED))
        .done()
        .at("/api/v1/resources/auto-register")
        .post(
            res_auto,
            Op::new("Register every proxy's protected resource").ok_json(StatusCode::OK),
        )
        .done()
        .at("/api/v1/resources/{uri}")
        .get(res_get, Op::new("Show a protected resource").ok_json(StatusCode::OK))
        .put(res_update, Op::new("Change a protected resource").ok_json(StatusCode::OK))
        .delete(res_delete, Op::new("Delete a protected resource").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/resources/{uri}/validate-token")
        .post(
            res_validate,
            Op::new("Check a token against a protected resource").ok_json(StatusCode::OK),
        )
        .done()
        .at("/api/v1/proxy/targets/{hostname}/auth")
        .get(auth_get, Op::new("A proxy's auth settings").ok_json(StatusCode::OK))
        .post(auth_set, Op::new("Set a proxy's auth settings").ok_json(StatusCode::OK))
        .put(auth_set, Op::new("Set a proxy's auth settings").ok_json(StatusCode::OK))
        .delete(auth_clear, Op::new("Turn a proxy's auth off").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/proxy/targets/{hostname}/mcp")
        .get(mcp_get, Op::new("A proxy's protected resource settings").ok_json(StatusCode::OK))
        .post(
            mcp_set,
            Op::new("Set a proxy's protected resource settings").ok_json(StatusCode::OK),
        )
        .put(
            mcp_set,
            Op::new("Set a proxy's protected resource settings").ok_json(StatusCode::OK),
        )
        .delete(
            mcp_clear,
            Op::new("Clear a proxy's protected resource settings").ok_json(StatusCode::OK),
        )
        .done()
}
