//! The OpenAPI document at `GET /api/v1/openapi.json` against the router
//! that serves the API (issue 15): every served path and method has an
//! entry, every entry is served.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::router::{norm, router_paths};
use crate::harness::{Portcullis, Redis};

/// Whose error shape a path answers with.
enum Protocol {
    /// The OAuth authorization server (RFC 6749 section 5.2 errors).
    OAuth,
    /// `/mcp` (JSON-RPC error responses).
    JsonRpc,
    /// The REST API, `/health`, `/metrics` and the MCP resource metadata.
    Other,
}

fn protocol(path: &str) -> Protocol {
    match path {
        "/mcp" => Protocol::JsonRpc,
        "/health" | "/metrics" | "/.well-known/oauth-protected-resource/mcp" => Protocol::Other,
        p if p.starts_with("/api/v1/") => Protocol::Other,
        _ => Protocol::OAuth,
    }
}

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
    // Every JSON success answer of every path has a schema; the OAuth
    // server's errors are RFC 6749's, `/mcp`'s are JSON-RPC error
    // responses; a redirect says where to in `Location`.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let errors = match protocol(path) {
            Protocol::OAuth => Some("#/components/schemas/OAuthErrorBody"),
            Protocol::JsonRpc => Some("#/components/schemas/JsonRpcResponse"),
            Protocol::Other => None,
        };
        for (method, op) in item.as_object().unwrap() {
            for (code, r) in op["responses"].as_object().unwrap() {
                let schema = &r["content"]["application/json"]["schema"];
                if code.starts_with('2') && !schema.is_null() {
                    assert!(
                        schema.as_object().is_some_and(|o| !o.is_empty()),
                        "{method} {path} {code} answers JSON without a schema"
                    );
                }
                if let (Some(e), true) = (errors, code.starts_with('4')) {
                    assert_eq!(schema["$ref"], e, "{method} {path} {code}");
                }
                if code == "302" || code == "303" {
                    assert_eq!(r["headers"]["Location"]["required"], true, "{method} {path} {code}");
                }
            }
        }
    }
    let body = |path: &str, method: &str| doc["paths"][path][method]["requestBody"]["content"].clone();
    let form = &body("/token", "post")["application/x-www-form-urlencoded"]["schema"]["$ref"];
    assert_eq!(form, "#/components/schemas/TokenRequest");
    for field in [
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "device_code",
        "resource",
    ] {
        assert!(
            schemas["TokenRequest"]["properties"].get(field).is_some(),
            "TokenRequest lacks {field}"
        );
    }
    assert_eq!(
        body("/mcp", "post")["application/json"]["schema"]["$ref"],
        "#/components/schemas/JsonRpcRequest"
    );
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

/// The named schema a `$ref` points to.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => resolve(doc, &doc["components"]["schemas"][name]),
        None => schema,
    }
}

/// Every property name `schema` documents, through references and `allOf`.
fn documented(doc: &Value, schema: &Value, out: &mut BTreeSet<String>) {
    let s = resolve(doc, schema);
    if let Some(p) = s["properties"].as_object() {
        out.extend(p.keys().cloned());
    }
    for part in s["allOf"].as_array().into_iter().flatten() {
        documented(doc, part, out);
    }
}

/// Why `value` does not match `schema` (a JSON Schema as utoipa writes
/// them: types, properties, required, items, allOf, oneOf, anyOf), or
/// nothing. Objects must not carry fields the schema does not name, so a
/// field added to an answer without its schema is caught too.
fn mismatch(doc: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    let s = resolve(doc, schema);
    if let Some(types) = s.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = |t: &str| match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        };
        if !types.iter().any(|t| fits(t)) {
            return Some(format!("{at}: {value} is not {types:?}"));
        }
    }
    for part in s["allOf"].as_array().into_iter().flatten() {
        if let Some(m) = mismatch_loose(doc, part, value, at) {
            return Some(m);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s[key].as_array() {
            if alts.iter().all(|a| mismatch(doc, a, value, at).is_some()) {
                return Some(format!("{at}: {value} matches no alternative of {key}"));
            }
        }
    }
    if let Some(obj) = value.as_object() {
        for r in s["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                return Some(format!("{at}: required field {r} is missing"));
            }
        }
        let mut known = BTreeSet::new();
        documented(doc, s, &mut known);
        if !known.is_empty() && s.get("additionalProperties").is_none() {
            if let Some(extra) = obj.keys().find(|k| !known.contains(*k)) {
                return Some(format!("{at}: field {extra} is not in the schema"));
            }
        }
        for (k, v) in obj {
            if let Some(ps) = s["properties"].get(k) {
                if let Some(m) = mismatch(doc, ps, v, &format!("{at}.{k}")) {
                    return Some(m);
                }
            }
        }
    }
    if let (Some(items), Some(a)) = (s.get("items"), value.as_array()) {
        for (i, v) in a.iter().enumerate() {
            if let Some(m) = mismatch(doc, items, v, &format!("{at}[{i}]")) {
                return Some(m);
            }
        }
    }
    None
}

