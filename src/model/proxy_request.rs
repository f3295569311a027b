//! What callers send to create and change proxies: kept apart from the stored
//! [`Proxy`] record, so ownership and identity cannot be written through the
//! API and an update says which fields it changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{AuthMode, Proxy, RouteMode};

/// Options of the certificate order a new HTTPS proxy starts by itself.
#[derive(Clone, Debug, Default)]
pub struct AutoCertOptions {
    /// Order from the ACME staging directory.
    pub staging: bool,
    /// Contact e-mail for the order.
    pub email: Option<String>,
}

/// Names one proxy: the request of show and delete.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyKey {
    /// The proxy's hostname (any case).
    pub hostname: String,
}

/// A partial update of the proxy `hostname`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyUpdate {
    /// The proxy's hostname (any case).
    pub hostname: String,
    /// The fields to change.
    pub patch: ProxyPatch,
}

/// What a caller gives to create a proxy: every settable field of
/// [`Proxy`] (ownership and timestamps are the server's), plus the options of
/// the automatic certificate order. Unknown fields are refused (422).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// The hostname served (lowercase, no port).
    pub hostname: String,
    /// Where requests go when no route matches.
    pub target_url: String,
    /// Certificate used for this hostname, if any.
    #[serde(default)]
    pub cert_name: Option<String>,
    /// A disabled proxy answers 503.
    #[serde(default = "super::proxy::yes")]
    pub enabled: bool,
    /// Serve plain HTTP.
    #[serde(default = "super::proxy::yes")]
    pub enable_http: bool,
    /// Serve HTTPS.
    #[serde(default = "super::proxy::yes")]
    pub enable_https: bool,
    /// Order a certificate automatically at creation when HTTPS is on and no
    /// `cert_name` is given (also needs `ACME_AUTO`).
    #[serde(default = "super::proxy::yes")]
    pub acme_auto: bool,
    /// Pass the client's Host header upstream instead of the target's.
    #[serde(default = "super::proxy::yes")]
    pub preserve_host_header: bool,
    /// Verify the upstream's TLS certificate (default true).
    #[serde(default = "super::proxy::yes")]
    pub verify_upstream_tls: bool,
    /// Headers added to the upstream request.
    #[serde(default)]
    pub custom_headers: BTreeMap<String, String>,
    /// Headers added to the response.
    #[serde(default)]
    pub custom_response_headers: BTreeMap<String, String>,
    /// Auth enforced by the data plane.
    #[serde(default)]
    pub auth_enabled: bool,
    /// Authorization server host.
    #[serde(default)]
    pub auth_proxy: Option<String>,
    /// Auth mode.
    #[serde(default)]
    pub auth_mode: AuthMode,
    /// GitHub users allowed (null = global default, ["*"] = anyone).
    #[serde(default)]
    pub auth_required_users: Option<Vec<String>>,
    /// E-mails allowed, `*@domain` patterns accepted.
    #[serde(default)]
    pub auth_required_emails: Option<Vec<String>>,
    /// Groups allowed.
    #[serde(default)]
    pub auth_required_groups: Option<Vec<String>>,
    /// Scopes a token must carry one of.
    #[serde(default)]
    pub auth_allowed_scopes: Option<Vec<String>>,
    /// Audiences accepted besides this proxy's resource URI.
    #[serde(default)]
    pub auth_allowed_audiences: Option<Vec<String>>,
    /// Send identity headers upstream.
    #[serde(default = "super::proxy::yes")]
    pub auth_pass_headers: bool,
    /// Pass the client's bearer token upstream (off by default, per the MCP spec).
    #[serde(default)]
    pub auth_pass_token: bool,
    /// Session cookie name.
    #[serde(default = "super::proxy::default_cookie")]
    pub auth_cookie_name: String,
    /// Prefix of identity headers.
    #[serde(default = "super::proxy::default_prefix")]
    pub auth_header_prefix: String,
    /// Paths that skip auth, each with everything below it (`/public`
    /// covers `/public/x`, not `/publicx`).
    #[serde(default)]
    pub auth_excluded_paths: Option<Vec<String>>,
    /// CORS preflights (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) pass without a token; off by default,
    /// when every `OPTIONS` needs one like any other method.
    #[serde(default)]
    pub auth_allow_cors_preflight: bool,
    /// Pass client header names containing `_` upstream (dropped by default,
    /// like nginx's `underscores_in_headers off`).
    #[serde(default)]
    pub allow_underscores_in_headers: bool,
    /// Serve the OAuth endpoints (`/authorize`, `/token`, `/register`, ...)
    /// on this host too, forwarded to the control plane; otherwise only
    /// `auth.{BASE_DOMAIN}` does, and these paths reach this proxy's backend.
    #[serde(default)]
    pub oauth_endpoints: bool,
    /// Which routes apply.
    #[serde(default)]
    pub route_mode: RouteMode,
    /// Routes used in selective mode.
    #[serde(default)]
    pub enabled_routes: Vec<String>,
    /// Routes skipped in `all` mode.
    #[serde(default)]
    pub disabled_routes: Vec<String>,
    /// Protected resource path (e.g. `/mcp`).
    #[serde(default)]
    pub resource_endpoint: Option<String>,
    /// Scopes of the protected resource.
    #[serde(default)]
    pub resource_scopes: Option<Vec<String>>,
    /// Whether the resource keeps session state.
    #[serde(default)]
    pub resource_stateful: bool,
    /// Protocol versions of the resource.
    #[serde(default)]
    pub resource_versions: Option<Vec<String>>,
    /// Free-form server info.
    #[serde(default)]
    pub resource_server_info: Option<Value>,
    /// Serve our metadata even when the backend has its own.
    #[serde(default)]
    pub resource_override_backend: bool,
    /// Bearer methods advertised.
    #[serde(default)]
    pub resource_bearer_methods: Option<Vec<String>>,
    /// Suffix for the documentation URL.
    #[serde(default)]
    pub resource_documentation_suffix: Option<String>,
    /// Extra metadata fields.
    #[serde(default)]
    pub resource_custom_metadata: Option<Value>,
    /// MCP methods and tool names callers may use at the resource endpoint, by scope.
    #[serde(default)]
    pub mcp_policy: Option<Vec<super::McpRule>>,
    /// Judge POSTs without `Mcp-Method` by a bounded look at their JSON-RPC body (default false).
    #[serde(default)]
    pub mcp_inspect_body: Option<bool>,
    /// This proxy's own GitHub OAuth app (falls back to `GITHUB_CLIENT_ID`).
    #[serde(default)]
    pub github_client_id: Option<String>,
    /// Its secret: write-only, sealed at rest, never returned.
    #[serde(default)]
    pub github_client_secret: Option<String>,
    /// Users granted `admin` through this proxy's login (overrides `OAUTH_ADMIN_USERS`).
    #[serde(default)]
    pub oauth_admin_users: Option<Vec<String>>,
    /// Users granted `user` (overrides `OAUTH_USER_USERS`).
    #[serde(default)]
    pub oauth_user_users: Option<Vec<String>>,
    /// Users granted `mcp` (overrides `OAUTH_MCP_USERS`).
    #[serde(default)]
    pub oauth_mcp_users: Option<Vec<String>>,
    /// Order the automatic certificate from the staging directory.
    #[serde(default)]
    pub staging: bool,
    /// Contact e-mail of the automatic certificate order.
    #[serde(default)]
    pub email: Option<String>,
}

