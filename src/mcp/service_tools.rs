//! The service tools: Docker services, their ports, and external services,
//! each a thin adapter over the `manage::services`, `service_ports` and
//! `external_services` operation REST calls, so ownership (a user-scope
//! token sees and changes only its own services) and the refusal of host
//! access are the same. Write tools need a token that may write (OAuth
//! scope `admin`), which `methods` checks before any call.

use serde_json::Value;

use super::tools::{list_output_of, listed, object_schema_of, out, Args, Tool};
use crate::manage::external_services::{self, ExternalDeleted, ExternalService, RegisterExternal, UnifiedQuery, UnifiedService};
use crate::manage::service_ports::{self, CheckPort, PortCheck, PortView};
use crate::manage::services::{
    self, Logs, ServiceCreated, ServiceDeleted, ServiceKey, ServiceLogText, ServiceLogs, ServiceProxyCreate, ServiceSpec, ServiceUpdate,
};
use crate::manage::{from_json, ManageResult};
use crate::model::{Proxy, ValidationError};
use crate::services::engine::StatsSummary;
use crate::services::DockerService;

/// The arguments as the typed request, a host-access field named as REST names it.
fn parse<T: serde::de::DeserializeOwned>(a: Args) -> ManageResult<T> {
    services::parse(Value::Object(a))
}

/// A tool with `(write, destructive, idempotent)` as the operation behaves
/// (starting is a write that destroys nothing, restarting is not idempotent:
/// hints `tools::Effect` cannot state).
fn tool(
    name: &'static str,
    description: &'static str,
    hints: (bool, bool, bool),
    input: Value,
    output: Value,
    call: super::tools::Call,
) -> Tool {
    let (write, destructive, idempotent) = hints;
    Tool {
        write,
        destructive,
        idempotent,
        ..Tool::read(name, description, input, output, call)
    }
}

/// Reads nothing and changes nothing.
const READ: (bool, bool, bool) = (false, false, true);

