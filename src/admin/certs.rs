//! `/api/v1/certificates/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::openapi::{Api, Op};
use super::{reply, ApiJson, AppState, Authed, JsonResult};

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

async fn request_one(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::ACCEPTED, s.manager.request_cert(&c, b, false).await?)
}
async fn request_multi(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::ACCEPTED, s.manager.request_cert(&c, b, true).await?)
}
async fn status(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.cert_status(&c, &n).await?)
}
async fn renew(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::ACCEPTED, s.manager.renew_cert(&c, &n, false).await?)
}
async fn to_production(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::ACCEPTED, s.manager.renew_cert(&c, &n, true).await?)
}

/// Adds the certificate endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/certificates/")
        .get(list, Op::new("List the certificates the caller may see").ok_json(StatusCode::OK))
        .post(
            request_one,
            Op::new("Order a certificate for one domain (ACME)").ok_json(StatusCode::ACCEPTED),
        )
        .done()
        .at("/api/v1/certificates/upload")
        .post(upload, Op::new("Upload a certificate and its key").ok_json(StatusCode::CREATED))
        .done()
        .at("/api/v1/certificates/multi-domain")
        .post(
            request_multi,
            Op::new("Order a certificate for several domains (ACME)").ok_json(StatusCode::ACCEPTED),
        )
        .done()
        .at("/api/v1/certificates/{cert_name}/status")
        .get(status, Op::new("The state of a certificate's order").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/certificates/{cert_name}/renew")
        .post(renew, Op::new("Renew a certificate now").ok_json(StatusCode::ACCEPTED))
        .done()
        .at("/api/v1/certificates/{cert_name}/to-production")
        .post(
            to_production,
            Op::new("Re-issue a staging certificate from production").ok_json(StatusCode::ACCEPTED),
        )
        .done()
        .at("/api/v1/certificates/{cert_name}")
        .get(show, Op::new("Show a certificate").ok_json(StatusCode::OK))
        .delete(delete, Op::new("Delete a certificate").ok_json(StatusCode::OK))
        .done()
}
