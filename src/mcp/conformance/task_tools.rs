//! The suite's fixtures of the tasks extension (SEP-2663): a tool that
//! never runs as a task (`greet`), tools that may (`slow_compute`,
//! `protocol_error_job`, `confirm_delete`, `multi_input`) and tools that
//! only do (`failing_job`, `test_tool_with_task`, which first gathers
//! its input in `InputRequiredResult` rounds).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::asking_tools::ask_field;
use super::tools::{arg, no_args, text, Args, Fixture};
use crate::mcp::peer::{Asked, Peer};
use crate::mcp::protocol::{code, RpcError};
use crate::mcp::tasks::Support;

/// Longest `slow_compute` accepted, seconds.
const MAX_SECONDS: u64 = 120;

fn fixture(name: &'static str, description: &'static str, input: Value, call: super::tools::Call) -> Fixture {
    Fixture {
        name,
        description,
        input,
        call,
    }
}

/// The answers to one elicitation question as text.
fn answered(a: &Value, field: &str) -> String {
    a["content"][field].to_string()
}

fn slow_compute<'a>(p: &'a Peer, a: &'a Args) -> futures::future::BoxFuture<'a, Result<Value, RpcError>> {
    let seconds = a.get("seconds").and_then(Value::as_u64).unwrap_or(1).min(MAX_SECONDS);
    let label = arg(a, "label").to_string();
    Box::pin(p.run_as_task(Support::Optional, move |_| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            Ok(text(format!("computed {label} in {seconds}s")))
        })
    }))
}

fn failing_job<'a>(p: &'a Peer, _a: &'a Args) -> futures::future::BoxFuture<'a, Result<Value, RpcError>> {
    Box::pin(p.run_as_task(Support::Required, |_| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut r = text("failing_job failed, as it always does");
            r["isError"] = json!(true);
            Ok(r)
        })
    }))
}

fn protocol_error_job<'a>(p: &'a Peer, _a: &'a Args) -> futures::future::BoxFuture<'a, Result<Value, RpcError>> {
    Box::pin(p.run_as_task(Support::Optional, |_| {
        Box::pin(async {
            Err(RpcError::new(
                StatusCode::OK,
                code::INTERNAL,
                "protocol_error_job failed inside the server",
            ))
        })
    }))
}

fn confirm_delete<'a>(p: &'a Peer, a: &'a Args) -> futures::future::BoxFuture<'a, Result<Value, RpcError>> {
    let file = arg(a, "filename").to_string();
    Box::pin(p.run_as_task(Support::Optional, move |inner| {
        Box::pin(async move {
            let question = ask_field(&format!("Delete {file}?"), "confirm", "boolean");
            Ok(match inner.ask_all(vec![("confirm", "elicitation/create", question)]).await? {
                Asked::Answers(r) => text(format!(
                    "{file}: confirm={} (nothing is deleted)",
                    answered(&r["confirm"], "confirm")
                )),
                Asked::InputRequired(r) => r,
            })
        })
    }))
}

fn multi_input<'a>(p: &'a Peer, _a: &'a Args) -> futures::future::BoxFuture<'a, Result<Value, RpcError>> {
    Box::pin(p.run_as_task(Support::Optional, |inner| {
        Box::pin(async move {
            let questions = vec![
                ("name", "elicitation/create", ask_field("What is your name?", "name", "string")),
                ("confirm", "elicitation/create", ask_field("Continue?", "confirm", "boolean")),
            ];
            Ok(match inner.ask_all(questions).await? {
                Asked::Answers(r) => text(format!(
                    "name={}, confirm={}",
                    answered(&r["name"], "name"),
                    answered(&r["confirm"], "confirm")
                )),
                Asked::InputRequired(r) => r,
            })
        })
    }))
}

fn tool_with_task<'a>(p: &'a Peer, _a: &'a Args) -> futures::future::BoxFuture<'a, Result<Value, RpcError>> {
    Box::pin(async move {
        let question = ask_field("What is your name?", "name", "string");
        let name = match p.ask_all(vec![("user_name", "elicitation/create", question)]).await? {
            Asked::Answers(r) => r["user_name"]["content"]["name"].as_str().unwrap_or("stranger").to_string(),
            Asked::InputRequired(r) => return Ok(r),
        };
        p.run_as_task(Support::Required, move |_| {
            Box::pin(async move { Ok(text(format!("Hello, {name}! (from a task)"))) })
        })
        .await
    })
}

/// Every task fixture.
pub fn all() -> Vec<Fixture> {
    let seconds = json!({"type": "object", "properties": {
        "seconds": {"type": "integer", "minimum": 0, "maximum": MAX_SECONDS, "description": "How long to work"},
        "label": {"type": "string", "description": "A label echoed in the result"},
    }});
    vec![
        fixture(
            "greet",
            "Greets a name at once (never a task).",
            json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
            |_p, a| Box::pin(async move { Ok(text(format!("Hello, {}!", arg(a, "name")))) }),
        ),
        fixture(
            "slow_compute",
            "Works for some seconds (a task when the client supports tasks).",
            seconds,
            slow_compute,
        ),
        fixture(
            "failing_job",
            "Fails after a second with a tool error (only as a task).",
            no_args(),
            failing_job,
        ),
        fixture(
            "protocol_error_job",
            "Fails with a protocol error (a task when the client supports tasks).",
            no_args(),
            protocol_error_job,
        ),
        fixture(
            "confirm_delete",
            "Asks to confirm a deletion (deletes nothing).",
            json!({"type": "object", "properties": {"filename": {"type": "string"}}}),
            confirm_delete,
        ),
        fixture("multi_input", "Asks two questions at once.", no_args(), multi_input),
        fixture(
            "test_tool_with_task",
            "Asks a name, then greets it from a task.",
            no_args(),
            tool_with_task,
        ),
    ]
}
