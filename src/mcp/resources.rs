//! MCP resources: read-only JSON views of what the caller may see, by URI
//! (`portcullis://proxies/{hostname}`, `portcullis://certificates/{cert_name}`,
//! `portcullis://logs/stats`), each read through the same `manage` operation
//! REST uses, so ownership is the REST API's: another owner's proxy is "not
//! found" here exactly as it is a 404 there. No private key or token value
//! is in any of them (the views REST returns carry none).

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

use super::protocol::{code, RpcError, STATELESS};
use crate::manage::certs::{self, CertKey};
use crate::manage::logs::{self, StatsRequest};
use crate::manage::proxies;
use crate::manage::{Caller, ManageError, ManageResult, Manager};
use crate::model::ProxyKey;

/// The scheme of every resource URI.
const SCHEME: &str = "portcullis://";
/// One proxy, by hostname.
pub const PROXY_PREFIX: &str = "portcullis://proxies/";
/// One certificate, by name.
pub const CERT_PREFIX: &str = "portcullis://certificates/";
/// Request and error counts of the last 24 hours.
pub const LOG_STATS: &str = "portcullis://logs/stats";
/// Every resource is JSON.
const MIME: &str = "application/json";

/// The URI templates, with the argument `completion/complete` fills in.
pub const TEMPLATES: [(&str, &str, &str); 2] = [
    (
        "portcullis://proxies/{hostname}",
        "hostname",
        "A proxy: target, TLS, auth and resource settings.",
    ),
    (
        "portcullis://certificates/{cert_name}",
        "cert_name",
        "A certificate: domains, status, expiry (no private key).",
    ),
];

/// A resource entry as `resources/list` shows it.
fn entry(uri: String, name: &str, description: &str) -> Value {
    json!({"uri": uri, "name": name, "description": description, "mimeType": MIME})
}

/// `resources/list`: the caller's proxies and certificates and the log
/// statistics. One page: the list is as long as the REST lists.
pub async fn list(m: &Manager, caller: &Caller) -> ManageResult<Value> {
    let mut out = Vec::new();
    for p in proxies::list(m, caller).await? {
        let what = format!("Proxy {} -> {}", p.hostname, p.target_url);
        out.push(entry(format!("{PROXY_PREFIX}{}", p.hostname), &p.hostname, &what));
    }
    for c in certs::list(m, caller).await? {
        let what = format!("Certificate {} for {} ({})", c.cert_name, c.domains.join(", "), c.status);
        out.push(entry(format!("{CERT_PREFIX}{}", c.cert_name), &c.cert_name, &what));
    }
    out.push(entry(
        LOG_STATS.to_string(),
        "log-stats",
        "Request and error counts of the last 24 hours, per hour and per host the caller may see.",
    ));
    Ok(json!({ "resources": out }))
}

/// `resources/templates/list`.
pub fn templates() -> Value {
    let list: Vec<Value> = TEMPLATES
        .iter()
        .map(|(t, _, d)| json!({"uriTemplate": t, "name": t.trim_start_matches(SCHEME), "description": d, "mimeType": MIME}))
        .collect();
    json!({ "resourceTemplates": list })
}

/// What a URI names.
enum Target<'u> {
    Proxy(&'u str),
    Cert(&'u str),
    LogStats,
}

/// The target of `uri`: one path segment after a known prefix (no `/`,
/// `?`, `#` or `%`: names are plain, and nothing is decoded into a path).
fn target(uri: &str) -> Option<Target<'_>> {
    let plain = |s: &str| !s.is_empty() && !s.contains(['/', '?', '#', '%']);
    if uri == LOG_STATS {
        Some(Target::LogStats)
    } else if let Some(h) = uri.strip_prefix(PROXY_PREFIX).filter(|s| plain(s)) {
        Some(Target::Proxy(h))
    } else {
        uri.strip_prefix(CERT_PREFIX).filter(|s| plain(s)).map(Target::Cert)
    }
}

/// The "resource not found" error: `-32602` with `data.uri` (SEP-2164) in
/// `2026-07-28`, the dated revisions' `-32002` before it.
fn not_found(uri: &str, version: &str) -> RpcError {
    let code = if version == STATELESS {
        code::INVALID_PARAMS
    } else {
        code::RESOURCE_NOT_FOUND
    };
    RpcError::new(StatusCode::OK, code, format!("resource not found: {uri}")).with_data(json!({ "uri": uri }))
}

/// One JSON content item of `uri`.
fn contents<T: Serialize>(uri: &str, v: &T) -> Value {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    json!({"contents": [{"uri": uri, "mimeType": MIME, "text": text}]})
}

/// `resources/read` for `version`: an unknown URI, or one the caller may
/// not see, is "resource not found"; a store failure is an internal error.
pub async fn read(m: &Manager, caller: &Caller, uri: &str, version: &str) -> Result<Value, RpcError> {
    let outcome = match target(uri) {
        None => return Err(not_found(uri, version)),
        Some(Target::Proxy(h)) => proxies::get(m, caller, ProxyKey { hostname: h.to_string() })
            .await
            .map(|p| contents(uri, &p)),
        Some(Target::Cert(c)) => certs::get(m, caller, CertKey { cert_name: c.to_string() })
            .await
            .map(|c| contents(uri, &c)),
        Some(Target::LogStats) => logs::stats(m, caller, StatsRequest::default()).await.map(|s| contents(uri, &s)),
    };
    outcome.map_err(|e| match e {
        ManageError::NotFound(_) | ManageError::Forbidden(_) | ManageError::Invalid(_) => not_found(uri, version),
        other => internal(&other),
    })
}

/// A failure that is not the client's: logged, and said without detail.
pub fn internal(e: &ManageError) -> RpcError {
    tracing::error!(error = %e, "store failure in /mcp");
    RpcError::new(StatusCode::OK, code::INTERNAL, "the store is unavailable, try again")
}

/// The names a template argument may take for the caller, for completion.
pub async fn names(m: &Manager, caller: &Caller, argument: &str) -> ManageResult<Vec<String>> {
    Ok(match argument {
        "hostname" => proxies::list(m, caller).await?.into_iter().map(|p| p.hostname).collect(),
        "cert_name" => certs::list(m, caller).await?.into_iter().map(|c| c.cert_name).collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_one_plain_segment() {
        assert!(matches!(target("portcullis://proxies/a.example"), Some(Target::Proxy("a.example"))));
        assert!(matches!(target("portcullis://certificates/c1"), Some(Target::Cert("c1"))));
        assert!(matches!(target(LOG_STATS), Some(Target::LogStats)));
        for bad in [
            "portcullis://proxies/",
            "portcullis://proxies/a/../b",
            "portcullis://proxies/%2e%2e",
            "portcullis://proxies/a?x=1",
            "portcullis://logs/stats/x",
            "test://static-text",
            "file:///etc/passwd",
        ] {
            assert!(target(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn not_found_follows_the_revision() {
        let e = not_found("x://y", STATELESS);
        assert_eq!(
            (e.code, e.body()["error"]["data"]["uri"].as_str()),
            (code::INVALID_PARAMS, Some("x://y"))
        );
        assert_eq!(not_found("x://y", "2025-06-18").code, code::RESOURCE_NOT_FOUND);
    }
}
