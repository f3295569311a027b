//! `/api/v1/certificates/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::openapi::{Api, Op};
use super::{reply, AppState, Authed, Body, JsonResult};
use crate::acme::CertStatus;
use crate::manage::acme_certs::{CertAccepted, CertRequest};
use crate::manage::certs::{self, CertDeleted, CertKey, CertUpload};
use crate::model::Certificate;

async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, certs::list(&s.manager, &c).await?)
}
async fn upload(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<CertUpload>) -> JsonResult {
    reply(StatusCode::CREATED, certs::upload(&s.manager, &c, b).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(cert_name): Path<String>) -> JsonResult {
    reply(StatusCode::OK, certs::get(&s.manager, &c, CertKey { cert_name }).await?)
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(cert_name): Path<String>) -> JsonResult {
    reply(StatusCode::OK, certs::delete(&s.manager, &c, CertKey { cert_name }).await?)
}

async fn request_one(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<CertRequest>) -> JsonResult {
    reply(StatusCode::ACCEPTED, s.manager.request_cert(&c, b, false).await?)
}
async fn request_multi(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<CertRequest>) -> JsonResult {
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
    let accepted = StatusCode::ACCEPTED;
    api.at("/api/v1/certificates/")
        .get(
            list,
            Op::new("List the certificates the caller may see").ok_list::<Certificate>(StatusCode::OK),
        )
        .post(
            request_one,
            Op::new("Order a certificate for one domain (ACME)")
                .body::<CertRequest>()
                .ok::<CertAccepted>(accepted),
        )
        .done()
        .at("/api/v1/certificates/upload")
        .post(
            upload,
            Op::new("Upload a certificate and its key")
                .body::<CertUpload>()
                .ok::<Certificate>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/certificates/multi-domain")
        .post(
            request_multi,
            Op::new("Order a certificate for several domains (ACME)")
                .body::<CertRequest>()
                .ok::<CertAccepted>(accepted),
        )
        .done()
        .at("/api/v1/certificates/{cert_name}/status")
        .get(
            status,
            Op::new("The state of a certificate's order").ok::<CertStatus>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/certificates/{cert_name}/renew")
        .post(renew, Op::new("Renew a certificate now").ok::<CertAccepted>(accepted))
        .done()
        .at("/api/v1/certificates/{cert_name}/to-production")
        .post(
            to_production,
            Op::new("Re-issue a staging certificate from production").ok::<CertAccepted>(accepted),
        )
        .done()
        .at("/api/v1/certificates/{cert_name}")
        .get(show, Op::new("Show a certificate").ok::<Certificate>(StatusCode::OK))
        .delete(
            delete,
            Op::new("Delete a certificate no proxy uses (409 names the proxies using it)").ok::<CertDeleted>(StatusCode::OK),
        )
        .done()
}
