//! The MCP methods this server answers, shared by both lifecycles:
//! `tools/list` and `tools/call` (over `tools`), `resources/*`,
//! `prompts/*` and `completion/complete` (`resources`, `prompts`), `ping`,
//! `initialize` and `logging/setLevel` (dated revisions), `server/discover`
//! (`2026-07-28`). With `MCP_CONFORMANCE_FIXTURES` the conformance suite's
//! fixtures (`conformance`) are answered beside our own.

use axum::http::{HeaderMap, StatusCode};
use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};

use super::access::{self, McpCaller};
use super::conformance;
use super::param_headers;
use super::peer::Peer;
use super::protocol::{code, RpcError, STATELESS, SUPPORTED};
use super::tools::{self, Tool};
use super::{prompts, resources, tasks};
use crate::manage::{ManageError, Manager};

/// The tool table, built once.
static TOOLS: Lazy<Vec<Tool>> = Lazy::new(tools::all);

/// Text content longer than this is replaced by a pointer to `structuredContent`.
const MAX_TEXT: usize = 4096;

/// Who we are, for `initialize` and `server/discover`.
pub fn server_info() -> Value {
    json!({"name": "portcullis", "title": "Portcullis management", "version": env!("CARGO_PKG_VERSION")})
}

/// What the model is told at `initialize`.
const INSTRUCTIONS: &str = "Manage Portcullis, an OAuth-aware edge proxy: proxies, routes, certificates, \
protected resources and tokens. Read tools need the mcp scope; tools that change something need the admin scope \
(or an API token, which keeps its ownership rules).";

/// The capabilities of a revision: the dated ones also take
/// `logging/setLevel`, resource subscriptions and a changed resource list
/// (both announced on the session's GET stream, `listen`); `2026-07-28`
/// has neither (they would need `subscriptions/listen`), and the tasks
/// extension when the conformance `fixtures` are on: only fixtures run as
/// tasks, so without them a client would be promised what no tool does.
/// Tools and prompts are fixed: no `listChanged`.
pub fn capabilities(version: &str, fixtures: bool) -> Value {
    let dated = version != STATELESS;
    let mut c = json!({
        "tools": {"listChanged": false},
        "resources": {"listChanged": dated, "subscribe": dated},
        "prompts": {"listChanged": false},
        "completions": {},
    });
    if dated {
        c["logging"] = json!({});
    } else if fixtures {
        c["extensions"] = json!({ tasks::EXTENSION: {} });
    }
    c
}

/// Appends the conformance fixtures' `extra` entries to the list under `key`.
fn with_fixtures(mut list: Value, key: &str, extra: Vec<Value>) -> Value {
    if let Some(items) = list.get_mut(key).and_then(Value::as_array_mut) {
        items.extend(extra);
    }
    list
}

/// Answers the request `method` of a session or stateless request for the
/// client `peer` (which knows its revision); `None` when this server has no
/// such method (the caller says so in its revision's way).
pub async fn dispatch(
    m: &Manager,
    who: &McpCaller,
    headers: &HeaderMap,
    id: &Value,
    method: &str,
    params: &Map<String, Value>,
    peer: &Peer,
) -> Result<Option<Value>, RpcError> {
    let caller = &who.caller;
    let version = peer.version();
    let fixtures = m.config.mcp_conformance_fixtures;
    let result = match method {
        "tools/list" => list_tools(fixtures),
        "tools/call" => call_tool(m, who, headers, id, params, peer).await?,
        "resources/list" => list_resources(m, caller).await.map_err(|e| e.with_id(id))?,
        "resources/templates/list" if fixtures => {
            with_fixtures(resources::templates(), "resourceTemplates", conformance::resources::templates())
        }
        "resources/templates/list" => resources::templates(),
        "resources/read" => {
            let uri = params
                .get("uri")
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, "resources/read needs params.uri").with_id(id))?;
            read_resource(m, caller, uri, version).await.map_err(|e| e.with_id(id))?
        }
        "prompts/list" if fixtures => with_fixtures(prompts::list(), "prompts", conformance::prompts::list()),
        "prompts/list" => prompts::list(),
        "prompts/get" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or_default();
            let empty = Map::new();
            let args = params.get("arguments").and_then(Value::as_object).unwrap_or(&empty);
            let fixture = match fixtures {
                true => conformance::prompts::get(peer, name, args).await,
                false => None,
            };
            match fixture {
                Some(r) => r.map_err(|e| e.with_id(id))?,
                None => prompts::get(m, caller, params, version).await.map_err(|e| e.with_id(id))?,
            }
        }
        "completion/complete" => {
            let prompt = params
                .get("ref")
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if fixtures && conformance::prompts::is_fixture(prompt) {
                conformance::prompts::complete()
            } else {
                prompts::complete(m, caller, params).await.map_err(|e| e.with_id(id))?
            }
        }
        other => match peer.task_request(other, params) {
            Some(r) => r.map_err(|e| e.with_id(id))?,
            None => return Ok(None),
        },
    };
    Ok(Some(result))
}

/// `resources/list` for `caller` (with the conformance fixtures when they are on).
pub async fn list_resources(m: &Manager, caller: &crate::manage::Caller) -> Result<Value, RpcError> {
    let list = resources::list(m, caller).await.map_err(|e| resources::internal(&e))?;
    Ok(match m.config.mcp_conformance_fixtures {
        true => with_fixtures(list, "resources", conformance::resources::list()),
        false => list,
    })
}

