//! Protected resources: per-proxy auth and resource settings (the `/auth`
//! and `/mcp` sub-resources of a proxy) and the resource registry
//! (`resource:{uri}`) the authorization server checks `resource` against.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{from_json, Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, Proxy, ValidationError};

/// Proxy fields the `/auth` sub-resource manages.
const AUTH_FIELDS: [&str; 14] = [
    "auth_enabled",
    "auth_proxy",
    "auth_mode",
    "auth_required_users",
    "auth_required_emails",
    "auth_required_groups",
    "auth_allowed_scopes",
    "auth_allowed_audiences",
    "auth_pass_headers",
    "auth_pass_token",
    "auth_cookie_name",
    "auth_header_prefix",
    "auth_excluded_paths",
    "hostname",
];

/// `/mcp` body names (reference 000) and the proxy fields they set.
const MCP_FIELDS: [(&str, &str); 9] = [
    ("endpoint", "resource_endpoint"),
    ("scopes", "resource_scopes"),
    ("stateful", "resource_stateful"),
    ("versions", "resource_versions"),
    ("server_info", "resource_server_info"),
    ("override_backend", "resource_override_backend"),
    ("bearer_methods", "resource_bearer_methods"),
    ("documentation_suffix", "resource_documentation_suffix"),
    ("custom_metadata", "resource_custom_metadata"),
];

/// A registered protected resource.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The resource URI (canonical, no trailing slash).
    pub uri: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Proxy hostname serving it.
    #[serde(default)]
    pub proxy_target: Option<String>,
    /// Scopes it understands.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where its metadata lives.
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// Owner token hash.
    #[serde(default)]
    pub owner_token_hash: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
}

