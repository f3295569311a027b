//! Protected resources: per-proxy auth and resource settings (the `/auth`
//! and `/mcp` sub-resources of a proxy) and the resource registry
//! (`resource:{uri}`) the authorization server checks `resource` against.
//!
//! Typed requests (`model::ResourceSpec`, `ProxyAuthSettings`, ...) in,
//! typed results out; who may name which hostname is checked here.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::proxies;
use super::{Caller, ManageError, ManageResult, Manager};
use crate::model::{
    now_rfc3339, AuthMode, Proxy, ProxyAuthSettings, ProxyAuthUpdate, ProxyKey, ProxyPatch, ProxyResourceSettings, ProxyResourceUpdate,
    ProxyUpdate, Resource, ResourceKey, ResourceSpec, ResourceTokenCheck, ResourceUpdate, ValidationError,
};

/// A proxy's auth settings: what its `/auth` sub-resource shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyAuth {
    /// Auth enforced by the data plane.
    pub auth_enabled: bool,
    /// Authorization server host.
    pub auth_proxy: Option<String>,
    /// Auth mode.
    pub auth_mode: AuthMode,
    /// GitHub users allowed (null = global default, ["*"] = anyone).
    pub auth_required_users: Option<Vec<String>>,
    /// E-mails allowed.
    pub auth_required_emails: Option<Vec<String>>,
    /// Groups allowed.
    pub auth_required_groups: Option<Vec<String>>,
    /// Scopes a token must carry one of.
    pub auth_allowed_scopes: Option<Vec<String>>,
    /// Audiences accepted besides this proxy's resource URI.
    pub auth_allowed_audiences: Option<Vec<String>>,
    /// Send identity headers upstream.
    pub auth_pass_headers: bool,
    /// Pass the client's bearer token upstream.
    pub auth_pass_token: bool,
    /// Session cookie name.
    pub auth_cookie_name: String,
    /// Prefix of identity headers.
    pub auth_header_prefix: String,
    /// Paths that skip auth.
    pub auth_excluded_paths: Option<Vec<String>>,
    /// The proxy's hostname.
    pub hostname: String,
}

impl From<Proxy> for ProxyAuth {
    fn from(p: Proxy) -> Self {
        Self {
            auth_enabled: p.auth_enabled,
            auth_proxy: p.auth_proxy,
            auth_mode: p.auth_mode,
            auth_required_users: p.auth_required_users,
            auth_required_emails: p.auth_required_emails,
            auth_required_groups: p.auth_required_groups,
            auth_allowed_scopes: p.auth_allowed_scopes,
            auth_allowed_audiences: p.auth_allowed_audiences,
            auth_pass_headers: p.auth_pass_headers,
            auth_pass_token: p.auth_pass_token,
            auth_cookie_name: p.auth_cookie_name,
            auth_header_prefix: p.auth_header_prefix,
            auth_excluded_paths: p.auth_excluded_paths,
            hostname: p.hostname,
        }
    }
}

/// A proxy's protected resource settings: what its `/mcp` sub-resource shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyResource {
    /// Protected resource path (e.g. `/mcp`).
    pub resource_endpoint: Option<String>,
    /// Scopes of the protected resource.
    pub resource_scopes: Option<Vec<String>>,
    /// Whether the resource keeps session state.
    pub resource_stateful: bool,
    /// Protocol versions of the resource.
    pub resource_versions: Option<Vec<String>>,
    /// Free-form server info.
    pub resource_server_info: Option<Value>,
    /// Serve our metadata even when the backend has its own.
    pub resource_override_backend: bool,
    /// Bearer methods advertised.
    pub resource_bearer_methods: Option<Vec<String>>,
    /// Suffix for the documentation URL.
    pub resource_documentation_suffix: Option<String>,
    /// Extra metadata fields.
    pub resource_custom_metadata: Option<Value>,
}

impl From<Proxy> for ProxyResource {
    fn from(p: Proxy) -> Self {
        Self {
            resource_endpoint: p.resource_endpoint,
            resource_scopes: p.resource_scopes,
            resource_stateful: p.resource_stateful,
            resource_versions: p.resource_versions,
            resource_server_info: p.resource_server_info,
            resource_override_backend: p.resource_override_backend,
            resource_bearer_methods: p.resource_bearer_methods,
            resource_documentation_suffix: p.resource_documentation_suffix,
            resource_custom_metadata: p.resource_custom_metadata,
        }
    }
}

