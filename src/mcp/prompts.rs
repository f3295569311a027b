//! MCP prompts: two starting points for a model administering Portcullis,
//! each filled with the caller's own data read through `manage` (so a prompt
//! never shows what the caller could not read through REST):
//! `diagnose_proxy` (one proxy, embedded with its last day of log counts) and
//! `review_certificates` (every certificate the caller sees). Completion of
//! their arguments and of the resource templates' is here too.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::protocol::{code, RpcError};
use super::resources::{self, internal};
use crate::manage::{Caller, ManageError, Manager};

/// Completion answers at most this many values (the spec's cap).
const MAX_COMPLETIONS: usize = 100;

/// `prompts/list`.
pub fn list() -> Value {
    json!({"prompts": [
        {
            "name": "diagnose_proxy",
            "title": "Diagnose a proxy",
            "description": "Looks at one proxy's settings and its last 24 hours of requests and errors, and asks for a diagnosis.",
            "arguments": [{"name": "hostname", "description": "The proxy's hostname.", "required": true}],
        },
        {
            "name": "review_certificates",
            "title": "Review certificates",
            "description": "Lists the caller's certificates with their status and asks which need attention (failed, pending, expiring).",
            "arguments": [],
        },
    ]})
}

/// A string argument of `prompts/get`.
fn argument<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, RpcError> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, format!("argument {name:?} is required")))
}

/// A user message of plain text.
fn said(text: String) -> Value {
    json!({"role": "user", "content": {"type": "text", "text": text}})
}

/// A user message embedding a resource read as `resources/read` would.
fn embedded(read: Value) -> Value {
    let resource = read["contents"][0].clone();
    json!({"role": "user", "content": {"type": "resource", "resource": resource}})
}

/// `prompts/get`: an unknown prompt or a missing argument is `-32602`; a
/// proxy the caller may not see is "not found" like everywhere else.
pub async fn get(m: &Manager, caller: &Caller, params: &Map<String, Value>, version: &str) -> Result<Value, RpcError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or_default();
    let empty = Map::new();
    let args = params.get("arguments").and_then(Value::as_object).unwrap_or(&empty);
    match name {
        "diagnose_proxy" => {
            let host = argument(args, "hostname")?;
            let proxy = resources::read(m, caller, &format!("{}{host}", resources::PROXY_PREFIX), version).await?;
            let stats = crate::manage::logs::stats(
                m,
                caller,
                crate::manage::logs::StatsRequest {
                    hours: None,
                    host: Some(host.to_string()),
                },
            )
            .await
            .map_err(|e| internal(&e))?;
            Ok(json!({
                "description": format!("Diagnose the proxy {host}"),
                "messages": [
                    said(format!(
                        "Diagnose the Portcullis proxy {host}. Below are its settings and its request and error counts \
                         of the last 24 hours. Say whether it is healthy; if not, name the likely cause (target down, \
                         certificate, authentication, routing) and the tool calls that would confirm or fix it."
                    )),
                    embedded(proxy),
                    said(format!(
                        "Its requests and errors of the last 24 hours:\n{}",
                        serde_json::to_string_pretty(&stats).unwrap_or_default()
                    )),
                ],
            }))
        }
        "review_certificates" => {
            let list = crate::manage::certs::list(m, caller).await.map_err(|e| internal(&e))?;
            Ok(json!({
                "description": "Review the certificates",
                "messages": [said(format!(
                    "Review these Portcullis certificates (JSON below). List those that failed, are still pending, or \
                     expire within 30 days, and for each the tool call that would help (renew_certificate, \
                     get_certificate_status).\n\n{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                ))],
            }))
        }
        other => Err(RpcError::new(
            StatusCode::OK,
            code::INVALID_PARAMS,
            format!("unknown prompt {other:?}"),
        )),
    }
}

/// `completion/complete`: the caller's hostnames for `diagnose_proxy` and
/// the proxy template, certificate names for the certificate template,
/// those starting with what was typed. An unknown prompt or template is
/// `-32602`; an argument with nothing to suggest gets no values.
pub async fn complete(m: &Manager, caller: &Caller, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let bad = |msg: String| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, msg);
    let reference = params
        .get("ref")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("params.ref is required".into()))?;
    let arg = params
        .get("argument")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("params.argument is required".into()))?;
    let arg_name = arg.get("name").and_then(Value::as_str).unwrap_or_default();
    let typed = arg.get("value").and_then(Value::as_str).unwrap_or_default();
    let known = match (reference.get("type").and_then(Value::as_str), reference) {
        (Some("ref/prompt"), r) => {
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            match name {
                "diagnose_proxy" => arg_name == "hostname",
                "review_certificates" => false,
                other => return Err(bad(format!("unknown prompt {other:?}"))),
            }
        }
        (Some("ref/resource"), r) => {
            let uri = r.get("uri").and_then(Value::as_str).unwrap_or_default();
            match resources::TEMPLATES.iter().find(|(t, _, _)| *t == uri) {
                Some((_, var, _)) => *var == arg_name,
                None => return Err(bad(format!("unknown resource template {uri:?}"))),
            }
        }
        _ => return Err(bad("params.ref.type must be ref/prompt or ref/resource".into())),
    };
    let mut values = if known {
        resources::names(m, caller, arg_name).await.map_err(|e: ManageError| internal(&e))?
    } else {
        Vec::new()
    };
    let typed = typed.to_ascii_lowercase();
    values.retain(|v| v.to_ascii_lowercase().starts_with(&typed));
    values.sort();
    let total = values.len();
    values.truncate(MAX_COMPLETIONS);
    Ok(json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_COMPLETIONS}}))
}