/// `mismatch` for one part of an `allOf`: the object may carry the other
/// parts' fields.
fn mismatch_loose(doc: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    let s = resolve(doc, schema);
    let mut open = s.clone();
    if let Some(o) = open.as_object_mut() {
        o.insert("additionalProperties".into(), Value::Bool(true));
    }
    mismatch(doc, &open, value, at)
}

/// The schema the document gives for `status` of `method path`.
fn answer_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let s = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(!s.is_null(), "{method} {path} documents no JSON answer {status}");
    s
}

/// A real answer of `method path` with `status`, checked against the document.
fn conforms(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    if let Some(m) = mismatch(doc, answer_schema(doc, method, path, status), body, "$") {
        panic!("{method} {path} {status} does not match its schema: {m}\n{body}");
    }
}

/// Sends a form to `path`; (status, JSON body or the text).
async fn post_form(p: &Portcullis, path: &str, form: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(p.api(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The OAuth server's and `/mcp`'s real answers, success and error, match
/// the schemas the document gives them: the types describe what the
/// handlers send, and a field added to an answer without its schema fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_answers_match_their_documented_schemas() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (_, doc) = p.call("GET", "/api/v1/openapi.json", None, None).await;

    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/jwks",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (s, v) = p.call("GET", path, None, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        conforms(&doc, "get", path, 200, &v);
    }

    // Registration and its management (RFC 7591, 7592).
    let meta = serde_json::json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "schema probe",
        "grant_types": ["authorization_code", "refresh_token"]});
    let (s, reg) = p.call("POST", "/register", None, Some(meta.clone())).await;
    assert_eq!(s, 201, "{reg}");
    conforms(&doc, "post", "/register", 201, &reg);
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let reg_token = reg["registration_access_token"].as_str().unwrap();
    let (s, v) = p.call("GET", &format!("/register/{id}"), Some(reg_token), None).await;
    assert_eq!(s, 200, "{v}");
    conforms(&doc, "get", "/register/{client_id}", 200, &v);
    let (s, v) = p.call("GET", &format!("/register/{id}"), Some("prg_wrong"), None).await;
    assert_eq!(s, 401, "{v}");
    conforms(&doc, "get", "/register/{client_id}", 401, &v);
    let (s, v) = p
        .call("POST", "/register", None, Some(serde_json::json!({"redirect_uris": ["ftp://x"]})))
        .await;
    assert_eq!(s, 400, "{v}");
    conforms(&doc, "post", "/register", 400, &v);

    // The token endpoint's errors, client authentication failed included.
    let creds = format!("client_id={id}&client_secret={secret}");
    let (s, v) = post_form(&p, "/token", &format!("grant_type=authorization_code&code=nope&{creds}"), None).await;
    assert_eq!(s, 400, "{v}");
    conforms(&doc, "post", "/token", 400, &v);
    let (s, v) = post_form(
        &p,
        "/token",
        &format!("grant_type=refresh_token&refresh_token=x&client_id={id}&client_secret=no"),
        None,
    )
    .await;
    assert_eq!(s, 401, "{v}");
    conforms(&doc, "post", "/token", 401, &v);

    // Introspection of a live access token, of nonsense, and /verify.
    let claims = serde_json::json!({"username": "alice", "email": "alice@example.com", "scope": "user", "aud": ["https://probe.test"]});
    let (s, minted) = p.admin("POST", "/api/v1/oauth/test-token", Some(claims)).await;
    assert_eq!(s, 201, "{minted}");
    let at = minted["access_token"].as_str().unwrap();
    let admin = p.admin_token.clone();
    let (s, v) = post_form(&p, "/introspect", &format!("token={at}"), Some(&admin)).await;
    assert_eq!((s, &v["active"]), (200, &Value::Bool(true)), "{v}");
    conforms(&doc, "post", "/introspect", 200, &v);
    // The check itself: a field the schema does not name, a missing
    // required one and a wrong type are each caught.
    let schema = answer_schema(&doc, "post", "/introspect", 200);
    let mut drift = v.clone();
    drift["surprise"] = Value::from(1);
    assert!(mismatch(&doc, schema, &drift, "$").is_some_and(|m| m.contains("surprise")));
    let mut drift = v.clone();
    drift.as_object_mut().unwrap().remove("active");
    assert!(mismatch(&doc, schema, &drift, "$").is_some_and(|m| m.contains("active")));
    let mut drift = v.clone();
    drift["exp"] = Value::from("soon");
    assert!(mismatch(&doc, schema, &drift, "$").is_some_and(|m| m.contains("exp")));
    let (s, v) = post_form(&p, "/introspect", "token=not-a-token", Some(&admin)).await;
    assert_eq!(v, serde_json::json!({"active": false}), "{s}");
    conforms(&doc, "post", "/introspect", 200, &v);
    let verify = "/verify?resource=https://probe.test";
    let (s, v) = p.call("GET", verify, Some(at), None).await;
    assert_eq!(s, 200, "{v}");
    conforms(&doc, "get", "/verify", 200, &v);
    let (s, v) = p.call("GET", verify, None, None).await;
    assert_eq!(s, 401, "{v}");
    conforms(&doc, "get", "/verify", 401, &v);

    // /mcp: a result and an error, both JSON-RPC responses.
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "schema", "version": "0"}}});
    let mcp = |token: Option<String>| {
        let mut rb = reqwest::Client::new()
            .post(p.api("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb
    };
    for (token, status) in [(Some(admin.clone()), 200), (None, 401)] {
        let r = mcp(token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let v: Value = r.json().await.unwrap();
        conforms(&doc, "post", "/mcp", status, &v);
        let mut drift = v.clone();
        drift["error"] = Value::from("text");
        assert!(
            mismatch(&doc, answer_schema(&doc, "post", "/mcp", status), &drift, "$").is_some(),
            "{drift}"
        );
    }
    // The OpenID document is the RFC 8414 metadata and its own fields.
    let (_, oidc) = p.call("GET", "/.well-known/openid-configuration", None, None).await;
    let mut drift = oidc.clone();
    drift.as_object_mut().unwrap().remove("token_endpoint");
    let schema = answer_schema(&doc, "get", "/.well-known/openid-configuration", 200);
    assert!(mismatch(&doc, schema, &drift, "$").is_some_and(|m| m.contains("token_endpoint")));
}

/// `v` with every `$ref` under `#/$defs/` pointed at the document's
/// components instead.
fn refs_to_components(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match x {
                    Value::String(s) if k == "$ref" => *s = s.replace("#/$defs/", "#/components/schemas/"),
                    _ => refs_to_components(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(refs_to_components),
        _ => {}
    }
}

/// An MCP tool and the REST operation taking the same typed request declare
/// the same schema: the tool's `inputSchema` is the request body's schema,
/// and each definition it carries is the document's component of that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tool_inputs_are_the_rest_request_schemas() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (_, doc) = p.call("GET", "/api/v1/openapi.json", None, None).await;
    let version = "2026-07-28";
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": version, "io.modelcontextprotocol/clientCapabilities": {}}}});
    let r = p
        .client
        .post(p.api("/mcp"))
        .bearer_auth(&p.admin_token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", version)
        .header("Mcp-Method", "tools/list")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let tools = v["result"]["tools"].as_array().unwrap_or_else(|| panic!("{v}"));
    let components = &doc["components"]["schemas"];
    for (tool, path) in [
        ("create_proxy", "/api/v1/proxy/targets/"),
        ("create_service", "/api/v1/services/"),
        ("register_external_service", "/api/v1/services/external/"),
    ] {
        let t = tools.iter().find(|t| t["name"] == tool).unwrap_or_else(|| panic!("no tool {tool}"));
        let mut input = t["inputSchema"].clone();
        let body = &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"];
        let name = body.as_str().and_then(|r| r.strip_prefix("#/components/schemas/")).unwrap();
        let o = input.as_object_mut().unwrap();
        o.remove("$schema");
        let defs = o.remove("$defs").unwrap_or(Value::Null);
        refs_to_components(&mut input);
        let mut rest = components[name].clone();
        // MCP wants `"type": "object"` at the root; a flattened struct has none.
        if rest.get("type").is_none() {
            rest["type"] = Value::from("object");
        }
        assert_eq!(input, rest, "{tool} input differs from {name}");
        for (def, schema) in defs.as_object().into_iter().flatten() {
            let mut schema = schema.clone();
            refs_to_components(&mut schema);
            assert_eq!(schema, components[def], "{tool}: definition {def}");
        }
    }
}
