//! Protected resource metadata (RFC 9728) for proxies with resource settings.

use serde_json::{json, Value};

use super::check::RequestInfo;
use crate::model::Proxy;

/// True when the proxy describes a protected resource.
pub fn serves_metadata(p: &Proxy) -> bool {
    p.auth_enabled || p.resource_endpoint.is_some() || p.resource_scopes.is_some()
}

/// True when `path` asks for this proxy's metadata (root or path-suffixed form).
pub fn is_metadata_path(p: &Proxy, path: &str) -> bool {
    let base = "/.well-known/oauth-protected-resource";
    path == base || p.resource_endpoint.as_deref().is_some_and(|ep| path.strip_prefix(base) == Some(ep))
}

/// The metadata document.
pub fn document(p: &Proxy, req: &RequestInfo<'_>, issuer: &str) -> Value {
    let (scheme, host) = super::check::resource_origin(p, req);
    let origin = format!("{scheme}://{host}");
    let auth_server = p.auth_proxy.as_ref().map_or_else(|| issuer.to_string(), |h| format!("https://{h}"));
    let mut doc = json!({
        "resource": format!("{origin}{}", p.resource_endpoint.as_deref().unwrap_or("")),
        "authorization_servers": [auth_server],
        "jwks_uri": format!("{}/jwks", issuer),
        "scopes_supported": p.resource_scopes.clone().unwrap_or_default(),
        "bearer_methods_supported": p.resource_bearer_methods.clone().unwrap_or_else(|| vec!["header".into()]),
    });
    if let Some(s) = &p.resource_documentation_suffix {
        doc["resource_documentation"] = json!(format!("{origin}{s}"));
    }
    if let Some(v) = &p.resource_versions {
        doc["resource_versions"] = json!(v);
    }
    if let Some(i) = &p.resource_server_info {
        doc["resource_server_info"] = i.clone();
    }
    if let Some(Value::Object(extra)) = &p.resource_custom_metadata {
        for (k, v) in extra {
            if k != "resource" && k != "authorization_servers" {
                doc[k] = v.clone();
            }
        }
    }
    doc
}