/// The answer to a resource delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceDeleted {
    /// Always `deleted`.
    pub status: &'static str,
    /// The URI as the caller named it.
    pub uri: String,
}

/// The verdict on a token checked against a resource: `reason` when not
/// valid; the token's subject, user, scope and expiry when valid.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct TokenValidation {
    /// The token is good for this resource.
    pub valid: bool,
    /// The resource URI.
    pub resource: String,
    /// Why it is not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The token's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The token's user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The token's scopes, space separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The token's expiry (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// The token's audiences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
}

fn resource_key(uri: &str) -> String {
    format!("resource:{uri}")
}

/// Applies `patch` to the caller's proxy `hostname` through the proxy update.
async fn patch_proxy(m: &Manager, caller: &Caller, hostname: String, patch: ProxyPatch) -> ManageResult<Proxy> {
    proxies::update(m, caller, ProxyUpdate { hostname, patch }).await
}

/// Sets a proxy's auth configuration (`auth_enabled` defaults to true).
pub async fn set_proxy_auth(m: &Manager, caller: &Caller, req: ProxyAuthUpdate) -> ManageResult<ProxyAuth> {
    Ok(patch_proxy(m, caller, req.hostname, req.settings.into_patch()).await?.into())
}

/// A proxy's auth configuration.
pub async fn get_proxy_auth(m: &Manager, caller: &Caller, key: ProxyKey) -> ManageResult<ProxyAuth> {
    Ok(proxies::get(m, caller, key).await?.into())
}

/// Turns a proxy's auth off and resets its auth settings.
pub async fn clear_proxy_auth(m: &Manager, caller: &Caller, key: ProxyKey) -> ManageResult<ProxyAuth> {
    Ok(patch_proxy(m, caller, key.hostname, ProxyAuthSettings::cleared()).await?.into())
}

/// Sets a proxy's protected resource metadata (`endpoint` defaults to `/mcp`).
pub async fn set_proxy_resource(m: &Manager, caller: &Caller, req: ProxyResourceUpdate) -> ManageResult<ProxyResource> {
    Ok(patch_proxy(m, caller, req.hostname, req.settings.into_patch()).await?.into())
}

/// A proxy's resource settings.
pub async fn get_proxy_resource(m: &Manager, caller: &Caller, key: ProxyKey) -> ManageResult<ProxyResource> {
    Ok(proxies::get(m, caller, key).await?.into())
}

/// Clears a proxy's resource settings.
pub async fn clear_proxy_resource(m: &Manager, caller: &Caller, key: ProxyKey) -> ManageResult<ProxyResource> {
    Ok(patch_proxy(m, caller, key.hostname, ProxyResourceSettings::cleared()).await?.into())
}

fn canonical_uri(uri: &str) -> ManageResult<String> {
    crate::oauth::canonical_resource(uri)
        .ok_or_else(|| ValidationError::new("uri", "must be an absolute https URI (http only for loopback) without fragment").into())
}

/// Registers a protected resource owned by the caller.
pub async fn create(m: &Manager, caller: &Caller, spec: ResourceSpec) -> ManageResult<Resource> {
    let uri = canonical_uri(&spec.uri)?;
    let mut r = Resource {
        uri,
        name: spec.name,
        proxy_target: spec.proxy_target,
        scopes: spec.scopes,
        metadata_url: spec.metadata_url,
        owner_token_hash: caller.hash.clone(),
        created_at: now_rfc3339(),
    };
    authorize(m, caller, &r).await?;
    if m.store.kv_get(&resource_key(&r.uri)).await?.is_some() {
        return Err(ManageError::Conflict(format!("resource {} already exists", r.uri)));
    }
    if r.metadata_url.is_none() {
        let u = url::Url::parse(&r.uri).map_err(|e| ManageError::Invalid(ValidationError::new("uri", e.to_string())))?;
        r.metadata_url = Some(format!(
            "{}://{}/.well-known/oauth-protected-resource{}",
            u.scheme(),
            u.authority(),
            u.path().trim_end_matches('/')
        ));
    }
    save(m, &r).await?;
    Ok(r)
}

