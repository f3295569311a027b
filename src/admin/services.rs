//! `/api/v1/services/external...`: named service URLs for `service` route targets.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::openapi::{Api, Op};
use super::{reply, ApiJson, AppState, Authed, JsonResult};

async fn register(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.register_service(&c, b).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_services(&c).await?)
}
async fn unregister(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    s.manager.unregister_service(&c, &n).await?;
    reply(StatusCode::OK, json!({"status": "deleted", "service_name": n}))
}

/// Adds the external service endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/services/external/")
        .get(list, Op::new("List the external services").ok_json(StatusCode::OK))
        .post(register, Op::new("Register an external service").ok_json(StatusCode::CREATED))
        .done()
        .at("/api/v1/services/external/{name}")
        .delete(unregister, Op::new("Unregister an external service").ok_json(StatusCode::OK))
        .done()
}
