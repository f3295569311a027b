//! What callers send to the protected-resource registry and to a proxy's
//! `/auth` and `/mcp` sub-resources: typed, so an unknown field or one fixed
//! at creation is a 422 naming it rather than a success that ignores it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::patch::nullable;
use super::{AuthMode, ProxyPatch};

/// Body of resource registration: the record without its owner and time.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// The resource URI: absolute https (http only for loopback), no fragment.
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
    /// Where its metadata lives; derived from `uri` when absent.
    #[serde(default)]
    pub metadata_url: Option<String>,
}

/// Names one registered resource: the request of show and delete.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceKey {
    /// The resource URI (any equivalent spelling; it is made canonical).
    pub uri: String,
}

super::patch::patch_type! {
    [uri, owner_token_hash, created_at]
    /// A partial update of a registered resource. The URI and ownership are
    /// fixed at registration: naming them is refused (422).
    #[derive(Clone, Debug, Default, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ResourcePatch {
        /// Display name.
        #[serde(default)]
        pub name: Option<String>,
        /// Proxy hostname serving it (`null` clears it).
        #[serde(default, deserialize_with = "nullable")]
        pub proxy_target: Option<Option<String>>,
        /// Scopes it understands.
        #[serde(default)]
        pub scopes: Option<Vec<String>>,
        /// Where its metadata lives (`null` clears it).
        #[serde(default, deserialize_with = "nullable")]
        pub metadata_url: Option<Option<String>>,
    }
}

impl ResourcePatch {
    /// Writes the named fields onto `r`.
    pub fn apply(self, r: &mut super::Resource) {
        if let Some(v) = self.name {
            r.name = v;
        }
        if let Some(v) = self.proxy_target {
            r.proxy_target = v;
        }
        if let Some(v) = self.scopes {
            r.scopes = v;
        }
        if let Some(v) = self.metadata_url {
            r.metadata_url = v;
        }
    }
}

/// A partial update of the resource `uri`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceUpdate {
    /// The resource URI.
    pub uri: String,
    /// The fields to change.
    pub patch: ResourcePatch,
}

/// Body of `validate-token`: the access token to check.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCheck {
    /// The access token (a JWT).
    pub token: String,
}

/// A token to check against the resource `uri`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceTokenCheck {
    /// The resource URI.
    pub uri: String,
    /// The token.
    pub check: TokenCheck,
}

/// Body of a proxy's `/auth` sub-resource: the auth settings to change
/// (`auth_enabled` is true unless given). Other proxy fields are refused.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuthSettings {
    /// Auth enforced by the data plane (default true here).
    #[serde(default)]
    pub auth_enabled: Option<bool>,
    /// Authorization server host.
    #[serde(default, deserialize_with = "nullable")]
    pub auth_proxy: Option<Option<String>>,
    /// Auth mode.
    #[serde(default)]
    pub auth_mode: Option<AuthMode>,
    /// GitHub users allowed (null = global default, ["*"] = anyone).
    #[serde(default, deserialize_with = "nullable")]
    pub auth_required_users: Option<Option<Vec<String>>>,
    /// E-mails allowed, `*@domain` patterns accepted.
    #[serde(default, deserialize_with = "nullable")]
    pub auth_required_emails: Option<Option<Vec<String>>>,
    /// Groups allowed.
    #[serde(default, deserialize_with = "nullable")]
    pub auth_required_groups: Option<Option<Vec<String>>>,
    /// Scopes a token must carry one of.
    #[serde(default, deserialize_with = "nullable")]
    pub auth_allowed_scopes: Option<Option<Vec<String>>>,
    /// Audiences accepted besides this proxy's resource URI.
    #[serde(default, deserialize_with = "nullable")]
    pub auth_allowed_audiences: Option<Option<Vec<String>>>,
    /// Send identity headers upstream.
    #[serde(default)]
    pub auth_pass_headers: Option<bool>,
    /// Pass the client's bearer token upstream.
    #[serde(default)]
    pub auth_pass_token: Option<bool>,
    /// Session cookie name.
    #[serde(default)]
    pub auth_cookie_name: Option<String>,
    /// Prefix of identity headers.
    #[serde(default)]
    pub auth_header_prefix: Option<String>,
    /// Paths that skip auth, each with everything below it.
    #[serde(default, deserialize_with = "nullable")]
    pub auth_excluded_paths: Option<Option<Vec<String>>>,
}

