//! The MCP tools: one table entry per operation, each a thin adapter over
//! the `manage` function REST calls (same validation, same ownership rules),
//! with its input and output schema and truthful annotations. No tool runs
//! commands; none returns a secret.

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::manage::acme_certs::CertRequest;
use crate::manage::certs::{self, CertKey};
use crate::manage::logs::{self, SearchRequest, StatsRequest};
use crate::manage::proxies::{self, ProxyCreated, ProxyDeleted};
use crate::manage::schema::json_schema_of;
use crate::manage::{from_json, Caller, ManageError, ManageResult, Manager};
use crate::manage::{resources, routes, tokens};
use crate::model::{
    Proxy, ProxyAuthUpdate, ProxyKey, ProxyResourceUpdate, ProxySpec, ProxyUpdate, ResourceKey, RouteKey, RouteSpec, RouteUpdate, TokenKey,
    ValidationError,
};
use crate::reqlog::{Page, Stats};

/// Arguments of a call (a JSON object).
pub(super) type Args = Map<String, Value>;

/// What a tool does when called.
pub(super) type Call = for<'a> fn(&'a Manager, &'a Caller, Args) -> BoxFuture<'a, ManageResult<Value>>;

/// One tool.
pub struct Tool {
    /// `verb_noun`; the reference's names are kept.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// Changes something: needs a token that may write (OAuth scope `admin`).
    pub write: bool,
    /// Removes or replaces something that cannot be had back.
    pub destructive: bool,
    /// Calling it again with the same arguments changes nothing more.
    pub idempotent: bool,
    /// Reaches outside this system (an ACME directory).
    pub open_world: bool,
    /// JSON Schema of the arguments.
    pub input: Value,
    /// JSON Schema of `structuredContent`.
    pub output: Value,
    /// The adapter.
    pub call: Call,
}

/// What a write tool does, which sets its annotations: one place, so every
/// entry states its effect once and the hints cannot contradict each other.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Effect {
    /// Adds something new; called again it adds another (or refuses).
    Adds,
    /// Adds something and reaches outside this system (an ACME directory).
    AddsOutside,
    /// Replaces or removes something that cannot be had back; repeating
    /// the same call changes nothing more.
    Replaces,
}

impl Tool {
    /// A read tool: no change, safe to repeat, inside this system.
    pub fn read(name: &'static str, description: &'static str, input: Value, output: Value, call: Call) -> Self {
        Self {
            name,
            description,
            write: false,
            destructive: false,
            idempotent: true,
            open_world: false,
            input,
            output,
            call,
        }
    }

    /// A tool that changes something, with the annotations its `effect` implies.
    pub fn write(name: &'static str, description: &'static str, effect: Effect, input: Value, output: Value, call: Call) -> Self {
        Self {
            write: true,
            destructive: effect == Effect::Replaces,
            idempotent: effect == Effect::Replaces,
            open_world: effect == Effect::AddsOutside,
            ..Self::read(name, description, input, output, call)
        }
    }

    /// The tool as `tools/list` shows it.
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input,
            "outputSchema": self.output,
            "annotations": {
                "readOnlyHint": !self.write,
                "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent,
                "openWorldHint": self.open_world,
            },
        })
    }
}

/// A string argument `name` (required).
fn text(a: &Args, name: &str) -> ManageResult<String> {
    match a.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ValidationError::new(name, "must be a string").into()),
        None => Err(ValidationError::new(name, "is required").into()),
    }
}

/// The arguments without `key`, as the JSON body REST would receive.
fn body_without(mut a: Args, key: &str) -> Value {
    a.remove(key);
    Value::Object(a)
}

/// A result as JSON.
pub(super) fn out<T: Serialize>(v: T) -> ManageResult<Value> {
    serde_json::to_value(v).map_err(|e| ManageError::Store(e.to_string()))
}

/// A list result under `key` (`structuredContent` must be an object).
pub(super) fn listed<T: Serialize>(key: &str, v: T) -> ManageResult<Value> {
    Ok(json!({ key: out(v)? }))
}

/// Input schema: an object with `props`, `required` listed, others refused
/// unless `open` (bodies passed on whole to the operation, which validates
/// every field and names a bad one).
pub(super) fn input(props: Value, required: &[&str], open: bool) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": open})
}

/// Output schema of a list result under `key`.
fn list_output(key: &str) -> Value {
    json!({"type": "object", "properties": {key: {"type": "array", "items": {"type": "object"}}}, "required": [key]})
}

/// `T`'s schema as a tool's input or output schema, which MCP requires to
/// say `"type": "object"` at the root (a flattened struct is an `allOf`).
pub(super) fn object_schema_of<T: ToSchema>() -> Value {
    let mut s = json_schema_of::<T>();
    if s.get("type").is_none() {
        s["type"] = json!("object");
    }
    s
}

