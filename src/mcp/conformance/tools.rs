//! The suite's fixture tools, by the names its scenarios call: static
//! content of every kind, an error result, progress and log notifications,
//! the 2020-12 schema the suite checks is kept intact, an `x-mcp-header`
//! argument, a stream closed before the result. [`TOOLS`] also holds those that ask the client
//! (`asking_tools`) and those that run as tasks (`task_tools`).

use std::time::Duration;

use futures::future::BoxFuture;
use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};

use super::{PNG, WAV};
use crate::mcp::peer::Peer;
use crate::mcp::protocol::RpcError;

/// Arguments of a call.
pub(super) type Args = Map<String, Value>;

/// What a fixture does when called: the tool result (or an
/// `InputRequiredResult`), or a JSON-RPC error.
pub(super) type Call = for<'a> fn(&'a Peer, &'a Args) -> BoxFuture<'a, Result<Value, RpcError>>;

/// One fixture tool.
pub struct Fixture {
    /// The name the suite calls.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// JSON Schema of the arguments.
    pub input: Value,
    /// The behaviour.
    pub call: Call,
}

impl Fixture {
    /// The tool as `tools/list` shows it (read-only, closed world).
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input,
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false},
        })
    }
}

/// Pause between notifications, so a client sees them arrive one by one.
const STEP: Duration = Duration::from_millis(50);

/// A tool result of one text.
pub(super) fn text(t: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": t.into()}]})
}

/// No arguments.
pub(super) fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

/// One required string argument.
pub(super) fn one_string(name: &str, what: &str) -> Value {
    json!({"type": "object", "properties": {name: {"type": "string", "description": what}}, "required": [name]})
}

/// A string argument of a call ("" when absent).
pub(super) fn arg<'a>(a: &'a Args, name: &str) -> &'a str {
    a.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The schema of SEP-1613 / SEP-2106 the `json-schema-2020-12` scenario
/// expects to get back unchanged.
fn schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false,
    })
}

/// Every fixture tool.
pub static TOOLS: Lazy<Vec<Fixture>> = Lazy::new(|| {
    let fixture = |name, description, input, call| Fixture {
        name,
        description,
        input,
        call,
    };
    let mut tools = vec![
        fixture(
            "test_simple_text",
            "Returns a simple text.",
            no_args(),
            call!(|_p, _a| Ok(text("This is a simple text response for testing."))),
        ),
        fixture(
            "test_image_content",
            "Returns an image.",
            no_args(),
            call!(|_p, _a| Ok(json!({"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]}))),
        ),
        fixture(
            "test_audio_content",
            "Returns audio.",
            no_args(),
            call!(|_p, _a| Ok(json!({"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]}))),
        ),
        fixture(
            "test_embedded_resource",
            "Returns an embedded resource.",
            no_args(),
            call!(|_p, _a| Ok(json!({"content": [{"type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content."}}]}))),
        ),
        fixture(
            "test_multiple_content_types",
            "Returns text, an image and a resource.",
            no_args(),
            call!(|_p, _a| Ok(json!({"content": [
                {"type": "text", "text": "Multiple content types test:"},
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json",
                                                  "text": "{\"test\":\"data\",\"value\":123}"}},
            ]}))),
        ),
        fixture(
            "test_tool_with_logging",
            "Logs three messages while it runs.",
            no_args(),
            call!(|p, _a| {
                for (i, m) in ["Tool execution started", "Tool processing data", "Tool execution completed"]
                    .iter()
                    .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    p.log("info", "conformance", json!(m));
                }
                Ok(text("Tool with logging executed successfully"))
            }),
        ),
        fixture(
            "test_logging_tool",
            "Logs a message (only when the request set a log level).",
            no_args(),
            call!(|p, _a| {
                p.log("info", "conformance", json!("test_logging_tool ran"));
                Ok(text("logged"))
            }),
        ),
        fixture(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100.",
            no_args(),
            call!(|p, _a| {
                for (i, n) in [0u64, 50, 100].iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    p.progress(*n, 100, &format!("Completed step {n} of 100"));
                }
                Ok(text("Tool with progress executed successfully"))
            }),
        ),
        fixture(
            "test_error_handling",
            "Always fails (a tool result with isError).",
            no_args(),
            call!(|_p, _a| {
                let mut r = text("This tool intentionally returns an error for testing");
                r["isError"] = json!(true);
                Ok(r)
            }),
        ),
        fixture(
            "json_schema_2020_12_tool",
            "Takes arguments described with JSON Schema 2020-12 keywords (SEP-1613, SEP-2106).",
            schema_2020_12(),
            call!(|_p, a| Ok(text(format!("JSON Schema 2020-12 tool called with: {}", Value::Object(a.clone()))))),
        ),
        fixture(
            "test_custom_header",
            "Echoes a region given in the body and in the Mcp-Param-Region header (SEP-2243).",
            json!({"type": "object", "properties": {"region": {"type": "string", "description": "A region name", "x-mcp-header": "Region"}},
                   "required": ["region"]}),
            call!(|_p, a| Ok(text(format!("region: {}", arg(a, "region"))))),
        ),
        fixture(
            "test_reconnection",
            "Closes the response stream before its result, which the client gets by resuming (SEP-1699).",
            no_args(),
            call!(|p, _a| {
                p.close_stream();
                // the result comes after the close, while the client reconnects
                tokio::time::sleep(STEP).await;
                Ok(text("Reconnection test completed"))
            }),
        ),
    ];
    tools.extend(super::asking_tools::all());
    tools.extend(super::task_tools::all());
    tools
});

/// The fixture tool `name`.
pub fn find(name: &str) -> Option<&'static Fixture> {
    TOOLS.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_fixtures_answer_what_the_suite_expects() {
        let p = Peer::silent();
        let a = Args::new();
        let r = (find("test_simple_text").unwrap().call)(&p, &a).await.unwrap();
        assert_eq!(r["content"][0]["text"], "This is a simple text response for testing.");
        let r = (find("test_error_handling").unwrap().call)(&p, &a).await.unwrap();
        assert_eq!(r["isError"], true);
        assert!(find("list_proxies").is_none());
        for t in TOOLS.iter() {
            assert_eq!(t.describe()["inputSchema"]["type"], "object", "{}", t.name);
        }
    }

    #[tokio::test]
    async fn a_question_the_client_cannot_answer_is_missing_capability() {
        let e = (find("test_missing_capability").unwrap().call)(&Peer::silent(), &Args::new())
            .await
            .unwrap_err();
        assert_eq!(e.code, crate::mcp::protocol::code::MISSING_CAPABILITY);
    }
}