/// `resources/read` of `uri` for `caller` in `version` (a conformance
/// fixture when they are on).
pub async fn read_resource(m: &Manager, caller: &crate::manage::Caller, uri: &str, version: &str) -> Result<Value, RpcError> {
    match conformance::resources::read(uri).filter(|_| m.config.mcp_conformance_fixtures) {
        Some(fixture) => Ok(fixture),
        None => resources::read(m, caller, uri, version).await,
    }
}

/// The `initialize` result for the negotiated `version` (`fixtures`: see
/// [`capabilities`]).
pub fn initialize_result(version: &str, fixtures: bool) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": capabilities(version, fixtures),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

/// The `server/discover` result (`fixtures`: see [`capabilities`]).
pub fn discover_result(fixtures: bool) -> Value {
    json!({
        "supportedVersions": SUPPORTED,
        "capabilities": capabilities(STATELESS, fixtures),
        "instructions": INSTRUCTIONS,
        "_meta": {super::protocol::meta::SERVER_INFO: server_info()},
    })
}

/// The `tools/list` result (with the conformance fixtures when `fixtures`).
pub fn list_tools(fixtures: bool) -> Value {
    let mut tools: Vec<Value> = TOOLS.iter().map(Tool::describe).collect();
    if fixtures {
        tools.extend(conformance::tools::TOOLS.iter().map(|f| f.describe()));
    }
    json!({ "tools": tools })
}

/// `tools/call`: runs the named tool for the caller. An unknown tool is a
/// JSON-RPC error; a write by a token that may only read is a 403
/// `insufficient_scope` (the client may ask for `admin`); what the
/// operation refuses (validation, ownership, not found) is a tool result
/// with `isError`, so the model sees the reason.
pub async fn call_tool(
    m: &Manager,
    who: &McpCaller,
    headers: &HeaderMap,
    id: &Value,
    params: &Map<String, Value>,
    peer: &Peer,
) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::bad(code::INVALID_PARAMS, "tools/call needs params.name").with_id(id))?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Err(RpcError::bad(code::INVALID_PARAMS, "params.arguments must be an object").with_id(id)),
    };
    // Mcp-Param-* headers are a 2026-07-28 feature; older clients send none
    let param_headers = |schema: &Value| match peer.version() {
        STATELESS => param_headers::check(schema, &args, headers).map_err(|e| e.with_id(id)),
        _ => Ok(()),
    };
    if let Some(fixture) = conformance::tools::find(name).filter(|_| m.config.mcp_conformance_fixtures) {
        param_headers(&fixture.input)?;
        return (fixture.call)(peer, &args).await.map_err(|e| e.with_id(id));
    }
    let tool = TOOLS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, format!("unknown tool {name:?}")).with_id(id))?;
    param_headers(&tool.input)?;
    if tool.write && who.caller.read_only {
        let e = if who.oauth {
            access::insufficient_scope(
                &m.config,
                headers,
                "admin",
                &format!("{name} changes configuration: it needs the admin scope"),
            )
        } else {
            RpcError::new(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                format!("{name} changes configuration; this token may only read"),
            )
        };
        return Err(e.with_id(id));
    }
    let outcome = (tool.call)(m, &who.caller, args).await;
    tracing::info!(tool = name, by = %who.caller.name, ok = outcome.is_ok(), "MCP tool call");
    Ok(match outcome {
        Ok(v) => {
            let text = serde_json::to_string(&v).unwrap_or_default();
            let text = if text.len() <= MAX_TEXT {
                text
            } else {
                format!("{name}: {} bytes of JSON in structuredContent", text.len())
            };
            json!({"content": [{"type": "text", "text": text}], "structuredContent": v, "isError": false})
        }
        Err(e) => {
            let message = match &e {
                ManageError::Store(detail) => {
                    tracing::error!(tool = name, error = %detail, "store failure in an MCP tool");
                    "the store is unavailable, try again".to_string()
                }
                ManageError::Seal(_) => "a stored secret cannot be decrypted".to_string(),
                other => other.to_string(),
            };
            json!({"content": [{"type": "text", "text": message}], "isError": true})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tasks_extension_is_advertised_only_with_the_fixtures() {
        let extensions = |fixtures| discover_result(fixtures)["capabilities"].get("extensions").cloned();
        assert_eq!(extensions(false), None, "no real tool runs as a task");
        assert_eq!(extensions(true), Some(json!({ tasks::EXTENSION: {} })));
        for fixtures in [false, true] {
            assert!(initialize_result("2025-11-25", fixtures)["capabilities"]
                .get("extensions")
                .is_none());
        }
    }

    #[test]
    fn no_fixture_shares_a_name_with_a_management_tool_or_prompt() {
        let ours: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        for f in conformance::tools::TOOLS.iter() {
            assert!(!ours.contains(&f.name), "fixture tool {} shadows a management tool", f.name);
        }
        let prompts = prompts::list();
        let names = |list: &Value| -> Vec<String> {
            list["prompts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        };
        let ours = names(&prompts);
        assert!(!ours.is_empty());
        for f in conformance::prompts::list() {
            let name = f["name"].as_str().unwrap_or_default().to_string();
            assert!(!ours.contains(&name), "fixture prompt {name} shadows a management prompt");
        }
    }
}
