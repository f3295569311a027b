//! The suite's fixtures that ask the client something: sampling,
//! elicitation (with SEP-1034 defaults and SEP-1330 enums) and roots, in a
//! session on the response stream and in `2026-07-28` through
//! `InputRequiredResult` rounds (SEP-2322): one question, several at once,
//! several rounds, the echoed `requestState`, only what the client's
//! capabilities allow.

use serde_json::{json, Map, Value};

use super::tools::{arg, no_args, one_string, text, Fixture};
use crate::mcp::peer::{Asked, Peer};
use crate::mcp::protocol::RpcError;

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

/// Every asking fixture.
pub fn all() -> Vec<Fixture> {
    let fixture = |name, description, input, call| Fixture {
        name,
        description,
        input,
        call,
    };
    vec![
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
    ]
}