impl ProxySpec {
    /// The record this spec describes, owned by `owner` (a token hash), made
    /// by `created_by` now; with the order options split off.
    pub fn into_record(self, owner: String, created_by: String) -> (Proxy, AutoCertOptions) {
        let p = Proxy {
            hostname: self.hostname,
            target_url: self.target_url,
            cert_name: self.cert_name,
            owner_token_hash: owner,
            created_by,
            created_at: super::now_rfc3339(),
            enabled: self.enabled,
            enable_http: self.enable_http,
            enable_https: self.enable_https,
            acme_auto: self.acme_auto,
            preserve_host_header: self.preserve_host_header,
            verify_upstream_tls: self.verify_upstream_tls,
            custom_headers: self.custom_headers,
            custom_response_headers: self.custom_response_headers,
            auth_enabled: self.auth_enabled,
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
            auth_allow_cors_preflight: self.auth_allow_cors_preflight,
            allow_underscores_in_headers: self.allow_underscores_in_headers,
            oauth_endpoints: self.oauth_endpoints,
            route_mode: self.route_mode,
            enabled_routes: self.enabled_routes,
            disabled_routes: self.disabled_routes,
            resource_endpoint: self.resource_endpoint,
            resource_scopes: self.resource_scopes,
            resource_stateful: self.resource_stateful,
            resource_versions: self.resource_versions,
            resource_server_info: self.resource_server_info,
            resource_override_backend: self.resource_override_backend,
            resource_bearer_methods: self.resource_bearer_methods,
            resource_documentation_suffix: self.resource_documentation_suffix,
            resource_custom_metadata: self.resource_custom_metadata,
            mcp_policy: self.mcp_policy,
            mcp_inspect_body: self.mcp_inspect_body.unwrap_or(false),
            github_client_id: self.github_client_id,
            github_client_secret: self.github_client_secret,
            oauth_admin_users: self.oauth_admin_users,
            oauth_user_users: self.oauth_user_users,
            oauth_mcp_users: self.oauth_mcp_users,
        };
        (
            p,
            AutoCertOptions {
                staging: self.staging,
                email: self.email,
            },
        )
    }
}

