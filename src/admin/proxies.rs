//! `/api/v1/proxy/targets/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::openapi::{Api, Op};
use super::{reply, ApiJson, ApiJsonOrEmpty, AppState, Authed, Body, JsonResult};
use crate::manage::acme_certs::{CertAccepted, ProxyCertRequest};
use crate::manage::proxies::{self, ProxyCreated, ProxyDeleted};
use crate::model::{Proxy, ProxyKey, ProxyPatch, ProxySpec, ProxyUpdate};

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<ProxySpec>) -> JsonResult {
    reply(StatusCode::CREATED, proxies::create(&s.manager, &c, b).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, proxies::list(&s.manager, &c).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(hostname): Path<String>) -> JsonResult {
    reply(StatusCode::OK, proxies::get(&s.manager, &c, ProxyKey { hostname }).await?)
}
async fn update(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(hostname): Path<String>,
    Body(patch): Body<ProxyPatch>,
) -> JsonResult {
    reply(
        StatusCode::OK,
        proxies::update(&s.manager, &c, ProxyUpdate { hostname, patch }).await?,
    )
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(hostname): Path<String>) -> JsonResult {
    reply(StatusCode::OK, proxies::delete(&s.manager, &c, ProxyKey { hostname }).await?)
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
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/proxy/targets/")
        .get(
            list,
            Op::new("List the proxies the caller may see").ok_list::<Proxy>(StatusCode::OK),
        )
        .post(
            create,
            Op::new("Create a proxy (HTTPS without cert_name orders a certificate)")
                .body::<ProxySpec>()
                .ok::<ProxyCreated>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/proxy/targets/{hostname}")
        .get(show, Op::new("Show a proxy").ok::<Proxy>(StatusCode::OK))
        .put(
            update,
            Op::new("Change some fields of a proxy")
                .body::<ProxyPatch>()
                .ok::<Proxy>(StatusCode::OK),
        )
        .delete(delete, Op::new("Delete a proxy").ok::<ProxyDeleted>(StatusCode::OK))
        .done()
        .at("/api/v1/proxy/targets/{hostname}/cert/generate")
        .post(
            cert_generate,
            Op::new("Order a certificate for a proxy")
                .optional_body::<ProxyCertRequest>()
                .ok::<CertAccepted>(StatusCode::ACCEPTED),
        )
        .done()
        .at("/api/v1/proxy/targets/{hostname}/cert/attach")
        .post(
            cert_attach,
            Op::new("Attach an existing certificate to a proxy")
                .body::<ProxyCertRequest>()
                .ok::<Proxy>(StatusCode::OK),
        )
        .done()
}