impl ProxyAuthSettings {
    /// The proxy update these settings make.
    pub fn into_patch(self) -> ProxyPatch {
        ProxyPatch {
            auth_enabled: Some(self.auth_enabled.unwrap_or(true)),
            auth_proxy: self.auth_proxy,
            auth_mode: self.auth_mode,
            auth_required_users: self.auth_required_users,
            auth_required_emails: self.auth_required_emails,
            auth_required_groups: self.auth_required_groups,
            auth_allowed_scopes: self.auth_allowed_scopes,
            auth_allowed_audiences: self.auth_allowed_audiences,
            auth_pass_headers: self.auth_pass_headers,
            auth_pass_token: self.auth_pass_token,
            auth_cookie_name: self.auth_cookie_name,
            auth_header_prefix: self.auth_header_prefix,
            auth_excluded_paths: self.auth_excluded_paths,
            ..ProxyPatch::default()
        }
    }

    /// The proxy update that turns auth off and resets every setting to
    /// what a new proxy has.
    pub fn cleared() -> ProxyPatch {
        ProxyPatch {
            auth_enabled: Some(false),
            auth_proxy: Some(None),
            auth_mode: Some(AuthMode::default()),
            auth_required_users: Some(None),
            auth_required_emails: Some(None),
            auth_required_groups: Some(None),
            auth_allowed_scopes: Some(None),
            auth_allowed_audiences: Some(None),
            auth_pass_headers: Some(super::proxy::yes()),
            auth_pass_token: Some(false),
            auth_cookie_name: Some(super::proxy::default_cookie()),
            auth_header_prefix: Some(super::proxy::default_prefix()),
            auth_excluded_paths: Some(None),
            ..ProxyPatch::default()
        }
    }
}

/// New auth settings for the proxy `hostname`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuthUpdate {
    /// The proxy's hostname (any case).
    pub hostname: String,
    /// The settings to change.
    pub settings: ProxyAuthSettings,
}

/// Body of a proxy's `/mcp` sub-resource: its protected resource metadata,
/// by the reference's short names (each also accepted as `resource_*`).
/// `endpoint` is `/mcp` unless given.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyResourceSettings {
    /// Protected resource path (default `/mcp`).
    #[serde(default, alias = "resource_endpoint", deserialize_with = "nullable")]
    pub endpoint: Option<Option<String>>,
    /// Scopes of the protected resource.
    #[serde(default, alias = "resource_scopes", deserialize_with = "nullable")]
    pub scopes: Option<Option<Vec<String>>>,
    /// Whether the resource keeps session state.
    #[serde(default, alias = "resource_stateful")]
    pub stateful: Option<bool>,
    /// Protocol versions of the resource.
    #[serde(default, alias = "resource_versions", deserialize_with = "nullable")]
    pub versions: Option<Option<Vec<String>>>,
    /// Free-form server info.
    #[serde(default, alias = "resource_server_info", deserialize_with = "nullable")]
    pub server_info: Option<Option<Value>>,
    /// Serve our metadata even when the backend has its own.
    #[serde(default, alias = "resource_override_backend")]
    pub override_backend: Option<bool>,
    /// Bearer methods advertised.
    #[serde(default, alias = "resource_bearer_methods", deserialize_with = "nullable")]
    pub bearer_methods: Option<Option<Vec<String>>>,
    /// Suffix for the documentation URL.
    #[serde(default, alias = "resource_documentation_suffix", deserialize_with = "nullable")]
    pub documentation_suffix: Option<Option<String>>,
    /// Extra metadata fields.
    #[serde(default, alias = "resource_custom_metadata", deserialize_with = "nullable")]
    pub custom_metadata: Option<Option<Value>>,
}

impl ProxyResourceSettings {
    /// The proxy update these settings make.
    pub fn into_patch(self) -> ProxyPatch {
        ProxyPatch {
            resource_endpoint: Some(self.endpoint.unwrap_or_else(|| Some("/mcp".into()))),
            resource_scopes: self.scopes,
            resource_stateful: self.stateful,
            resource_versions: self.versions,
            resource_server_info: self.server_info,
            resource_override_backend: self.override_backend,
            resource_bearer_methods: self.bearer_methods,
            resource_documentation_suffix: self.documentation_suffix,
            resource_custom_metadata: self.custom_metadata,
            ..ProxyPatch::default()
        }
    }

    /// The proxy update that clears every resource setting.
    pub fn cleared() -> ProxyPatch {
        ProxyPatch {
            resource_endpoint: Some(None),
            resource_scopes: Some(None),
            resource_stateful: Some(false),
            resource_versions: Some(None),
            resource_server_info: Some(None),
            resource_override_backend: Some(false),
            resource_bearer_methods: Some(None),
            resource_documentation_suffix: Some(None),
            resource_custom_metadata: Some(None),
            ..ProxyPatch::default()
        }
    }
}

/// New protected resource settings for the proxy `hostname`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyResourceUpdate {
    /// The proxy's hostname (any case).
    pub hostname: String,
    /// The settings to change.
    pub settings: ProxyResourceSettings,
}
