//! `/api/v1/proxy/targets/{hostname}/auth|mcp` and `/api/v1/resources/...`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::openapi::{Api, Op};
use super::{reply, AppState, Authed, Body, BodyOrEmpty, JsonResult};
use crate::manage::resources::{self, ProxyAuth, ProxyResource, ResourceDeleted, TokenValidation};
use crate::model::{
    ProxyAuthSettings, ProxyAuthUpdate, ProxyKey, ProxyResourceSettings, ProxyResourceUpdate, Resource, ResourceKey, ResourcePatch,
    ResourceSpec, ResourceTokenCheck, ResourceUpdate, TokenCheck,
};

async fn auth_set(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(hostname): Path<String>,
    BodyOrEmpty(settings): BodyOrEmpty<ProxyAuthSettings>,
) -> JsonResult {
    let req = ProxyAuthUpdate { hostname, settings };
    reply(StatusCode::OK, resources::set_proxy_auth(&s.manager, &c, req).await?)
}
async fn auth_get(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(hostname): Path<String>) -> JsonResult {
    reply(
        StatusCode::OK,
        resources::get_proxy_auth(&s.manager, &c, ProxyKey { hostname }).await?,
    )
}
async fn auth_clear(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(hostname): Path<String>) -> JsonResult {
    reply(
        StatusCode::OK,
        resources::clear_proxy_auth(&s.manager, &c, ProxyKey { hostname }).await?,
    )
}
async fn mcp_set(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(hostname): Path<String>,
    BodyOrEmpty(settings): BodyOrEmpty<ProxyResourceSettings>,
) -> JsonResult {
    let req = ProxyResourceUpdate { hostname, settings };
    reply(StatusCode::OK, resources::set_proxy_resource(&s.manager, &c, req).await?)
}
async fn mcp_get(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(hostname): Path<String>) -> JsonResult {
    reply(
        StatusCode::OK,
        resources::get_proxy_resource(&s.manager, &c, ProxyKey { hostname }).await?,
    )
}
async fn mcp_clear(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(hostname): Path<String>) -> JsonResult {
    reply(
        StatusCode::OK,
        resources::clear_proxy_resource(&s.manager, &c, ProxyKey { hostname }).await?,
    )
}
async fn res_create(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<ResourceSpec>) -> JsonResult {
    reply(StatusCode::CREATED, resources::create(&s.manager, &c, b).await?)
}
async fn res_list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, resources::list(&s.manager, &c).await?)
}
async fn res_get(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(uri): Path<String>) -> JsonResult {
    reply(StatusCode::OK, resources::get(&s.manager, &c, ResourceKey { uri }).await?)
}
async fn res_update(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(uri): Path<String>,
    Body(patch): Body<ResourcePatch>,
) -> JsonResult {
    reply(
        StatusCode::OK,
        resources::update(&s.manager, &c, ResourceUpdate { uri, patch }).await?,
    )
}
async fn res_delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(uri): Path<String>) -> JsonResult {
    reply(StatusCode::OK, resources::delete(&s.manager, &c, ResourceKey { uri }).await?)
}
async fn res_validate(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(uri): Path<String>,
    Body(check): Body<TokenCheck>,
) -> JsonResult {
    let req = ResourceTokenCheck { uri, check };
    reply(StatusCode::OK, resources::validate_token(&s.manager, &c, req).await?)
}
async fn res_auto(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, resources::auto_register(&s.manager, &c).await?)
}

/// Adds the auth, resource-settings and registry endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/resources/")
        .get(
            res_list,
            Op::new("List the protected resources the caller may see").ok_list::<Resource>(StatusCode::OK),
        )
        .post(
            res_create,
            Op::new("Register a protected resource")
                .body::<ResourceSpec>()
                .ok::<Resource>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/resources/auto-register")
        .post(
            res_auto,
            Op::new("Register every proxy's protected resource").ok_list::<Resource>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/resources/{uri}")
        .get(res_get, Op::new("Show a protected resource").ok::<Resource>(StatusCode::OK))
        .put(
            res_update,
            Op::new("Change a protected resource")
                .body::<ResourcePatch>()
                .ok::<Resource>(StatusCode::OK),
        )
        .delete(
            res_delete,
            Op::new("Delete a protected resource").ok::<ResourceDeleted>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/resources/{uri}/validate-token")
        .post(
            res_validate,
            Op::new("Check a token against a protected resource")
                .body::<TokenCheck>()
                .ok::<TokenValidation>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/proxy/targets/{hostname}/auth")
        .get(auth_get, Op::new("A proxy's auth settings").ok::<ProxyAuth>(StatusCode::OK))
        .post(auth_set, auth_set_op())
        .put(auth_set, auth_set_op())
        .delete(auth_clear, Op::new("Turn a proxy's auth off").ok::<ProxyAuth>(StatusCode::OK))
        .done()
        .at("/api/v1/proxy/targets/{hostname}/mcp")
        .get(
            mcp_get,
            Op::new("A proxy's protected resource settings").ok::<ProxyResource>(StatusCode::OK),
        )
        .post(mcp_set, mcp_set_op())
        .put(mcp_set, mcp_set_op())
        .delete(
            mcp_clear,
            Op::new("Clear a proxy's protected resource settings").ok::<ProxyResource>(StatusCode::OK),
        )
        .done()
}

fn auth_set_op() -> Op {
    Op::new("Set a proxy's auth settings")
        .optional_body::<ProxyAuthSettings>()
        .ok::<ProxyAuth>(StatusCode::OK)
}

fn mcp_set_op() -> Op {
    Op::new("Set a proxy's protected resource settings")
        .optional_body::<ProxyResourceSettings>()
        .ok::<ProxyResource>(StatusCode::OK)
}
