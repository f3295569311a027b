//! What start-up writes, through the same operations as every front end,
//! called by the system caller: the default `localhost` proxy to the
//! control plane, the `auth.{BASE_DOMAIN}` proxy of the authorization
//! server, and the removal of the OAuth routes earlier versions stored.
//! Nothing existing is overwritten: an object the admin changed stays.

use serde_json::json;

use super::{from_json, proxies, routes, Caller, ManageError, ManageResult, Manager, BOOTSTRAP_ADMIN};
use crate::model::{RouteKey, RouteScope, TokenScope};
use crate::secrets::token_hash;

/// The OAuth routes earlier versions stored at start-up (global, priority
/// 95, so they took `/token`, `/register`, `/callback`, ... from every
/// proxy's backend). The OAuth endpoints are built-in routes now
/// (`proxy::builtin`); these records are removed when unchanged.
const LEGACY_OAUTH_ROUTES: [(&str, &str); 10] = [
    ("oauth-authorize", "^/authorize$"),
    ("oauth-token", "^/token$"),
    ("oauth-callback", "^/callback$"),
    ("oauth-verify", "^/verify$"),
    ("oauth-revoke", "^/revoke$"),
    ("oauth-introspect", "^/introspect$"),
    ("oauth-register", "^/register(/[^/]+)?$"),
    ("oauth-jwks", "^/jwks$"),
    (
        "oauth-metadata",
        "^/\\.well-known/(oauth-authorization-server|openid-configuration)(/.*)?$",
    ),
    ("oauth-device", "^/device(/code|/token)?$"),
];

/// The caller start-up acts as: the bootstrap admin when `ADMIN_TOKEN` is
/// set (so the admin owns what start-up made), otherwise `system`; an
/// admin either way.
pub fn system_caller(m: &Manager) -> Caller {
    let (name, hash) = match m.config.admin_token.as_deref() {
        Some(t) => (BOOTSTRAP_ADMIN.to_string(), token_hash(t)),
        None => ("system".to_string(), "system".to_string()),
    };
    Caller {
        name,
        hash,
        scope: TokenScope::Admin,
        email: m.config.admin_email.clone(),
        read_only: false,
    }
}

/// Writes the default state (see the module comment).
pub async fn run(m: &Manager) -> ManageResult<()> {
    let caller = system_caller(m);
    let api = m.config.api_base_url();
    let localhost = json!({
        "hostname": "localhost",
        "target_url": api,
        "enable_http": true,
        "enable_https": false,
        "auth_enabled": false,
        "resource_scopes": ["admin", "user", "mcp"],
    });
    if let Some(p) = proxies::ensure(m, &caller, from_json(localhost)?).await? {
        tracing::info!(target = %p.target_url, "created the default localhost proxy");
    }
    remove_legacy_oauth_routes(m, &caller).await?;
    let auth_host = format!("auth.{}", m.config.base_domain);
    if crate::model::valid_hostname(&auth_host) {
        let spec = from_json(json!({"hostname": auth_host, "target_url": api}))?;
        if let Some(p) = proxies::ensure(m, &caller, spec).await? {
            tracing::info!(hostname = %p.hostname, "created the authorization server proxy");
        }
    }
    Ok(())
}

/// Removes the stored default OAuth routes of earlier versions, when they
/// are exactly as start-up wrote them (an edited one is the admin's route).
async fn remove_legacy_oauth_routes(m: &Manager, caller: &Caller) -> ManageResult<()> {
    let api = m.config.api_base_url();
    for (id, pattern) in LEGACY_OAUTH_ROUTES {
        let key = || RouteKey { route_id: id.to_string() };
        let r = match routes::get(m, caller, key()).await {
            Ok(r) => r,
            Err(ManageError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let untouched = r.is_regex
            && r.path_pattern == pattern
            && r.target_value == api
            && r.priority == 95
            && r.scope == RouteScope::Global
            && r.description == "OAuth endpoint (default route)";
        if untouched {
            match routes::delete(m, caller, key()).await {
                Ok(_) => tracing::info!(route = id, "removed a stored default OAuth route (now built in)"),
                Err(ManageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