/// Output schema of a list of `T` under `key`, from `T`'s own schema (the
/// result type REST answers with), its definitions kept at the root.
pub(super) fn list_output_of<T: ToSchema>(key: &str) -> Value {
    let mut item = json_schema_of::<T>();
    let defs = item.as_object_mut().and_then(|o| {
        o.remove("$schema");
        o.remove("$defs")
    });
    let mut out = json!({"type": "object", "properties": {key: {"type": "array", "items": item}}, "required": [key]});
    if let Some(d) = defs {
        out["$defs"] = d;
    }
    out
}

/// The arguments as the typed request the REST API deserialises (a bad or
/// unknown field is a validation error naming it).
pub(super) fn request<T: serde::de::DeserializeOwned>(a: Args) -> ManageResult<T> {
    from_json(Value::Object(a))
}

/// Output schema of a single object.
fn object_output() -> Value {
    json!({"type": "object"})
}

fn hostname_prop() -> Value {
    json!({"hostname": {"type": "string", "description": "The proxy's hostname."}})
}

/// A tool's adapter from a closure-like body (boxes its future).
macro_rules! call {
    (|$m:ident, $c:ident, $a:ident| $body:expr) => {
        |$m, $c, $a| Box::pin(async move { $body })
    };
}
pub(super) use call;