super::patch::patch_type! {
    [hostname, owner_token_hash, created_by, created_at]
    /// A partial update of a proxy: each field named replaces the stored one
    /// (`null` clears an optional one). Naming a field fixed at creation
    /// (`hostname`, `owner_token_hash`, `created_by`, `created_at`) or an unknown
    /// field is refused (422) rather than ignored.
    #[derive(Clone, Debug, Default, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ProxyPatch {
        /// Where requests go when no route matches.
        #[serde(default)]
        pub target_url: Option<String>,
        /// Certificate used for this hostname, if any.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub cert_name: Option<Option<String>>,
        /// A disabled proxy answers 503.
        #[serde(default)]
        pub enabled: Option<bool>,
        /// Serve plain HTTP.
        #[serde(default)]
        pub enable_http: Option<bool>,
        /// Serve HTTPS.
        #[serde(default)]
        pub enable_https: Option<bool>,
        /// Order a certificate automatically at creation when HTTPS is on and no
        /// `cert_name` is given (also needs `ACME_AUTO`).
        #[serde(default)]
        pub acme_auto: Option<bool>,
        /// Pass the client's Host header upstream instead of the target's.
        #[serde(default)]
        pub preserve_host_header: Option<bool>,
        /// Verify the upstream's TLS certificate (default true).
        #[serde(default)]
        pub verify_upstream_tls: Option<bool>,
        /// Headers added to the upstream request.
        #[serde(default)]
        pub custom_headers: Option<BTreeMap<String, String>>,
        /// Headers added to the response.
        #[serde(default)]
        pub custom_response_headers: Option<BTreeMap<String, String>>,
        /// Auth enforced by the data plane.
        #[serde(default)]
        pub auth_enabled: Option<bool>,
        /// Authorization server host.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_proxy: Option<Option<String>>,
        /// Auth mode.
        #[serde(default)]
        pub auth_mode: Option<AuthMode>,
        /// GitHub users allowed (null = global default, ["*"] = anyone).
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_required_users: Option<Option<Vec<String>>>,
        /// E-mails allowed, `*@domain` patterns accepted.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_required_emails: Option<Option<Vec<String>>>,
        /// Groups allowed.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_required_groups: Option<Option<Vec<String>>>,
        /// Scopes a token must carry one of.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_allowed_scopes: Option<Option<Vec<String>>>,
        /// Audiences accepted besides this proxy's resource URI.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_allowed_audiences: Option<Option<Vec<String>>>,
        /// Send identity headers upstream.
        #[serde(default)]
        pub auth_pass_headers: Option<bool>,
        /// Pass the client's bearer token upstream (off by default, per the MCP spec).
        #[serde(default)]
        pub auth_pass_token: Option<bool>,
        /// Session cookie name.
        #[serde(default)]
        pub auth_cookie_name: Option<String>,
        /// Prefix of identity headers.
        #[serde(default)]
        pub auth_header_prefix: Option<String>,
        /// Paths that skip auth, each with everything below it (`/public`
        /// covers `/public/x`, not `/publicx`).
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_excluded_paths: Option<Option<Vec<String>>>,
        /// CORS preflights (`OPTIONS` with `Origin` and
        /// `Access-Control-Request-Method`) pass without a token; off by default,
        /// when every `OPTIONS` needs one like any other method.
        #[serde(default)]
        pub auth_allow_cors_preflight: Option<bool>,
        /// Pass client header names containing `_` upstream (dropped by default,
        /// like nginx's `underscores_in_headers off`).
        #[serde(default)]
        pub allow_underscores_in_headers: Option<bool>,
        /// Serve the OAuth endpoints (`/authorize`, `/token`, `/register`, ...)
        /// on this host too, forwarded to the control plane; otherwise only
        /// `auth.{BASE_DOMAIN}` does, and these paths reach this proxy's backend.
        #[serde(default)]
        pub oauth_endpoints: Option<bool>,
        /// Which routes apply.
        #[serde(default)]
        pub route_mode: Option<RouteMode>,
        /// Routes used in selective mode.
        #[serde(default)]
        pub enabled_routes: Option<Vec<String>>,
        /// Routes skipped in `all` mode.
        #[serde(default)]
        pub disabled_routes: Option<Vec<String>>,
        /// Protected resource path (e.g. `/mcp`).
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub resource_endpoint: Option<Option<String>>,
        /// Scopes of the protected resource.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub resource_scopes: Option<Option<Vec<String>>>,
        /// Whether the resource keeps session state.
        #[serde(default)]
        pub resource_stateful: Option<bool>,
        /// Protocol versions of the resource.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub resource_versions: Option<Option<Vec<String>>>,
        /// Free-form server info.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub resource_server_info: Option<Option<Value>>,
        /// Serve our metadata even when the backend has its own.
        #[serde(default)]
        pub resource_override_backend: Option<bool>,
        /// Bearer methods advertised.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub resource_bearer_methods: Option<Option<Vec<String>>>,
        /// Suffix for the documentation URL.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub resource_documentation_suffix: Option<Option<String>>,
        /// Extra metadata fields.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub resource_custom_metadata: Option<Option<Value>>,
        /// MCP methods and tool names callers may use at the resource endpoint, by scope.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub mcp_policy: Option<Option<Vec<super::McpRule>>>,
        /// Judge POSTs without `Mcp-Method` by a bounded look at their JSON-RPC body.
        #[serde(default)]
        pub mcp_inspect_body: Option<bool>,
        /// This proxy's own GitHub OAuth app (falls back to `GITHUB_CLIENT_ID`).
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub github_client_id: Option<Option<String>>,
        /// Its secret: write-only, sealed at rest, never returned.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub github_client_secret: Option<Option<String>>,
        /// Users granted `admin` through this proxy's login (overrides `OAUTH_ADMIN_USERS`).
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub oauth_admin_users: Option<Option<Vec<String>>>,
        /// Users granted `user` (overrides `OAUTH_USER_USERS`).
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub oauth_user_users: Option<Option<Vec<String>>>,
        /// Users granted `mcp` (overrides `OAUTH_MCP_USERS`).
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub oauth_mcp_users: Option<Option<Vec<String>>>,
    }
}

