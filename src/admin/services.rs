//! `/api/v1/services/...`: Docker services, their ports, external and
//! internal services, the unified list, and the global port endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::error::ApiResult;
use super::openapi::{Api, Op};
use super::{reply, ApiJson, ApiJsonOrEmpty, AppState, Authed, JsonResult};
use crate::manage::external_services::{ExternalService, RegisterExternal, UnifiedService, UpdateExternal};
use crate::manage::service_ports::{CheckPort, PortCheck, PortView, PortsAvailable, UpdatePort};
use crate::manage::services::{
    CleanupReport, CreateService, Logs, PortConfigRequest, ServiceCreated, ServiceDeleted, ServiceProxyRequest, UpdateService,
};
use crate::model::Proxy;
use crate::services::engine::StatsSummary;
use crate::services::DockerService;

/// Reads query parameters into `T`, typing `true`/`false` and numbers as
/// JSON does, so a bad parameter gets the API's 422 error shape.
fn query<T: DeserializeOwned>(raw: Option<String>) -> ApiResult<T> {
    let mut m = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let typed = match v.as_ref() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            n if !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()) => json!(n.parse::<u64>().unwrap_or(0)),
            s => Value::String(s.to_string()),
        };
        m.insert(k.into_owned(), typed);
    }
    Ok(crate::manage::from_json(Value::Object(m))?)
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    owned_only: bool,
}

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.create_service(&c, b).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> JsonResult {
    let q: ListQuery = query(q)?;
    reply(StatusCode::OK, s.manager.list_docker_services(&c, q.owned_only).await?)
}
async fn unified(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_unified(&c, query(q)?).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_docker_service(&c, &n).await?)
}
async fn update(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.update_docker_service(&c, &n, b).await?)
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, s.manager.delete_docker_service(&c, &n, query(q)?).await?)
}
async fn start(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.start_service(&c, &n).await?)
}
async fn stop(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.stop_service(&c, &n).await?)
}
async fn restart(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.restart_service(&c, &n).await?)
}
async fn logs(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    match s.manager.service_logs(&c, &n, query(q)?).await? {
        Logs::Text(t) => Ok(reply(StatusCode::OK, json!({"service_name": n, "logs": t}))?.into_response()),
        Logs::Stream(st) => {
            let body = Body::from_stream(st.map(|r| r.map_err(std::io::Error::other)));
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
        }
    }
}
async fn stats(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.service_stats(&c, &n).await?)
}
async fn proxy(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, ApiJsonOrEmpty(b): ApiJsonOrEmpty) -> JsonResult {
    let req = crate::manage::from_json(b)?;
    reply(StatusCode::CREATED, s.manager.create_service_proxy(&c, &n, req).await?)
}
async fn cleanup(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.cleanup_services(&c).await?)
}

async fn ports_list(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_service_ports(&c, &n).await?)
}
async fn port_add(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(n): Path<String>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty,
) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.add_service_port(&c, &n, b).await?)
}
async fn port_update(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path((n, p)): Path<(String, String)>,
    ApiJson(b): ApiJson,
) -> JsonResult {
    reply(StatusCode::OK, s.manager.update_service_port(&c, &n, &p, b).await?)
}
async fn port_remove(State(s): State<Arc<AppState>>, Authed(c): Authed, Path((n, p)): Path<(String, String)>) -> JsonResult {
    reply(StatusCode::OK, s.manager.remove_service_port(&c, &n, &p).await?)
}
async fn ports_global(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.all_ports(&c).await?)
}
async fn ports_available(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.available_ports(&c).await?)
}
async fn ports_check(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.check_port(&c, b).await?)
}

async fn ext_register(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, s.manager.register_service(&c, b).await?)
}
async fn ext_list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, s.manager.list_services(&c).await?)
}
async fn ext_show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, s.manager.get_external_service(&c, &n).await?)
}
async fn ext_update(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::OK, s.manager.update_external_service(&c, &n, b).await?)
}
async fn ext_unregister(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    s.manager.unregister_service(&c, &n).await?;
    reply(StatusCode::OK, json!({"status": "deleted", "service_name": n}))
}