/// Every tool, read tools first (`health_check` first of all: it takes no arguments).
pub fn all() -> Vec<Tool> {
    let none = || input(json!({}), &[], false);
    let host_only = || input(hostname_prop(), &["hostname"], false);
    let named = |field: &str, what: &str| input(json!({ field: {"type": "string", "description": what} }), &[field], false);
    let mut tools = vec![
        Tool::read(
            "health_check",
            "Reports whether Portcullis and its store are healthy.",
            none(),
            json!({"type": "object", "properties": {"status": {"type": "string", "enum": ["healthy", "unhealthy"]}, "store": {"type": "string"}}, "required": ["status", "store"]}),
            call!(|m, _c, _a| Ok(json!({
                "status": if m.store.ping().await.is_ok() { "healthy" } else { "unhealthy" },
                "store": if matches!(m.config.store, crate::config::StoreBackend::Redis) { "redis" } else { "embedded" },
            }))),
        ),
        Tool::read(
            "echo",
            "Returns its message: a connectivity test.",
            named("message", "Any text."),
            json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}),
            call!(|_m, _c, a| Ok(json!({"message": text(&a, "message")?}))),
        ),
        Tool::read(
            "list_proxies",
            "Lists the proxies the caller may see (the admin sees all).",
            none(),
            list_output_of::<Proxy>("proxies"),
            call!(|m, c, _a| listed("proxies", proxies::list(m, c).await?)),
        ),
        Tool::read(
            "show_proxy",
            "Shows one proxy.",
            object_schema_of::<ProxyKey>(),
            object_schema_of::<Proxy>(),
            call!(|m, c, a| out(proxies::get(m, c, request(a)?).await?)),
        ),
        Tool::read(
            "get_proxy_auth",
            "Shows a proxy's authentication settings.",
            host_only(),
            object_output(),
            call!(|m, c, a| out(resources::get_proxy_auth(m, c, request::<ProxyKey>(a)?).await?)),
        ),
        Tool::read(
            "get_proxy_resource",
            "Shows a proxy's protected resource (MCP) settings.",
            host_only(),
            object_output(),
            call!(|m, c, a| out(resources::get_proxy_resource(m, c, request::<ProxyKey>(a)?).await?)),
        ),
        Tool::read(
            "list_routes",
            "Lists the routes the caller may see, highest priority first.",
            none(),
            list_output("routes"),
            call!(|m, c, _a| listed("routes", routes::list(m, c).await?)),
        ),
        Tool::read(
            "show_route",
            "Shows one route.",
            named("route_id", "The route's id."),
            object_output(),
            call!(|m, c, a| out(routes::get(m, c, request::<RouteKey>(a)?).await?)),
        ),
        Tool::read(
            "list_certificates",
            "Lists the certificates the caller may see (no private keys).",
            none(),
            list_output("certificates"),
            call!(|m, c, _a| listed("certificates", certs::list(m, c).await?)),
        ),
        Tool::read(
            "show_certificate",
            "Shows one certificate (no private key).",
            named("cert_name", "The certificate's name."),
            object_output(),
            call!(|m, c, a| out(certs::get(m, c, request::<CertKey>(a)?).await?)),
        ),
        Tool::read(
            "get_certificate_status",
            "Shows where a certificate's issuance stands.",
            named("cert_name", "The certificate's name."),
            object_output(),
            call!(|m, c, a| out(m.cert_status(c, &text(&a, "cert_name")?).await?)),
        ),
        Tool::read(
            "list_resources",
            "Lists the registered protected resources the caller may see.",
            none(),
            list_output("resources"),
            call!(|m, c, _a| listed("resources", resources::list(m, c).await?)),
        ),
        Tool::read(
            "show_resource",
            "Shows one registered protected resource.",
            named("uri", "The resource URI."),
            object_output(),
            call!(|m, c, a| out(resources::get(m, c, request::<ResourceKey>(a)?).await?)),
        ),
        Tool::read(
            "list_tokens",
            "Lists API tokens (admin; never their values).",
            none(),
            list_output("tokens"),
            call!(|m, c, _a| listed("tokens", tokens::list(m, c).await?)),
        ),
        Tool::read(
            "show_token",
            "Shows one API token (admin; never its value).",
            named("name", "The token's name."),
            object_output(),
            call!(|m, c, a| out(tokens::get(m, c, request::<TokenKey>(a)?).await?)),
        ),
        Tool::read(
            "get_logs",
            "Searches the request log (newest first): by host, user, status, method, path, IP, client, time, text; \
             pages with next_cursor. The admin sees every record, others those of their own hostnames.",
            object_schema_of::<SearchRequest>(),
            object_schema_of::<Page>(),
            call!(|m, c, a| out(logs::search(m, c, request::<SearchRequest>(a)?).await?)),
        ),
        Tool::read(
            "get_log_stats",
            "Request and error counts of the request log over a window, per hour and per host.",
            object_schema_of::<StatsRequest>(),
            object_schema_of::<Stats>(),
            call!(|m, c, a| out(logs::stats(m, c, request::<StatsRequest>(a)?).await?)),
        ),
        Tool::write(
            "create_proxy",
            "Creates a proxy owned by the caller; with enable_https and no cert_name a certificate is ordered.",
            Effect::AddsOutside,
            object_schema_of::<ProxySpec>(),
            object_schema_of::<ProxyCreated>(),
            call!(|m, c, a| out(proxies::create(m, c, request::<ProxySpec>(a)?).await?)),
        ),
        Tool::write(
            "update_proxy",
            "Changes the fields of a proxy given in `patch` (null clears an optional one).",
            Effect::Replaces,
            object_schema_of::<ProxyUpdate>(),
            object_schema_of::<Proxy>(),
            call!(|m, c, a| out(proxies::update(m, c, request::<ProxyUpdate>(a)?).await?)),
        ),
        Tool::write(
            "delete_proxy",
            "Deletes a proxy.",
            Effect::Replaces,
            object_schema_of::<ProxyKey>(),
            object_schema_of::<ProxyDeleted>(),
            call!(|m, c, a| out(proxies::delete(m, c, request::<ProxyKey>(a)?).await?)),
        ),
        Tool::write(
            "set_proxy_auth",
            "Sets a proxy's authentication settings (auth_enabled defaults to true).",
            Effect::Replaces,
            input(hostname_prop(), &["hostname"], true),
            object_output(),
            call!(|m, c, a| {
                let hostname = text(&a, "hostname")?;
                let settings = from_json(body_without(a, "hostname"))?;
                out(resources::set_proxy_auth(m, c, ProxyAuthUpdate { hostname, settings }).await?)
            }),
        ),
        Tool::write(
            "clear_proxy_auth",
            "Turns a proxy's authentication off and resets its settings.",
            Effect::Replaces,
            host_only(),
            object_output(),
            call!(|m, c, a| out(resources::clear_proxy_auth(m, c, request::<ProxyKey>(a)?).await?)),
        ),
        Tool::write(
            "set_proxy_resource",
            "Sets a proxy's protected resource (MCP) settings: endpoint, scopes, ...",
            Effect::Replaces,
            input(hostname_prop(), &["hostname"], true),
            object_output(),
            call!(|m, c, a| {
                let hostname = text(&a, "hostname")?;
                let settings = from_json(body_without(a, "hostname"))?;
                out(resources::set_proxy_resource(m, c, ProxyResourceUpdate { hostname, settings }).await?)
            }),
        ),
        Tool::write(
            "clear_proxy_resource",
            "Removes a proxy's protected resource settings.",
            Effect::Replaces,
            host_only(),
            object_output(),
            call!(|m, c, a| out(resources::clear_proxy_resource(m, c, request::<ProxyKey>(a)?).await?)),
        ),
        Tool::write(
            "create_route",
            "Creates a route owned by the caller.",
            Effect::Adds,
            input(
                json!({
                    "path_pattern": {"type": "string"},
                    "target_type": {"type": "string", "enum": ["port", "service", "hostname", "url"]},
                    "target_value": {"type": "string"},
                    "priority": {"type": "integer"},
                    "scope": {"type": "string", "enum": ["global", "proxy"]},
                    "proxy_hostnames": {"type": "array", "items": {"type": "string"}},
                }),
                &["path_pattern", "target_type", "target_value"],
                true,
            ),
            object_output(),
            call!(|m, c, a| out(routes::create(m, c, request::<RouteSpec>(a)?).await?)),
        ),
        Tool::write(
            "update_route",
            "Changes the given fields of a route.",
            Effect::Replaces,
            input(json!({"route_id": {"type": "string"}}), &["route_id"], true),
            object_output(),
            call!(|m, c, a| {
                let route_id = text(&a, "route_id")?;
                let patch = from_json(body_without(a, "route_id"))?;
                out(routes::update(m, c, RouteUpdate { route_id, patch }).await?)
            }),
        ),
        Tool::write(
            "delete_route",
            "Deletes a route.",
            Effect::Replaces,
            named("route_id", "The route's id."),
            json!({"type": "object", "properties": {"status": {"type": "string"}, "route_id": {"type": "string"}}, "required": ["status", "route_id"]}),
            call!(|m, c, a| out(routes::delete(m, c, request::<RouteKey>(a)?).await?)),
        ),
        Tool::write(
            "issue_certificate",
            "Orders a certificate for the given domains from the ACME directory; follow it with get_certificate_status.",
            Effect::AddsOutside,
            input(
                json!({
                    "cert_name": {"type": "string"},
                    "domains": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "email": {"type": "string"},
                    "staging": {"type": "boolean"},
                    "key_type": {"type": "string", "enum": ["rsa", "ecdsa"]},
                }),
                &["cert_name", "domains"],
                false,
            ),
            object_output(),
            call!(|m, c, a| out(m.request_cert(c, request::<CertRequest>(a)?, true).await?)),
        ),
        Tool::write(
            "renew_certificate",
            "Renews an ACME certificate now (production: re-issue from the production directory).",
            Effect::AddsOutside,
            input(
                json!({"cert_name": {"type": "string"}, "production": {"type": "boolean"}}),
                &["cert_name"],
                false,
            ),
            object_output(),
            call!(|m, c, a| {
                let production = a.get("production").and_then(Value::as_bool).unwrap_or(false);
                out(m.renew_cert(c, &text(&a, "cert_name")?, production).await?)
            }),
        ),
        Tool::write(
            "delete_certificate",
            "Deletes a certificate.",
            Effect::Replaces,
            named("cert_name", "The certificate's name."),
            json!({"type": "object", "properties": {"status": {"type": "string"}, "cert_name": {"type": "string"}}, "required": ["status", "cert_name"]}),
            call!(|m, c, a| out(certs::delete(m, c, request::<CertKey>(a)?).await?)),
        ),
        Tool::write(
            "delete_token",
            "Deletes an API token and everything it owns (admin).",
            Effect::Replaces,
            named("name", "The token's name."),
            object_output(),
            call!(|m, c, a| out(tokens::delete(m, c, request::<TokenKey>(a)?).await?.deleted)),
        ),
    ];
    tools.extend(super::oauth_tools::all());
    tools.extend(super::service_tools::all());
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_verb_noun_and_the_reference_names_are_kept() {
        let tools = all();
        let names: Vec<&str> = tools.iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate tool names");
        for n in [
            "echo",
            "health_check",
            "list_proxies",
            "create_proxy",
            "delete_proxy",
            "list_certificates",
            "list_services",
        ] {
            assert!(names.contains(&n), "{n} missing");
        }
        for n in names.iter().filter(|n| **n != "echo") {
            assert!(n.contains('_') && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{n}");
        }
        assert!(!names.iter().any(|n| n.contains("command")), "no tool runs commands");
    }

    #[test]
    fn annotations_say_the_truth() {
        for t in all() {
            let verb = t.name.split('_').next().unwrap_or_default();
            let reads = matches!(verb, "list" | "show" | "get" | "health" | "echo" | "check");
            assert_eq!(!t.write, reads, "{}: readOnlyHint must match the verb", t.name);
            if verb == "delete" {
                assert!(t.destructive && t.idempotent, "{}", t.name);
            }
            if !t.write {
                assert!(!t.destructive && t.idempotent, "{}", t.name);
            }
            assert_eq!(t.input["type"], "object", "{}", t.name);
            assert_eq!(t.output["type"], "object", "{}", t.name);
        }
    }
}