fn project(p: &Proxy, fields: &[&str]) -> Value {
    let full = serde_json::to_value(p).unwrap_or_default();
    let mut out = Map::new();
    for f in fields {
        out.insert((*f).to_string(), full.get(*f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

fn resource_key(uri: &str) -> String {
    format!("resource:{uri}")
}

impl Manager {
    /// Sets a proxy's auth configuration (`auth_enabled` defaults to true).
    pub async fn set_proxy_auth(&self, caller: &Caller, host: &str, body: Value) -> ManageResult<Value> {
        let Value::Object(mut b) = body else {
            return Err(ValidationError::new("body", "expected a JSON object").into());
        };
        if let Some(bad) = b.keys().find(|k| !AUTH_FIELDS.contains(&k.as_str()) || *k == "hostname") {
            return Err(ValidationError::new(bad.clone(), "not an auth setting").into());
        }
        b.entry("auth_enabled").or_insert(json!(true));
        let p = super::proxies::update_json(self, caller, host, Value::Object(b)).await?;
        Ok(project(&p, &AUTH_FIELDS))
    }

    /// A proxy's auth configuration.
    pub async fn get_proxy_auth(&self, caller: &Caller, host: &str) -> ManageResult<Value> {
        Ok(project(&self.stored_proxy(caller, host).await?.public(), &AUTH_FIELDS))
    }

    /// Turns a proxy's auth off and resets its auth settings.
    pub async fn clear_proxy_auth(&self, caller: &Caller, host: &str) -> ManageResult<Value> {
        let defaults = json!({
            "auth_enabled": false, "auth_proxy": null, "auth_mode": "forward", "auth_required_users": null, "auth_required_emails": null,
            "auth_required_groups": null, "auth_allowed_scopes": null, "auth_allowed_audiences": null, "auth_pass_headers": true,
            "auth_pass_token": false, "auth_cookie_name": "unified_auth_token", "auth_header_prefix": "X-Auth-", "auth_excluded_paths": null,
        });
        let p = super::proxies::update_json(self, caller, host, defaults).await?;
        Ok(project(&p, &AUTH_FIELDS))
    }

    /// Sets a proxy's protected resource metadata (reference `/mcp` names or `resource_*`).
    pub async fn set_proxy_resource(&self, caller: &Caller, host: &str, body: Value) -> ManageResult<Value> {
        let Value::Object(b) = body else {
            return Err(ValidationError::new("body", "expected a JSON object").into());
        };
        let mut patch = Map::new();
        for (k, v) in b {
            let field = MCP_FIELDS
                .iter()
                .find(|(short, long)| *short == k || *long == k)
                .map(|(_, long)| *long);
            match field {
                Some(f) => patch.insert(f.to_string(), v),
                None => return Err(ValidationError::new(k, "not a resource setting").into()),
            };
        }
        if !patch.contains_key("resource_endpoint") {
            patch.insert("resource_endpoint".into(), json!("/mcp"));
        }
        let p = super::proxies::update_json(self, caller, host, Value::Object(patch)).await?;
        Ok(project(&p, &MCP_FIELDS.map(|(_, l)| l)))
    }

    /// A proxy's resource settings.
    pub async fn get_proxy_resource(&self, caller: &Caller, host: &str) -> ManageResult<Value> {
        Ok(project(
            &self.stored_proxy(caller, host).await?.public(),
            &MCP_FIELDS.map(|(_, l)| l),
        ))
    }

    /// Clears a proxy's resource settings.
    pub async fn clear_proxy_resource(&self, caller: &Caller, host: &str) -> ManageResult<Value> {
        let patch = json!({
            "resource_endpoint": null, "resource_scopes": null, "resource_stateful": false, "resource_versions": null,
            "resource_server_info": null, "resource_override_backend": false, "resource_bearer_methods": null,
            "resource_documentation_suffix": null, "resource_custom_metadata": null,
        });
        let p = super::proxies::update_json(self, caller, host, patch).await?;
        Ok(project(&p, &MCP_FIELDS.map(|(_, l)| l)))
    }

    fn canonical_uri(uri: &str) -> ManageResult<String> {
        crate::oauth::canonical_resource(uri)
            .ok_or_else(|| ValidationError::new("uri", "must be an absolute https URI (http only for loopback) without fragment").into())
    }

    /// Registers a protected resource.
    pub async fn create_resource(&self, caller: &Caller, body: Value) -> ManageResult<Resource> {
        let mut r: Resource = from_json(body)?;
        r.uri = Self::canonical_uri(&r.uri)?;
        self.authorize_resource(caller, &r).await?;
        if self.store.kv_get(&resource_key(&r.uri)).await?.is_some() {
            return Err(ManageError::Conflict(format!("resource {} already exists", r.uri)));
        }
        r.owner_token_hash = caller.hash.clone();
        r.created_at = now_rfc3339();
        if r.metadata_url.is_none() {
            let u = url::Url::parse(&r.uri).map_err(|e| ManageError::Invalid(ValidationError::new("uri", e.to_string())))?;
            r.metadata_url = Some(format!(
                "{}://{}/.well-known/oauth-protected-resource{}",
                u.scheme(),
                u.authority(),
                u.path().trim_end_matches('/')
            ));
        }
        self.save_resource(&r).await?;
        Ok(r)
    }

    /// A resource names hostnames (its URI's, `proxy_target`): a user's only its own.
    async fn authorize_resource(&self, caller: &Caller, r: &Resource) -> ManageResult<()> {
        let host = url::Url::parse(&r.uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        self.require_host(caller, &host, "uri").await?;
        if let Some(t) = &r.proxy_target {
            self.require_host(caller, t, "proxy_target").await?;
        }
        Ok(())
    }

    async fn save_resource(&self, r: &Resource) -> ManageResult<()> {
        let json = serde_json::to_string(r).map_err(|e| ManageError::Store(e.to_string()))?;
        Ok(self.store.kv_set(&resource_key(&r.uri), &json, None).await?)
    }

    /// Every registered resource the caller may see.
    pub async fn list_resources(&self, caller: &Caller) -> ManageResult<Vec<Resource>> {
        let mut v: Vec<Resource> = self
            .store
            .kv_scan("resource:")
            .await?
            .into_iter()
            .filter_map(|(_, raw)| serde_json::from_str::<Resource>(&raw).ok())
            .filter(|r| caller.may_read(&r.owner_token_hash))
            .collect();
        v.sort_by(|a, b| a.uri.cmp(&b.uri));
        Ok(v)
    }

    /// One resource.
    pub async fn get_resource(&self, caller: &Caller, uri: &str) -> ManageResult<Resource> {
        let uri = Self::canonical_uri(uri)?;
        match self
            .store
            .kv_get(&resource_key(&uri))
            .await?
            .and_then(|raw| serde_json::from_str::<Resource>(&raw).ok())
        {
            Some(r) if caller.may_read(&r.owner_token_hash) => Ok(r),
            _ => Err(ManageError::NotFound(format!("resource {uri}"))),
        }
    }

    /// Updates a resource's fields.
    pub async fn update_resource(&self, caller: &Caller, uri: &str, patch: Value) -> ManageResult<Resource> {
        let cur = self.get_resource(caller, uri).await?;
        let mut v = serde_json::to_value(&cur).map_err(|e| ManageError::Store(e.to_string()))?;
        super::merge(&mut v, patch, &["uri", "owner_token_hash", "created_at"])?;
        let r: Resource = from_json(v)?;
        self.authorize_resource(caller, &r).await?;
        self.save_resource(&r).await?;
        Ok(r)
    }

    /// Removes a resource.
    pub async fn delete_resource(&self, caller: &Caller, uri: &str) -> ManageResult<()> {
        let r = self.get_resource(caller, uri).await?;
        self.store.kv_del(&resource_key(&r.uri)).await?;
        Ok(())
    }

    /// Checks a token against a resource: signature, expiry, revocation, audience.
    pub async fn validate_resource_token(&self, caller: &Caller, uri: &str, body: Value) -> ManageResult<Value> {
        let r = self.get_resource(caller, uri).await?;
        let token = body
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| ValidationError::new("token", "required"))?;
        Ok(match self.oauth.verify_access(token).await {
            Err(e) => json!({"valid": false, "resource": r.uri, "reason": e.description}),
            Ok(c) if !c.aud.iter().any(|a| a.trim_end_matches('/') == r.uri) => {
                json!({"valid": false, "resource": r.uri, "reason": "the token's audience does not include this resource", "aud": c.aud})
            }
            Ok(c) => {
                json!({"valid": true, "resource": r.uri, "sub": c.sub, "username": c.preferred_username, "scope": c.scope, "exp": c.exp, "aud": c.aud})
            }
        })
    }

    /// Registers a resource for every proxy with resource settings that lacks one.
    pub async fn auto_register_resources(&self, caller: &Caller) -> ManageResult<Vec<Resource>> {
        let mut made = Vec::new();
        for p in super::proxies::list(self, caller).await? {
            // Only proxies that describe a resource: `auth_enabled` alone
            // protects a site, it does not make it an OAuth resource.
            if p.resource_endpoint.is_none() && p.resource_scopes.is_none() {
                continue;
            }
            let uri = format!("https://{}{}", p.hostname, p.resource_endpoint.as_deref().unwrap_or(""));
            let uri = uri.trim_end_matches('/').to_string();
            if self.store.kv_get(&resource_key(&uri)).await?.is_some() {
                continue;
            }
            let body = json!({"uri": uri, "name": p.hostname, "proxy_target": p.hostname, "scopes": p.resource_scopes.clone().unwrap_or_default()});
            made.push(self.create_resource(caller, body).await?);
        }
        Ok(made)
    }
}
