//! The suite's fixture tools, by the names its scenarios call: static
//! content of every kind, an error result, progress and log notifications,
//! questions to the client (sampling, elicitation, roots) in either
//! revision's way, and the 2020-12 schema the suite checks is kept intact.

use std::time::Duration;

use futures::future::BoxFuture;
use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};

use super::{PNG, WAV};
use crate::mcp::peer::{Asked, Peer};
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
fn one_string(name: &str, what: &str) -> Value {
    json!({"type": "object", "properties": {name: {"type": "string", "description": what}}, "required": [name]})
}

/// A string argument of a call ("" when absent).
pub(super) fn arg<'a>(a: &'a Args, name: &str) -> &'a str {
    a.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The text a sampling answer carries.
fn sampled_text(answer: &Value) -> String {
    let content = &answer["content"];
    let first = if content.is_array() { &content[0] } else { content };
    first["text"].as_str().unwrap_or("(no text)").to_string()
}

/// An elicitation form request.
fn form(message: &str, schema: Value) -> Value {
    json!({"mode": "form", "message": message, "requestedSchema": schema})
}

/// A sampling request of one user message.
fn sample(prompt: &str, max_tokens: u32) -> Value {
    json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": max_tokens})
}

/// Runs `questions` and renders the answers with `done`, or returns the
/// `InputRequiredResult` that asks for them.
async fn asking(
    peer: &Peer,
    questions: Vec<(&str, &str, Value)>,
    done: impl FnOnce(&Map<String, Value>) -> Value,
) -> Result<Value, RpcError> {
    Ok(match peer.ask_all(questions).await? {
        Asked::Answers(a) => done(&a),
        Asked::InputRequired(r) => r,
    })
}

/// The elicitation answer rendered as the suite's fixtures do.
fn elicited(a: &Value) -> String {
    format!(
        "action={}, content={}",
        a["action"].as_str().unwrap_or("unknown"),
        a.get("content").cloned().unwrap_or_else(|| json!({}))
    )
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

/// The SEP-1034 form: a default for every primitive type.
fn defaults_form() -> Value {
    form(
        "Please review and update the form fields with defaults",
        json!({"type": "object", "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": true},
        }, "required": []}),
    )
}

/// The SEP-1330 form: the five kinds of enum.
fn enums_form() -> Value {
    let titled = |prefix: &str, word: &str| -> Vec<Value> {
        ["First", "Second", "Third"]
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"const": format!("{prefix}{}", i + 1), "title": format!("{t} {word}")}))
            .collect()
    };
    form(
        "Please select options from the enum fields",
        json!({"type": "object", "properties": {
            "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": titled("value", "Option")},
            "legacyEnum": {"type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"],
                           "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3,
                              "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3,
                            "items": {"anyOf": titled("value", "Choice")}},
        }, "required": []}),
    )
}

/// A one-field elicitation form.
pub(super) fn ask_field(message: &str, field: &str, kind: &str) -> Value {
    json!({"message": message, "requestedSchema": {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}})
}

