//! MCP-aware policy at the edge: a proxy's MCP policy (`model::McpRule`)
//! applied to POSTs to its resource endpoint from the `Mcp-Method` and
//! `Mcp-Name` headers alone, so the hot path parses no body. A pure
//! decision over plain inputs.
//!
//! The headers are what MCP `2026-07-28` clients send, and a backend of
//! that revision refuses a request whose headers disagree with its body, so
//! a client cannot lie its way past the policy there. Without the headers
//! the request cannot be judged and is refused while a policy is set.

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

/// The refusal of a request by `p`'s MCP policy, if any: only POSTs to the
/// proxy's resource endpoint are judged. `scopes` are the verified caller's
/// (empty without a token).
pub fn refusal(p: &Proxy, method: &str, path: &str, headers: &HeaderMap, scopes: &str) -> Option<String> {
    let rules = p.mcp_policy.as_deref().filter(|r| !r.is_empty())?;
    if method != "POST" || p.resource_endpoint.as_deref() != Some(path) {
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
