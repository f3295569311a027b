//! MCP-aware policy at the edge: a proxy's MCP policy (`model::McpRule`)
//! applied to POSTs to its resource endpoint from the `Mcp-Method` and
//! `Mcp-Name` headers alone, so the hot path parses no body. A pure
//! decision over plain inputs.
//!
//! The headers are what MCP `2026-07-28` clients send, and a backend of
//! that revision refuses a request whose headers disagree with its body, so
//! a client cannot lie its way past the policy there. Without the headers
//! the request cannot be judged and is refused while a policy is set,
//! unless the proxy has `mcp_inspect_body` on: then its JSON-RPC body (up
//! to [`MAX_INSPECTED_BODY`]) is read before the upstream is chosen, judged
//! by [`judge_body`], and forwarded intact when allowed.

use http::HeaderMap;

use crate::model::{McpRule, Proxy};

/// Methods whose request names a tool, prompt or resource (`Mcp-Name`).
const NAMED: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];

/// `pattern` (exact, or a prefix ending in `*`) matches `value`.
fn matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// The verdict of `rules` on a request for `method` naming `name`, by a
/// caller holding `scopes` (space-separated): `None` allows, `Some(why)`
/// refuses. The first rule matching method and name decides; none: allowed.
pub fn decide(rules: &[McpRule], method: &str, name: Option<&str>, scopes: &str) -> Option<String> {
    let rule = rules.iter().find(|r| {
        matches(&r.method, method)
            && match (&r.name, name) {
                (None, _) => true,
                (Some(p), Some(n)) => matches(p, n),
                (Some(_), None) => false,
            }
    })?;
    if scopes.split_whitespace().any(|s| rule.allow_scopes.iter().any(|a| a == s)) {
        return None;
    }
    let what = name.map_or_else(|| method.to_string(), |n| format!("{method} {n}"));
    Some(if rule.allow_scopes.is_empty() {
        format!("{what} is not allowed through this proxy")
    } else {
        format!("{what} needs the scope {}", rule.allow_scopes.join(" or "))
    })
}

/// Largest body judged by [`judge_body`]: pingora replays at most 64 KiB of
/// a body read before the upstream is chosen; a larger one is refused.
pub const MAX_INSPECTED_BODY: usize = 64 * 1024;

/// True when `p`'s policy must judge this request by its body: a POST to
/// the resource endpoint without `Mcp-Method`, on a proxy with a policy and
/// `mcp_inspect_body` on. [`refusal`] leaves such a request to [`judge_body`].
pub fn needs_body(p: &Proxy, method: &str, path: &str, headers: &HeaderMap) -> bool {
    p.mcp_inspect_body
        && p.mcp_policy.as_deref().is_some_and(|r| !r.is_empty())
        && method == "POST"
        && p.resource_endpoint.as_deref() == Some(path)
        && !headers.contains_key("mcp-method")
}

/// The verdict of `rules` on a JSON-RPC body (one message or a batch; any
/// element refused refuses the whole): `None` allows. A body that is not
/// JSON-RPC, or names no tool where the method needs one, is refused: it
/// cannot be judged. Responses (no `method`) pass.
pub fn judge_body(rules: &[McpRule], body: &[u8], scopes: &str) -> Option<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Some("this MCP endpoint's policy could not read the body as JSON-RPC".into());
    };
    let messages = match &v {
        serde_json::Value::Array(a) if !a.is_empty() => a.iter().collect::<Vec<_>>(),
        serde_json::Value::Object(_) => vec![&v],
        _ => return Some("this MCP endpoint's policy needs a JSON-RPC message or batch".into()),
    };
    messages.into_iter().find_map(|m| {
        let method = m.get("method")?.as_str();
        let Some(method) = method else {
            return Some("a JSON-RPC method must be a string".into());
        };
        let key = if method == "resources/read" { "uri" } else { "name" };
        let name = m.get("params").and_then(|p| p.get(key)).and_then(serde_json::Value::as_str);
        if name.is_none() && NAMED.contains(&method) {
            return Some(format!("{method} names nothing in params.{key}"));
        }
        decide(rules, method, name, scopes)
    })
}

/// The refusal of a request by `p`'s MCP policy, if any: only POSTs to the
/// proxy's resource endpoint are judged. `scopes` are the verified caller's
/// (empty without a token).
pub fn refusal(p: &Proxy, method: &str, path: &str, headers: &HeaderMap, scopes: &str) -> Option<String> {
    let rules = p.mcp_policy.as_deref().filter(|r| !r.is_empty())?;
    if method != "POST" || p.resource_endpoint.as_deref() != Some(path) || needs_body(p, method, path, headers) {
        return None;
    }
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    let Some(rpc_method) = header("mcp-method") else {
        return Some("this MCP endpoint's policy needs the Mcp-Method header (MCP 2026-07-28)".into());
    };
    let name = header("mcp-name");
    if name.is_none() && NAMED.contains(&rpc_method) {
        return Some(format!("this MCP endpoint's policy needs the Mcp-Name header for {rpc_method}"));
    }
    decide(rules, rpc_method, name, scopes)
}

