//! The suite's fixture prompts (`test_*`), and completion of their arguments.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::PNG;
use crate::mcp::peer::{Asked, Peer};
use crate::mcp::protocol::{code, RpcError};

/// `prompts/list` entries of the fixtures.
pub fn list() -> Vec<Value> {
    let arg = |name: &str, what: &str| json!({"name": name, "description": what, "required": true});
    vec![
        json!({"name": "test_simple_prompt", "description": "A simple prompt without arguments", "arguments": []}),
        json!({"name": "test_prompt_with_arguments", "description": "A prompt with required arguments",
               "arguments": [arg("arg1", "First test argument"), arg("arg2", "Second test argument")]}),
        json!({"name": "test_prompt_with_embedded_resource", "description": "A prompt that includes an embedded resource",
               "arguments": [arg("resourceUri", "URI of the resource to embed")]}),
        json!({"name": "test_prompt_with_image", "description": "A prompt that includes image content", "arguments": []}),
        json!({"name": "test_input_required_result_prompt", "description": "A prompt that asks the user for context first",
               "arguments": []}),
    ]
}

/// True when `name` is a fixture prompt.
pub fn is_fixture(name: &str) -> bool {
    list().iter().any(|p| p["name"] == name)
}

fn user(content: Value) -> Value {
    json!({"role": "user", "content": content})
}

fn said(text: &str) -> Value {
    user(json!({"type": "text", "text": text}))
}

/// `prompts/get` of fixture `name`; `None` when it is not one.
pub async fn get(peer: &Peer, name: &str, args: &Map<String, Value>) -> Option<Result<Value, RpcError>> {
    let arg = |n: &str| {
        args.get(n)
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, format!("argument {n:?} is required")))
    };
    let messages = match name {
        "test_simple_prompt" => vec![said("This is a simple prompt for testing.")],
        "test_prompt_with_arguments" => match (arg("arg1"), arg("arg2")) {
            (Ok(a), Ok(b)) => vec![said(&format!("Prompt with arguments: arg1='{a}', arg2='{b}'"))],
            (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
        },
        "test_prompt_with_embedded_resource" => match arg("resourceUri") {
            Ok(uri) => vec![
                user(
                    json!({"type": "resource", "resource": {"uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}),
                ),
                said("Please process the embedded resource above."),
            ],
            Err(e) => return Some(Err(e)),
        },
        "test_prompt_with_image" => vec![
            user(json!({"type": "image", "data": PNG, "mimeType": "image/png"})),
            said("Please analyze the image above."),
        ],
        "test_input_required_result_prompt" => {
            let question = json!({"message": "What context should the prompt use?",
                "requestedSchema": {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}});
            match peer.ask_all(vec![("user_context", "elicitation/create", question)]).await {
                Ok(Asked::Answers(a)) => {
                    let context = a["user_context"]["content"]["context"].as_str().unwrap_or("none").to_string();
                    vec![said(&format!("Use this context: {context}"))]
                }
                Ok(Asked::InputRequired(r)) => return Some(Ok(r)),
                Err(e) => return Some(Err(e)),
            }
        }
        _ => return None,
    };
    Some(Ok(json!({"description": name, "messages": messages})))
}

/// `completion/complete` of a fixture prompt's argument: nothing to suggest.
pub fn complete() -> Value {
    json!({"completion": {"values": [], "total": 0, "hasMore": false}})
}