/// The fixture's boxed behaviour from an async block.
macro_rules! call {
    (|$p:ident, $a:ident| $body:expr) => {
        |$p, $a| Box::pin(async move { $body })
    };
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
            "test_sampling",
            "Asks the client's model to answer a prompt.",
            one_string("prompt", "The prompt to send to the LLM"),
            call!(
                |p, a| asking(p, vec![("answer", "sampling/createMessage", sample(arg(a, "prompt"), 100))], |r| {
                    text(format!("LLM response: {}", sampled_text(&r["answer"])))
                })
                .await
            ),
        ),
        fixture(
            "test_elicitation",
            "Asks the user for a username and an e-mail address.",
            one_string("message", "The message to show the user"),
            call!(|p, a| {
                let schema = json!({"type": "object", "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"},
                }, "required": ["username", "email"]});
                asking(p, vec![("user", "elicitation/create", form(arg(a, "message"), schema))], |r| {
                    text(format!("User response: {}", elicited(&r["user"])))
                })
                .await
            }),
        ),
        fixture(
            "test_elicitation_sep1034_defaults",
            "Asks for a form whose fields have defaults (SEP-1034).",
            no_args(),
            call!(|p, _a| asking(p, vec![("form", "elicitation/create", defaults_form())], |r| {
                text(format!("Elicitation completed: {}", elicited(&r["form"])))
            })
            .await),
        ),
        fixture(
            "test_elicitation_sep1330_enums",
            "Asks for a form with every kind of enum (SEP-1330).",
            no_args(),
            call!(|p, _a| asking(p, vec![("form", "elicitation/create", enums_form())], |r| {
                text(format!("Elicitation completed: {}", elicited(&r["form"])))
            })
            .await),
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
            "test_missing_capability",
            "Needs the client's sampling capability.",
            no_args(),
            call!(
                |p, _a| asking(p, vec![("answer", "sampling/createMessage", sample("Say hello", 10))], |r| {
                    text(format!("LLM response: {}", sampled_text(&r["answer"])))
                })
                .await
            ),
        ),
        fixture(
            "test_streaming_elicitation",
            "Reports progress, then asks the user a question.",
            no_args(),
            call!(|p, _a| {
                p.progress(0, 1, "asking");
                asking(
                    p,
                    vec![("answer", "elicitation/create", ask_field("Continue?", "ok", "boolean"))],
                    |r| text(format!("Elicitation completed: {}", elicited(&r["answer"]))),
                )
                .await
            }),
        ),
        fixture(
            "test_input_required_result_elicitation",
            "Asks the user's name.",
            no_args(),
            call!(|p, _a| asking(
                p,
                vec![("user_name", "elicitation/create", ask_field("What is your name?", "name", "string"))],
                |r| {
                    text(format!(
                        "Hello, {}!",
                        r["user_name"]["content"]["name"].as_str().unwrap_or("stranger")
                    ))
                }
            )
            .await),
        ),
        fixture(
            "test_input_required_result_sampling",
            "Asks the client's model a question.",
            no_args(),
            call!(|p, _a| asking(
                p,
                vec![(
                    "capital_question",
                    "sampling/createMessage",
                    sample("What is the capital of France?", 100)
                )],
                |r| { text(format!("The model said: {}", sampled_text(&r["capital_question"]))) }
            )
            .await),
        ),
        fixture(
            "test_input_required_result_list_roots",
            "Lists the client's roots.",
            no_args(),
            call!(|p, _a| asking(p, vec![("client_roots", "roots/list", json!({}))], |r| {
                let roots: Vec<&str> = r["client_roots"]["roots"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x["uri"].as_str()).collect())
                    .unwrap_or_default();
                text(format!("Client roots: {}", roots.join(", ")))
            })
            .await),
        ),
        fixture(
            "test_input_required_result_request_state",
            "Asks for a confirmation and checks the echoed request state.",
            no_args(),
            call!(|p, _a| {
                let resumed = p.resumed();
                asking(
                    p,
                    vec![("confirm", "elicitation/create", ask_field("Please confirm", "ok", "boolean"))],
                    |r| {
                        let state = if resumed { "state-ok" } else { "no state" };
                        text(format!("{state}: confirmed {}", elicited(&r["confirm"])))
                    },
                )
                .await
            }),
        ),
        fixture(
            "test_input_required_result_multiple_inputs",
            "Asks the user, the model and the roots at once.",
            no_args(),
            call!(|p, _a| asking(
                p,
                vec![
                    ("user_name", "elicitation/create", ask_field("What is your name?", "name", "string")),
                    ("greeting", "sampling/createMessage", sample("Generate a greeting", 50)),
                    ("client_roots", "roots/list", json!({})),
                ],
                |r| text(format!("Got {} answers: {}", r.len(), sampled_text(&r["greeting"]))),
            )
            .await),
        ),
        fixture(
            "test_input_required_result_multi_round",
            "Asks two questions, one round each.",
            no_args(),
            call!(|p, _a| {
                let first = match p
                    .ask_all(vec![(
                        "step1",
                        "elicitation/create",
                        ask_field("Step 1: What is your name?", "name", "string"),
                    )])
                    .await?
                {
                    Asked::Answers(a) => a,
                    Asked::InputRequired(r) => return Ok(r),
                };
                asking(
                    p,
                    vec![(
                        "step2",
                        "elicitation/create",
                        ask_field("Step 2: What is your favorite color?", "color", "string"),
                    )],
                    |r| {
                        text(format!(
                            "{} likes {}",
                            first["step1"]["content"]["name"].as_str().unwrap_or("someone"),
                            r["step2"]["content"]["color"].as_str().unwrap_or("no color")
                        ))
                    },
                )
                .await
            }),
        ),
        fixture(
            "test_input_required_result_tampered_state",
            "Asks for a confirmation; a changed request state is refused.",
            no_args(),
            call!(|p, _a| asking(
                p,
                vec![("confirm", "elicitation/create", ask_field("Please confirm", "ok", "boolean"))],
                |r| { text(format!("confirmed: {}", elicited(&r["confirm"]))) }
            )
            .await),
        ),
        fixture(
            "test_input_required_result_capabilities",
            "Asks only what the client's declared capabilities allow.",
            no_args(),
            call!(|p, _a| {
                let mut questions = Vec::new();
                if p.has_capability("elicitation") {
                    questions.push(("user_name", "elicitation/create", ask_field("What is your name?", "name", "string")));
                }
                if p.has_capability("sampling") {
                    questions.push(("greeting", "sampling/createMessage", sample("Generate a greeting", 50)));
                }
                if p.has_capability("roots") {
                    questions.push(("client_roots", "roots/list", json!({})));
                }
                asking(p, questions, |r| text(format!("Got {} answers", r.len()))).await
            }),
        ),
    ];
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
