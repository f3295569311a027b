//! The OpenAPI document at `GET /api/v1/openapi.json` against the router
//! that serves the API (issue 15): every served path and method has an
//! entry, every entry is served.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::router::{norm, router_paths};
use crate::harness::{Portcullis, Redis};

/// A concrete path for a route pattern: each `{param}` (and `{*rest}`) filled.
fn concrete(pattern: &str) -> String {
    let re = regex::Regex::new(r"\{\*?[a-z_]+\}").unwrap();
    re.replace_all(pattern, "probe").into_owned()
}

/// The methods the server answers at `path`, from the `Allow` header of the
/// 405 a method no route uses (TRACE) gets; HEAD comes with GET and is left out.
async fn served_methods(p: &Portcullis, path: &str) -> BTreeSet<String> {
    let r = reqwest::Client::new()
        .request(reqwest::Method::TRACE, p.api(&concrete(path)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "TRACE {path} should be refused by the router");
    let allow = r.headers().get("allow").unwrap().to_str().unwrap().to_string();
    allow
        .split(',')
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty() && m != "head")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_what_the_router_serves() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    // Public: a new user's tools read it before they hold a token.
    let (s, doc) = p.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((norm(path), method.clone()));
        }
    }
    let mut served = BTreeSet::new();
    for path in router_paths() {
        for m in served_methods(&p, &path).await {
            served.insert((norm(&path.replace("{*", "{")), m));
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(undocumented.is_empty(), "served without an OpenAPI entry: {undocumented:?}");
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(unserved.is_empty(), "documented but not served: {unserved:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_operation_documents_its_result_and_its_errors() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (_, doc) = p.call("GET", "/api/v1/openapi.json", None, None).await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2') || k.starts_with('3')),
                "{method} {path} has no success answer"
            );
            if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                for code in ["401", "403", "404", "422"] {
                    let r = &responses[code]["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(r, "#/components/schemas/ErrorBody", "{method} {path} {code}");
                }
                assert_eq!(op["security"][0]["bearer"], Value::Array(vec![]), "{method} {path}");
            }
        }
    }
    // Every JSON success answer has a schema, except the protocol documents
    // whose shape their RFCs give (the OAuth server's endpoints, MCP's `/mcp`).
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !(path.starts_with("/api/v1/") || path == "/health") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (code, r) in op["responses"].as_object().unwrap() {
                let schema = &r["content"]["application/json"]["schema"];
                if code.starts_with('2') && !schema.is_null() {
                    assert_ne!(
                        schema,
                        &serde_json::json!({}),
                        "{method} {path} {code} answers JSON without a schema"
                    );
                }
            }
        }
    }
    // Every reference resolves inside the document.
    let text = doc.to_string();
    let re = regex::Regex::new(r##""\$ref":"#/components/schemas/([^"]+)""##).unwrap();
    for c in re.captures_iter(&text) {
        assert!(schemas.contains_key(&c[1]), "dangling reference to {}", &c[1]);
    }
    // A request type is the request's schema: required fields, no locked ones.
    let spec = &schemas["ProxySpec"];
    assert!(spec["required"].as_array().unwrap().contains(&Value::from("hostname")), "{spec}");
    assert!(spec["properties"].get("owner_token_hash").is_none(), "{spec}");
}