/// A resource names hostnames (its URI's, `proxy_target`): a user's only its own.
async fn authorize(m: &Manager, caller: &Caller, r: &Resource) -> ManageResult<()> {
    let host = url::Url::parse(&r.uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    m.require_host(caller, &host, "uri").await?;
    if let Some(t) = &r.proxy_target {
        m.require_host(caller, t, "proxy_target").await?;
    }
    Ok(())
}

async fn save(m: &Manager, r: &Resource) -> ManageResult<()> {
    let json = serde_json::to_string(r).map_err(|e| ManageError::Store(e.to_string()))?;
    Ok(m.store.kv_set(&resource_key(&r.uri), &json, None).await?)
}

/// Every registered resource the caller may see.
pub async fn list(m: &Manager, caller: &Caller) -> ManageResult<Vec<Resource>> {
    let mut v: Vec<Resource> = m
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

/// One resource; 404 when missing or not the caller's.
pub async fn get(m: &Manager, caller: &Caller, key: ResourceKey) -> ManageResult<Resource> {
    let uri = canonical_uri(&key.uri)?;
    match m
        .store
        .kv_get(&resource_key(&uri))
        .await?
        .and_then(|raw| serde_json::from_str::<Resource>(&raw).ok())
    {
        Some(r) if caller.may_read(&r.owner_token_hash) => Ok(r),
        _ => Err(ManageError::NotFound(format!("resource {uri}"))),
    }
}

/// Changes the fields a patch names.
pub async fn update(m: &Manager, caller: &Caller, req: ResourceUpdate) -> ManageResult<Resource> {
    let mut r = get(m, caller, ResourceKey { uri: req.uri }).await?;
    req.patch.apply(&mut r);
    authorize(m, caller, &r).await?;
    save(m, &r).await?;
    Ok(r)
}

/// Removes a resource.
pub async fn delete(m: &Manager, caller: &Caller, key: ResourceKey) -> ManageResult<ResourceDeleted> {
    let r = get(m, caller, key.clone()).await?;
    m.store.kv_del(&resource_key(&r.uri)).await?;
    Ok(ResourceDeleted {
        status: "deleted",
        uri: key.uri,
    })
}

/// Checks a token against a resource: signature, expiry, revocation, audience.
pub async fn validate_token(m: &Manager, caller: &Caller, req: ResourceTokenCheck) -> ManageResult<TokenValidation> {
    let r = get(m, caller, ResourceKey { uri: req.uri }).await?;
    let resource = r.uri;
    Ok(match m.oauth.verify_access(&req.check.token).await {
        Err(e) => TokenValidation {
            resource,
            reason: Some(e.description),
            ..TokenValidation::default()
        },
        Ok(c) if !c.aud.iter().any(|a| a.trim_end_matches('/') == resource) => TokenValidation {
            resource,
            reason: Some("the token's audience does not include this resource".into()),
            aud: Some(c.aud),
            ..TokenValidation::default()
        },
        Ok(c) => TokenValidation {
            valid: true,
            resource,
            sub: Some(c.sub),
            username: Some(c.preferred_username),
            scope: Some(c.scope),
            exp: Some(c.exp),
            aud: Some(c.aud),
            reason: None,
        },
    })
}

/// Registers a resource for every proxy with resource settings that lacks one.
pub async fn auto_register(m: &Manager, caller: &Caller) -> ManageResult<Vec<Resource>> {
    let mut made = Vec::new();
    for p in proxies::list(m, caller).await? {
        // Only proxies that describe a resource: `auth_enabled` alone
        // protects a site, it does not make it an OAuth resource.
        if p.resource_endpoint.is_none() && p.resource_scopes.is_none() {
            continue;
        }
        let uri = format!("https://{}{}", p.hostname, p.resource_endpoint.as_deref().unwrap_or(""));
        let uri = uri.trim_end_matches('/').to_string();
        if m.store.kv_get(&resource_key(&uri)).await?.is_some() {
            continue;
        }
        let spec = ResourceSpec {
            uri,
            name: p.hostname.clone(),
            proxy_target: Some(p.hostname.clone()),
            scopes: p.resource_scopes.clone().unwrap_or_default(),
            metadata_url: None,
        };
        made.push(create(m, caller, spec).await?);
    }
    Ok(made)
}
