//! The MCP service tools (issue 18) against the real engine, over `/mcp`
//! with the stateless revision: a service made by a tool runs, is listed,
//! and stays invisible to another owner; write tools keep the REST rules.

use serde_json::{json, Value};

use crate::admin_api::make_token;
use crate::harness::{Portcullis, Redis};
use crate::services::{httpd, start, wait_status, DOMAIN};

const VERSION: &str = "2026-07-28";

/// Calls `tool` with `args` as `token`; the JSON-RPC answer.
async fn call(p: &Portcullis, token: &str, tool: &str, args: Value) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": tool, "arguments": args,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    });
    let r = p
        .client
        .post(p.api("/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", VERSION)
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", tool)
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{tool}: not JSON: {text}"))
}

/// The structured result of a successful call.
fn ok(v: &Value) -> &Value {
    assert!(v["result"]["isError"] != json!(true) && v["error"].is_null(), "{v}");
    &v["result"]["structuredContent"]
}

/// The text of a failed call.
fn failed(v: &Value) -> String {
    assert!(v["result"]["isError"] == json!(true) || !v["error"].is_null(), "{v}");
    v.to_string()
}

fn names(list: &Value) -> Vec<String> {
    list["services"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["service_name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_made_through_mcp_runs_and_only_its_owner_sees_it() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let alice = make_token(&p, "alice", "user").await;
    let bob = make_token(&p, "bob", "user").await;

    let made = call(&p, &alice, "create_service", httpd("mcp-web", json!({"auto_proxy": true}))).await;
    let made = ok(&made);
    assert_eq!(made["service_name"], "mcp-web", "{made}");
    assert_eq!(made["proxy"]["hostname"], format!("mcp-web.{DOMAIN}"), "{made}");
    let body = wait_status(&p, &format!("mcp-web.{DOMAIN}"), "/", 200).await;
    assert_eq!(body.as_str().map(str::trim), Some("hello-mcp-web"));

    let mine = call(&p, &alice, "list_services", json!({})).await;
    assert_eq!(names(ok(&mine)), vec!["mcp-web".to_string()]);
    let shown = call(&p, &alice, "show_service", json!({"service_name": "mcp-web"})).await;
    assert_eq!(ok(&shown)["status"], "running", "{shown}");
    let ports = call(&p, &alice, "list_service_ports", json!({"service_name": "mcp-web"})).await;
    assert_eq!(ok(&ports)["ports"].as_array().map(Vec::len), Some(1), "{ports}");
    let logs = call(&p, &alice, "get_service_logs", json!({"service_name": "mcp-web"})).await;
    assert!(ok(&logs)["logs"].as_str().unwrap_or_default().contains("started-mcp-web"), "{logs}");

    // Bob sees nothing and can change nothing of Alice's.
    let theirs = call(&p, &bob, "list_services", json!({})).await;
    assert!(names(ok(&theirs)).is_empty(), "{theirs}");
    for (tool, args) in [
        ("show_service", json!({"service_name": "mcp-web"})),
        ("get_service_logs", json!({"service_name": "mcp-web"})),
        ("stop_service", json!({"service_name": "mcp-web"})),
        ("delete_service", json!({"service_name": "mcp-web"})),
    ] {
        let got = failed(&call(&p, &bob, tool, args).await);
        assert!(got.contains("not found") || got.contains("404"), "{tool}: {got}");
    }
    // Host access is refused by the tool as by REST, naming the field.
    let mut evil = httpd("mcp-evil", json!({}));
    evil["privileged"] = json!(true);
    let got = failed(&call(&p, &alice, "create_service", evil).await);
    assert!(got.contains("privileged") && got.contains("never accepted"), "{got}");
    // Still running: nothing Bob did reached it.
    wait_status(&p, &format!("mcp-web.{DOMAIN}"), "/", 200).await;

    let gone = call(&p, &alice, "delete_service", json!({"service_name": "mcp-web"})).await;
    assert_eq!(ok(&gone)["status"], "deleted", "{gone}");
    let after = call(&p, &alice, "list_services", json!({})).await;
    assert!(names(ok(&after)).is_empty(), "{after}");
}