impl ProxyPatch {
    /// Writes the named fields onto `p`.
    pub fn apply(self, p: &mut Proxy) {
        if let Some(v) = self.target_url {
            p.target_url = v;
        }
        if let Some(v) = self.cert_name {
            p.cert_name = v;
        }
        if let Some(v) = self.enabled {
            p.enabled = v;
        }
        if let Some(v) = self.enable_http {
            p.enable_http = v;
        }
        if let Some(v) = self.enable_https {
            p.enable_https = v;
        }
        if let Some(v) = self.acme_auto {
            p.acme_auto = v;
        }
        if let Some(v) = self.preserve_host_header {
            p.preserve_host_header = v;
        }
        if let Some(v) = self.verify_upstream_tls {
            p.verify_upstream_tls = v;
        }
        if let Some(v) = self.custom_headers {
            p.custom_headers = v;
        }
        if let Some(v) = self.custom_response_headers {
            p.custom_response_headers = v;
        }
        if let Some(v) = self.auth_enabled {
            p.auth_enabled = v;
        }
        if let Some(v) = self.auth_proxy {
            p.auth_proxy = v;
        }
        if let Some(v) = self.auth_mode {
            p.auth_mode = v;
        }
        if let Some(v) = self.auth_required_users {
            p.auth_required_users = v;
        }
        if let Some(v) = self.auth_required_emails {
            p.auth_required_emails = v;
        }
        if let Some(v) = self.auth_required_groups {
            p.auth_required_groups = v;
        }
        if let Some(v) = self.auth_allowed_scopes {
            p.auth_allowed_scopes = v;
        }
        if let Some(v) = self.auth_allowed_audiences {
            p.auth_allowed_audiences = v;
        }
        if let Some(v) = self.auth_pass_headers {
            p.auth_pass_headers = v;
        }
        if let Some(v) = self.auth_pass_token {
            p.auth_pass_token = v;
        }
        if let Some(v) = self.auth_cookie_name {
            p.auth_cookie_name = v;
        }
        if let Some(v) = self.auth_header_prefix {
            p.auth_header_prefix = v;
        }
        if let Some(v) = self.auth_excluded_paths {
            p.auth_excluded_paths = v;
        }
        if let Some(v) = self.auth_allow_cors_preflight {
            p.auth_allow_cors_preflight = v;
        }
        if let Some(v) = self.allow_underscores_in_headers {
            p.allow_underscores_in_headers = v;
        }
        if let Some(v) = self.oauth_endpoints {
            p.oauth_endpoints = v;
        }
        if let Some(v) = self.route_mode {
            p.route_mode = v;
        }
        if let Some(v) = self.enabled_routes {
            p.enabled_routes = v;
        }
        if let Some(v) = self.disabled_routes {
            p.disabled_routes = v;
        }
        if let Some(v) = self.resource_endpoint {
            p.resource_endpoint = v;
        }
        if let Some(v) = self.resource_scopes {
            p.resource_scopes = v;
        }
        if let Some(v) = self.resource_stateful {
            p.resource_stateful = v;
        }
        if let Some(v) = self.resource_versions {
            p.resource_versions = v;
        }
        if let Some(v) = self.resource_server_info {
            p.resource_server_info = v;
        }
        if let Some(v) = self.resource_override_backend {
            p.resource_override_backend = v;
        }
        if let Some(v) = self.resource_bearer_methods {
            p.resource_bearer_methods = v;
        }
        if let Some(v) = self.resource_documentation_suffix {
            p.resource_documentation_suffix = v;
        }
        if let Some(v) = self.resource_custom_metadata {
            p.resource_custom_metadata = v;
        }
        if let Some(v) = self.mcp_policy {
            p.mcp_policy = v;
        }
        if let Some(v) = self.mcp_inspect_body {
            p.mcp_inspect_body = v;
        }
        if let Some(v) = self.github_client_id {
            p.github_client_id = v;
        }
        if let Some(v) = self.github_client_secret {
            p.github_client_secret = v;
        }
        if let Some(v) = self.oauth_admin_users {
            p.oauth_admin_users = v;
        }
        if let Some(v) = self.oauth_user_users {
            p.oauth_user_users = v;
        }
        if let Some(v) = self.oauth_mcp_users {
            p.oauth_mcp_users = v;
        }
    }
}
