//! Per-method and per-tool counts and latencies of the MCP traffic a
//! protected MCP backend receives through the data plane (POSTs to a
//! proxy's resource endpoint), from the `Mcp-Method` / `Mcp-Name` headers.
//!
//! Label sets are bounded whatever clients send: methods come from a fixed
//! list (anything else is `other`, no header `unknown`), and a tool is
//! labelled only by a name the proxy's MCP policy spells out (an exact
//! name, or a rule's `prefix*` pattern itself); every other tool is
//! `other`. An attacker inventing tool names adds no series.

use std::time::Instant;

use http::HeaderMap;
use once_cell::sync::Lazy;
use prometheus::{register_histogram_vec, register_int_counter_vec, HistogramVec, IntCounterVec};

use crate::model::Proxy;

/// MCP requests through the data plane.
static REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_mcp_requests_total",
        "MCP requests to protected MCP backends, by method and tool",
        &["host", "method", "tool", "status_class"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Their duration, from the decision to the end of the response (a
/// streamed response counts until its last event).
static SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "portcullis_mcp_request_duration_seconds",
        "MCP request duration through the data plane, to the end of the response",
        &["host", "method", "tool"],
        vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// The method labels: the MCP methods of the supported revisions.
const METHODS: [&str; 22] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// One MCP request being served: its labels and when it was decided.
pub struct McpCall {
    host: String,
    method: &'static str,
    tool: String,
    started: Instant,
}

impl McpCall {
    /// The labels of a request to `p` when it is an MCP request (a POST to
    /// the proxy's resource endpoint); `None` otherwise, at the cost of two
    /// comparisons for every other request.
    pub fn of(p: &Proxy, method: &str, path: &str, headers: &HeaderMap) -> Option<Self> {
        if method != "POST" || p.resource_endpoint.as_deref() != Some(path) {
            return None;
        }
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
        let rpc = match header("mcp-method") {
            None => "unknown",
            Some(m) => METHODS.iter().find(|k| **k == m).copied().unwrap_or("other"),
        };
        let tool = match (rpc, header("mcp-name")) {
            ("tools/call", Some(name)) => tool_label(p, name),
            _ => String::new(),
        };
        Some(Self {
            host: p.hostname.clone(),
            method: rpc,
            tool,
            started: Instant::now(),
        })
    }

    /// Counts the request with its final `status` and records its duration.
    pub fn finish(self, status_class: &str) {
        let tool = self.tool.as_str();
        REQUESTS
            .with_label_values(&[self.host.as_str(), self.method, tool, status_class])
            .inc();
        SECONDS
            .with_label_values(&[self.host.as_str(), self.method, tool])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// The label of tool `name` on `p`: the first `tools/call` (or `*`) rule of
/// its policy that names it, as the rule spells it; else `other`.
fn tool_label(p: &Proxy, name: &str) -> String {
    let rules = p.mcp_policy.as_deref().unwrap_or_default();
    rules
        .iter()
        .filter(|r| r.method == "tools/call" || r.method == "*" || r.method == "tools/*")
        .filter_map(|r| r.name.as_deref())
        .find(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => *pattern == name,
        })
        .unwrap_or("other")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::McpRule;

    fn proxy() -> Proxy {
        let mut p: Proxy = serde_json::from_value(serde_json::json!({"hostname": "m.test", "target_url": "http://127.0.0.1:1"})).unwrap();
        p.resource_endpoint = Some("/mcp".into());
        let rule = |name: &str| McpRule {
            method: "tools/call".into(),
            name: Some(name.into()),
            allow_scopes: vec![],
        };
        p.mcp_policy = Some(vec![rule("delete_*"), rule("echo")]);
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
    fn labels_are_bounded_by_the_method_list_and_the_policy() {
        let p = proxy();
        let call = |m: &str, n: &str| McpCall::of(&p, "POST", "/mcp", &headers(&[("mcp-method", m), ("mcp-name", n)])).unwrap();
        let c = call("tools/call", "delete_proxy");
        assert_eq!((c.method, c.tool.as_str()), ("tools/call", "delete_*"));
        assert_eq!(call("tools/call", "echo").tool, "echo");
        assert_eq!(call("tools/call", "made-up-1234").tool, "other");
        assert_eq!(call("tools/call", "echo2").tool, "other");
        let c = call("x/anything", "y");
        assert_eq!((c.method, c.tool.as_str()), ("other", ""));
        assert_eq!(McpCall::of(&p, "POST", "/mcp", &HeaderMap::new()).unwrap().method, "unknown");
        assert!(McpCall::of(&p, "GET", "/mcp", &HeaderMap::new()).is_none());
        assert!(McpCall::of(&p, "POST", "/other", &HeaderMap::new()).is_none());
    }
}
