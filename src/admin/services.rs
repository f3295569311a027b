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
use super::{reply, ApiJson, ApiJsonOrEmpty, AppState, Authed, Body as ApiBody, JsonResult};
use crate::manage::external_services::{
    self, ExternalDeleted, ExternalService, ExternalUpdate, RegisterExternal, UnifiedService, UpdateExternal,
};
use crate::manage::service_ports::{
    self, CheckPort, PortCheck, PortView, PortsAvailable, ServicePortAdd, ServicePortKey, ServicePortUpdate, UpdatePort,
};
use crate::manage::services::{
    self, CleanupReport, Logs, PortConfigRequest, ServiceCreated, ServiceDeleted, ServiceKey, ServiceLogText, ServicePatch,
    ServiceProxyCreate, ServiceProxyRequest, ServiceSpec, ServiceUpdate,
};
use crate::model::{Proxy, ValidationError};
use crate::services::engine::StatsSummary;
use crate::services::DockerService;

/// Reads query parameters into `T`, typing `true`/`false` and numbers as
/// JSON does, so a bad parameter gets the API's 422 error shape. `name`,
/// when given, is the service named by the path.
fn query<T: DeserializeOwned>(raw: Option<String>, name: Option<&str>) -> ApiResult<T> {
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
    if let Some(n) = name {
        if m.insert("service_name".into(), json!(n)).is_some() {
            return Err(crate::manage::ManageError::from(ValidationError::new("service_name", "the service is named by the path")).into());
        }
    }
    Ok(crate::manage::from_json(Value::Object(m))?)
}

fn key(service_name: String) -> ServiceKey {
    ServiceKey { service_name }
}

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiJson(b): ApiJson) -> JsonResult {
    reply(StatusCode::CREATED, services::create(&s.manager, &c, services::parse(b)?).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, services::list(&s.manager, &c, query(q, None)?).await?)
}
async fn unified(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, external_services::unified(&s.manager, &c, query(q, None)?).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, services::get(&s.manager, &c, key(n)).await?)
}
async fn update(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, ApiJson(b): ApiJson) -> JsonResult {
    let patch: ServicePatch = services::parse(b)?;
    reply(
        StatusCode::OK,
        services::update(&s.manager, &c, ServiceUpdate { service_name: n, patch }).await?,
    )
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, services::delete(&s.manager, &c, query(q, Some(&n))?).await?)
}
async fn start(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, services::start(&s.manager, &c, key(n)).await?)
}
async fn stop(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, services::stop(&s.manager, &c, key(n)).await?)
}
async fn restart(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, services::restart(&s.manager, &c, key(n)).await?)
}
async fn logs(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    match services::logs(&s.manager, &c, query(q, Some(&n))?).await? {
        Logs::Text(t) => Ok(reply(StatusCode::OK, ServiceLogText { service_name: n, logs: t })?.into_response()),
        Logs::Stream(st) => {
            let body = Body::from_stream(st.map(|r| r.map_err(std::io::Error::other)));
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
        }
    }
}
async fn stats(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, services::stats(&s.manager, &c, key(n)).await?)
}
async fn proxy(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>, ApiJsonOrEmpty(b): ApiJsonOrEmpty) -> JsonResult {
    let options = crate::manage::from_json(b)?;
    reply(
        StatusCode::CREATED,
        services::create_proxy(&s.manager, &c, ServiceProxyCreate { service_name: n, options }).await?,
    )
}
async fn cleanup(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, services::cleanup(&s.manager, &c).await?)
}

async fn ports_list(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, service_ports::list(&s.manager, &c, key(n)).await?)
}
async fn port_add(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(n): Path<String>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty,
) -> JsonResult {
    let port = crate::manage::from_json(b)?;
    reply(
        StatusCode::CREATED,
        service_ports::add(&s.manager, &c, ServicePortAdd { service_name: n, port }).await?,
    )
}
async fn port_update(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path((service_name, port_name)): Path<(String, String)>,
    ApiBody(patch): ApiBody<UpdatePort>,
) -> JsonResult {
    let upd = ServicePortUpdate {
        service_name,
        port_name,
        patch,
    };
    reply(StatusCode::OK, service_ports::update(&s.manager, &c, upd).await?)
}
async fn port_remove(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path((service_name, port_name)): Path<(String, String)>,
) -> JsonResult {
    let key = ServicePortKey { service_name, port_name };
    reply(StatusCode::OK, service_ports::remove(&s.manager, &c, key).await?)
}
async fn ports_global(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, service_ports::all(&s.manager, &c).await?)
}
async fn ports_available(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, service_ports::available(&s.manager, &c).await?)
}
async fn ports_check(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiBody(b): ApiBody<CheckPort>) -> JsonResult {
    reply(StatusCode::OK, service_ports::check(&s.manager, &c, b).await?)
}

async fn ext_register(State(s): State<Arc<AppState>>, Authed(c): Authed, ApiBody(b): ApiBody<RegisterExternal>) -> JsonResult {
    reply(StatusCode::CREATED, external_services::register(&s.manager, &c, b).await?)
}
async fn ext_list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, external_services::list(&s.manager, &c).await?)
}
async fn ext_show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, external_services::get(&s.manager, &c, key(n)).await?)
}
async fn ext_update(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(service_name): Path<String>,
    ApiBody(patch): ApiBody<UpdateExternal>,
) -> JsonResult {
    let upd = ExternalUpdate { service_name, patch };
    reply(StatusCode::OK, external_services::update(&s.manager, &c, upd).await?)
}
async fn ext_unregister(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(n): Path<String>) -> JsonResult {
    reply(StatusCode::OK, external_services::unregister(&s.manager, &c, key(n)).await?)
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
                .body::<ServiceSpec>()
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
        .delete(ext_unregister, Op::new("Unregister an external service").ok::<ExternalDeleted>(ok))
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
                .body::<ServicePatch>()
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
                .ok::<ServiceLogText>(ok),
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