/// The answer to a refused request: 403 with a JSON-RPC error (the request
/// id is unknown without reading the body).
pub fn error_body(why: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32003, "message": why}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<McpRule> {
        let r = |method: &str, name: Option<&str>, allow: &[&str]| McpRule {
            method: method.into(),
            name: name.map(String::from),
            allow_scopes: allow.iter().map(|s| s.to_string()).collect(),
        };
        vec![
            r("tools/call", Some("delete_*"), &["mcp:admin"]),
            r("tools/call", Some("run_command"), &[]),
            r("resources/*", None, &["mcp:read", "mcp:admin"]),
        ]
    }

    #[test]
    fn the_first_matching_rule_decides_by_scope() {
        let rs = rules();
        assert!(decide(&rs, "tools/call", Some("delete_proxy"), "mcp mcp:admin").is_none());
        let why = decide(&rs, "tools/call", Some("delete_proxy"), "mcp mcp:read").unwrap();
        assert!(why.contains("needs the scope mcp:admin"), "{why}");
        assert!(decide(&rs, "tools/call", Some("run_command"), "mcp:admin")
            .unwrap()
            .contains("not allowed"));
        assert!(decide(&rs, "tools/call", Some("list_proxies"), "").is_none(), "no rule: allowed");
        assert!(decide(&rs, "tools/list", None, "").is_none());
        assert!(decide(&rs, "resources/read", Some("file:///x"), "mcp:read").is_none());
        assert!(decide(&rs, "resources/list", None, "").is_some());
        // a scope is a whole word, not a prefix
        assert!(decide(&rs, "tools/call", Some("delete_x"), "mcp:admins").is_some());
    }

    #[test]
    fn bodies_are_judged_message_by_message_and_a_batch_as_a_whole() {
        let rs = rules();
        let call = |name: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#);
        assert!(judge_body(&rs, call("list_x").as_bytes(), "").is_none());
        assert!(judge_body(&rs, call("delete_x").as_bytes(), "mcp").is_some());
        assert!(judge_body(&rs, call("delete_x").as_bytes(), "mcp:admin").is_none());
        let batch = format!("[{},{}]", call("list_x"), call("run_command"));
        assert!(
            judge_body(&rs, batch.as_bytes(), "mcp:admin").is_some(),
            "one refused element refuses the batch"
        );
        assert!(
            judge_body(&rs, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, "").is_none(),
            "a response"
        );
        for bad in [
            &b"not json"[..],
            b"[]",
            b"42",
            br#"{"method":7}"#,
            br#"{"method":"tools/call","params":{}}"#,
        ] {
            assert!(judge_body(&rs, bad, "mcp:admin").is_some(), "{}", String::from_utf8_lossy(bad));
        }
    }

    fn proxy(rules: Vec<McpRule>) -> Proxy {
        let mut p: Proxy = serde_json::from_value(serde_json::json!({"hostname": "m.test", "target_url": "http://127.0.0.1:1"})).unwrap();
        p.resource_endpoint = Some("/mcp".into());
        p.mcp_policy = Some(rules);
        p
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_posts_to_the_resource_endpoint_are_judged_and_need_the_headers() {
        let p = proxy(rules());
        let del = headers(&[("mcp-method", "tools/call"), ("mcp-name", " delete_proxy ")]);
        assert!(refusal(&p, "POST", "/mcp", &del, "mcp").is_some());
        assert!(refusal(&p, "POST", "/mcp", &del, "mcp:admin").is_none());
        assert!(refusal(&p, "GET", "/mcp", &HeaderMap::new(), "").is_none(), "the SSE stream");
        assert!(refusal(&p, "POST", "/other", &del, "").is_none());
        assert!(refusal(&p, "POST", "/mcp", &HeaderMap::new(), "mcp:admin")
            .unwrap()
            .contains("Mcp-Method"));
        let unnamed = headers(&[("mcp-method", "tools/call")]);
        assert!(refusal(&p, "POST", "/mcp", &unnamed, "mcp:admin").unwrap().contains("Mcp-Name"));
        let mut open = proxy(vec![]);
        assert!(refusal(&open, "POST", "/mcp", &HeaderMap::new(), "").is_none(), "an empty policy");
        open.mcp_policy = None;
        assert!(refusal(&open, "POST", "/mcp", &HeaderMap::new(), "").is_none());
    }
}