/// Every service tool.
pub fn all() -> Vec<Tool> {
    vec![
        tool(
            "list_services",
            "Lists every service the caller may see: its Docker services, and for the admin the external services and the built-in api.",
            READ,
            object_schema_of::<UnifiedQuery>(),
            list_output_of::<UnifiedService>("services"),
            |m, c, a| Box::pin(async move { listed("services", external_services::unified(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "show_service",
            "Shows one Docker service: image, limits, ports, state.",
            READ,
            object_schema_of::<ServiceKey>(),
            object_schema_of::<DockerService>(),
            |m, c, a| Box::pin(async move { out(services::get(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "create_service",
            "Creates and starts a Docker service owned by the caller (ports allocated; auto_proxy also creates {name}.{BASE_DOMAIN}). \
             Privileged mode, host mounts and capabilities are never accepted.",
            (true, false, false),
            object_schema_of::<ServiceSpec>(),
            object_schema_of::<ServiceCreated>(),
            |m, c, a| Box::pin(async move { out(services::create(m, c, parse(a)?).await?) }),
        ),
        tool(
            "update_service",
            "Changes the fields of a Docker service given in `patch`; the container is recreated with them.",
            (true, true, true),
            object_schema_of::<ServiceUpdate>(),
            object_schema_of::<DockerService>(),
            |m, c, a| Box::pin(async move { out(services::update(m, c, parse(a)?).await?) }),
        ),
        tool(
            "delete_service",
            "Deletes a Docker service: its container, its ports and (unless delete_proxy is false) its proxies.",
            (true, true, true),
            object_schema_of::<services::ServiceDelete>(),
            object_schema_of::<ServiceDeleted>(),
            |m, c, a| Box::pin(async move { out(services::delete(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "start_service",
            "Starts a Docker service's container.",
            (true, false, true),
            object_schema_of::<ServiceKey>(),
            object_schema_of::<DockerService>(),
            |m, c, a| Box::pin(async move { out(services::start(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "stop_service",
            "Stops a Docker service's container; its proxy answers 503 until it is started.",
            (true, true, true),
            object_schema_of::<ServiceKey>(),
            object_schema_of::<DockerService>(),
            |m, c, a| Box::pin(async move { out(services::stop(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "restart_service",
            "Restarts a Docker service's container.",
            (true, true, false),
            object_schema_of::<ServiceKey>(),
            object_schema_of::<DockerService>(),
            |m, c, a| Box::pin(async move { out(services::restart(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "get_service_logs",
            "The last lines of a Docker service's output (follow is for the REST stream, not here).",
            READ,
            object_schema_of::<ServiceLogs>(),
            object_schema_of::<ServiceLogText>(),
            |m, c, a| {
                Box::pin(async move {
                    let q: ServiceLogs = from_json(Value::Object(a))?;
                    if q.follow {
                        return Err(ValidationError::new(
                            "follow",
                            "a tool answers once; stream with GET /api/v1/services/{name}/logs?follow=true",
                        )
                        .into());
                    }
                    let service_name = q.service_name.clone();
                    match services::logs(m, c, q).await? {
                        Logs::Text(logs) => out(ServiceLogText { service_name, logs }),
                        Logs::Stream(_) => Err(ValidationError::new("follow", "not available to tools").into()),
                    }
                })
            },
        ),
        tool(
            "get_service_stats",
            "One sample of a Docker service's CPU, memory, network and process use.",
            READ,
            object_schema_of::<ServiceKey>(),
            object_schema_of::<StatsSummary>(),
            |m, c, a| Box::pin(async move { out(services::stats(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "create_service_proxy",
            "Creates the proxy {name}.{BASE_DOMAIN} (or options.hostname) for a Docker service.",
            (true, false, false),
            object_schema_of::<ServiceProxyCreate>(),
            object_schema_of::<Proxy>(),
            |m, c, a| Box::pin(async move { out(services::create_proxy(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "list_external_services",
            "Lists the external services and the built-in api (admin; others get an empty list).",
            READ,
            object_schema_of::<EmptyArgs>(),
            list_output_of::<ExternalService>("services"),
            |m, c, a| {
                Box::pin(async move {
                    let EmptyArgs {} = from_json(Value::Object(a))?;
                    listed("services", external_services::list(m, c).await?)
                })
            },
        ),
        tool(
            "register_external_service",
            "Registers (or replaces) a named external service URL that service routes can target (admin).",
            (true, true, true),
            object_schema_of::<RegisterExternal>(),
            object_schema_of::<ExternalService>(),
            |m, c, a| Box::pin(async move { out(external_services::register(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "unregister_external_service",
            "Removes a named external service (admin).",
            (true, true, true),
            object_schema_of::<ServiceKey>(),
            object_schema_of::<ExternalDeleted>(),
            |m, c, a| Box::pin(async move { out(external_services::unregister(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "list_service_ports",
            "Lists the ports of a Docker service (source tokens are never shown).",
            READ,
            object_schema_of::<ServiceKey>(),
            list_output_of::<PortView>("ports"),
            |m, c, a| Box::pin(async move { listed("ports", service_ports::list(m, c, from_json(Value::Object(a))?).await?) }),
        ),
        tool(
            "check_port",
            "Whether a port is free for a service: not restricted, not allocated, nothing listening on it.",
            READ,
            object_schema_of::<CheckPort>(),
            object_schema_of::<PortCheck>(),
            |m, c, a| Box::pin(async move { out(service_ports::check(m, c, from_json(Value::Object(a))?).await?) }),
        ),
    ]
}

/// The arguments of a tool that takes none (any argument is refused).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EmptyArgs {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_input_schema_is_the_typed_request_and_refuses_strangers() {
        for t in all() {
            assert_eq!(t.input["type"], "object", "{}", t.name);
        }
        let create = all().into_iter().find(|t| t.name == "create_service").map(|t| t.input);
        let create = create.unwrap_or(json!(null));
        assert!(create["properties"]["image"].is_object(), "{create}");
        assert_eq!(create["required"], json!(["service_name"]), "{create}");
    }
}