/// Adds the service endpoints.
pub fn routes(api: Api) -> Api {
    let ok = StatusCode::OK;
    api.at("/api/v1/services/")
        .get(
            list,
            Op::new("List the Docker services the caller may see")
                .query("owned_only", "true: only the caller's own", false)
                .ok_list::<DockerService>(ok),
        )
        .post(
            create,
            Op::new("Create a Docker service (ports claimed, container started, optional proxy)")
                .body::<CreateService>()
                .ok::<ServiceCreated>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/services/external/")
        .get(
            ext_list,
            Op::new("List the external services and the built-in api").ok_list::<ExternalService>(ok),
        )
        .post(
            ext_register,
            Op::new("Register an external service")
                .body::<RegisterExternal>()
                .ok::<ExternalService>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/services/external/{name}")
        .get(ext_show, Op::new("Show an external or internal service").ok::<ExternalService>(ok))
        .put(
            ext_update,
            Op::new("Change an external service's URL or description")
                .body::<UpdateExternal>()
                .ok::<ExternalService>(ok),
        )
        .delete(ext_unregister, Op::new("Unregister an external service").ok_json(ok))
        .done()
        .at("/api/v1/services/unified")
        .get(
            unified,
            Op::new("Every service: Docker, external and internal")
                .query("type", "docker, external or internal", false)
                .ok_list::<UnifiedService>(ok),
        )
        .done()
        .at("/api/v1/services/cleanup")
        .post(
            cleanup,
            Op::new("Remove orphan containers and stale port claims (admin)").ok::<CleanupReport>(ok),
        )
        .done()
        .at("/api/v1/services/ports")
        .get(
            ports_global,
            Op::new("Every allocated port the caller may see").ok_list::<PortView>(ok),
        )
        .done()
        .at("/api/v1/services/ports/available")
        .get(
            ports_available,
            Op::new("The port ranges and how much is free").ok::<PortsAvailable>(ok),
        )
        .done()
        .at("/api/v1/services/ports/check")
        .post(
            ports_check,
            Op::new("Whether a port is free for a service")
                .body::<CheckPort>()
                .ok::<PortCheck>(ok),
        )
        .done()
        .at("/api/v1/services/{name}")
        .get(show, Op::new("Show a Docker service").ok::<DockerService>(ok))
        .put(
            update,
            Op::new("Change a Docker service (the container is recreated)")
                .body::<UpdateService>()
                .ok::<DockerService>(ok),
        )
        .delete(
            delete,
            Op::new("Delete a Docker service, its container, ports and proxies")
                .query("force", "true: delete the record even if the container cannot be removed", false)
                .query("delete_proxy", "false: keep the proxies that target it", false)
                .ok::<ServiceDeleted>(ok),
        )
        .done()
        .at("/api/v1/services/{name}/start")
        .post(start, Op::new("Start a Docker service").ok::<DockerService>(ok))
        .done()
        .at("/api/v1/services/{name}/stop")
        .post(stop, Op::new("Stop a Docker service").ok::<DockerService>(ok))
        .done()
        .at("/api/v1/services/{name}/restart")
        .post(restart, Op::new("Restart a Docker service").ok::<DockerService>(ok))
        .done()
        .at("/api/v1/services/{name}/logs")
        .get(
            logs,
            Op::new("A service's output (follow=true streams text/plain)")
                .query("lines", "lines from the end (default 100)", false)
                .query("timestamps", "true: prefix lines with their time", false)
                .query("follow", "true: keep streaming", false)
                .ok_json(ok),
        )
        .done()
        .at("/api/v1/services/{name}/stats")
        .get(
            stats,
            Op::new("CPU, memory, network and processes, one sample").ok::<StatsSummary>(ok),
        )
        .done()
        .at("/api/v1/services/{name}/proxy")
        .post(
            proxy,
            Op::new("Create a proxy for a service")
                .optional_body::<ServiceProxyRequest>()
                .ok::<Proxy>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/services/{name}/ports")
        .get(ports_list, Op::new("A service's ports").ok_list::<PortView>(ok))
        .post(
            port_add,
            Op::new("Add a port to a service")
                .optional_body::<PortConfigRequest>()
                .ok::<PortView>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/services/{name}/ports/{port_name}")
        .put(
            port_update,
            Op::new("Change a port's bind address, source token or description")
                .body::<UpdatePort>()
                .ok::<PortView>(ok),
        )
        .delete(port_remove, Op::new("Remove a port from a service").ok::<PortView>(ok))
        .done()
}
