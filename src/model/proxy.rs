//! The proxy target record: one hostname served by the data plane.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    check_list_size, check_text_len, valid_hostname, valid_name, validate_http_url, ValidationError, MAX_ENTRIES, MAX_ENTRY_LEN,
    MAX_TEXT_LEN,
};

/// How the data plane treats requests without a valid token on an auth-enabled proxy.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// 401/403 with `WWW-Authenticate` (APIs, MCP clients).
    #[default]
    Forward,
    /// Browsers are sent to the login page.
    Redirect,
    /// Always forwarded; identity headers only with a valid token.
    Passthrough,
}

/// Which routes apply to a proxy.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteMode {
    /// Every applicable route except `disabled_routes`.
    #[default]
    All,
    /// Only the routes listed in `enabled_routes`.
    Selective,
    /// No routes: everything goes to `target_url`.
    None,
}

pub(super) fn yes() -> bool {
    true
}
pub(super) fn default_cookie() -> String {
    "unified_auth_token".into()
}
pub(super) fn default_prefix() -> String {
    "X-Auth-".into()
}

/// A proxy target, field for field the reference's Proxy Target schema plus
/// `verify_upstream_tls` (skip verification for self-signed backends).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// The hostname served (lowercase, no port).
    pub hostname: String,
    /// Where requests go when no route matches.
    pub target_url: String,
    /// Certificate used for this hostname, if any.
    #[serde(default)]
    pub cert_name: Option<String>,
    /// Hash of the token that owns this proxy.
    #[serde(default)]
    pub owner_token_hash: String,
    /// Name of the token that created it.
    #[serde(default)]
    pub created_by: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
    /// A disabled proxy answers 503.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Serve plain HTTP.
    #[serde(default = "yes")]
    pub enable_http: bool,
    /// Serve HTTPS.
    #[serde(default = "yes")]
    pub enable_https: bool,
    /// Order a certificate automatically at creation when HTTPS is on and no
    /// `cert_name` is given (also needs `ACME_AUTO`).
    #[serde(default = "yes")]
    pub acme_auto: bool,
    /// Pass the client's Host header upstream instead of the target's.
    #[serde(default = "yes")]
    pub preserve_host_header: bool,
    /// Verify the upstream's TLS certificate (default true).
    #[serde(default = "yes")]
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
    #[serde(default = "yes")]
    pub auth_pass_headers: bool,
    /// Pass the client's bearer token upstream (off by default, per the MCP spec).
    #[serde(default)]
    pub auth_pass_token: bool,
    /// Session cookie name.
    #[serde(default = "default_cookie")]
    pub auth_cookie_name: String,
    /// Prefix of identity headers.
    #[serde(default = "default_prefix")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_policy: Option<Vec<super::McpRule>>,
    /// Judge POSTs without `Mcp-Method` by a bounded look at their JSON-RPC
    /// body (older MCP clients send no such headers); off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mcp_inspect_body: bool,
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
}

fn check_list(field: &str, v: &Option<Vec<String>>) -> Result<(), ValidationError> {
    if let Some(items) = v {
        if items.iter().any(|s| s.trim().is_empty()) {
            return Err(ValidationError::new(field, "entries must be non-empty strings"));
        }
        check_list_size(field, items)?;
    }
    Ok(())
}

/// Header names a proxy's custom headers may not set, compared in lower
/// case with `_` read as `-` (some servers treat them alike): hop-by-hop and
/// framing headers (a second `Content-Length` or `Transfer-Encoding` desyncs
/// the upstream: request smuggling), the headers upstreams trust for the
/// client's address, host and scheme, and credentials.
const RESERVED_HEADERS: [&str; 13] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
    "forwarded",
    "x-real-ip",
    "authorization",
    "proxy-authorization",
    "proxy-connection",
];

/// Name prefixes refused for the same reason: `X-Forwarded-*`, and the
/// identity headers the data plane sets after checking a token.
const RESERVED_PREFIXES: [&str; 2] = ["x-forwarded-", "x-auth-"];

/// True when a custom header may not use `name`: a reserved name, a reserved
/// prefix, or the proxy's own identity header prefix (`auth_prefix`).
pub fn reserved_header(name: &str, auth_prefix: &str) -> bool {
    let norm = |s: &str| s.trim().to_ascii_lowercase().replace('_', "-");
    let n = norm(name);
    let own = norm(auth_prefix);
    RESERVED_HEADERS.contains(&n.as_str()) || RESERVED_PREFIXES.iter().any(|p| n.starts_with(p)) || (!own.is_empty() && n.starts_with(&own))
}

fn check_headers(field: &str, h: &BTreeMap<String, String>, auth_prefix: &str) -> Result<(), ValidationError> {
    if h.len() > MAX_ENTRIES {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_ENTRIES} headers (got {})", h.len()),
        ));
    }
    for (k, v) in h {
        if k.len() > MAX_ENTRY_LEN || http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(ValidationError::new(field, format!("invalid header name {k:?}")));
        }
        if reserved_header(k, auth_prefix) {
            return Err(ValidationError::new(
                field,
                format!("{k} may not be set: hop-by-hop, framing, forwarding, credential and identity headers are managed by the proxy"),
            ));
        }
        check_text_len(field, v, MAX_TEXT_LEN)?;
        if http::HeaderValue::from_str(v).is_err() {
            return Err(ValidationError::new(field, format!("invalid value for header {k:?}")));
        }
    }
    Ok(())
}

/// What the API shows instead of a stored secret.
pub const MASKED: &str = "********";

impl Proxy {
    /// The record as the API shows it: write-only secrets masked.
    pub fn public(mut self) -> Self {
        if self.github_client_secret.is_some() {
            self.github_client_secret = Some(MASKED.into());
        }
        self
    }

    /// Normalises (lowercase hostname) and validates every field.
    pub fn validate(&mut self) -> Result<(), ValidationError> {
        self.hostname = self.hostname.trim().to_ascii_lowercase();
        if !valid_hostname(&self.hostname) {
            return Err(ValidationError::new(
                "hostname",
                format!("{:?} is not a valid hostname", self.hostname),
            ));
        }
        validate_http_url("target_url", &self.target_url)?;
        if let Some(c) = &self.cert_name {
            if !valid_name(c) {
                return Err(ValidationError::new("cert_name", "letters, digits, '-', '_' and '.' only"));
            }
        }
        if let Some(a) = &self.auth_proxy {
            if !valid_hostname(&a.to_ascii_lowercase()) {
                return Err(ValidationError::new("auth_proxy", format!("{a:?} is not a valid hostname")));
            }
        }
        check_headers("custom_headers", &self.custom_headers, &self.auth_header_prefix)?;
        check_headers("custom_response_headers", &self.custom_response_headers, &self.auth_header_prefix)?;
        for (f, v) in [("enabled_routes", &self.enabled_routes), ("disabled_routes", &self.disabled_routes)] {
            check_list_size(f, v)?;
        }
        for (f, v) in [
            ("oauth_admin_users", &self.oauth_admin_users),
            ("oauth_user_users", &self.oauth_user_users),
            ("oauth_mcp_users", &self.oauth_mcp_users),
            ("resource_versions", &self.resource_versions),
            ("resource_bearer_methods", &self.resource_bearer_methods),
        ] {
            check_list_size(f, v.as_deref().unwrap_or_default())?;
        }
        for (f, v) in [
            ("resource_endpoint", &self.resource_endpoint),
            ("resource_documentation_suffix", &self.resource_documentation_suffix),
            ("github_client_id", &self.github_client_id),
        ] {
            check_text_len(f, v.as_deref().unwrap_or_default(), MAX_ENTRY_LEN)?;
        }
        check_text_len("auth_header_prefix", &self.auth_header_prefix, MAX_ENTRY_LEN)?;
        check_text_len("auth_cookie_name", &self.auth_cookie_name, MAX_ENTRY_LEN)?;
        for (f, v) in [
            ("resource_server_info", &self.resource_server_info),
            ("resource_custom_metadata", &self.resource_custom_metadata),
        ] {
            if let Some(v) = v {
                check_text_len(f, &v.to_string(), MAX_TEXT_LEN * 4)?;
            }
        }
        for (f, v) in [
            ("auth_required_users", &self.auth_required_users),
            ("auth_required_emails", &self.auth_required_emails),
            ("auth_required_groups", &self.auth_required_groups),
            ("auth_allowed_scopes", &self.auth_allowed_scopes),
            ("auth_allowed_audiences", &self.auth_allowed_audiences),
            ("auth_excluded_paths", &self.auth_excluded_paths),
            ("resource_scopes", &self.resource_scopes),
        ] {
            check_list(f, v)?;
        }
        if let Some(paths) = &self.auth_excluded_paths {
            if let Some(p) = paths.iter().find(|p| !p.starts_with('/')) {
                return Err(ValidationError::new("auth_excluded_paths", format!("{p:?} must start with '/'")));
            }
        }
        if http::HeaderName::from_bytes(self.auth_header_prefix.as_bytes()).is_err() {
            return Err(ValidationError::new("auth_header_prefix", "must be a valid header name prefix"));
        }
        if !self
            .auth_cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            || self.auth_cookie_name.is_empty()
        {
            return Err(ValidationError::new("auth_cookie_name", "letters, digits, '-' and '_' only"));
        }
        if let Some(e) = &self.resource_endpoint {
            if !e.starts_with('/') {
                return Err(ValidationError::new("resource_endpoint", "must be a path starting with '/'"));
            }
        }
        if let Some(m) = &self.resource_custom_metadata {
            if !m.is_object() {
                return Err(ValidationError::new("resource_custom_metadata", "must be a JSON object"));
            }
        }
        if let Some(rules) = &self.mcp_policy {
            super::mcp_policy::validate(rules)?;
        }
        if !self.enable_http && !self.enable_https {
            return Err(ValidationError::new(
                "enable_http",
                "at least one of enable_http and enable_https must be true",
            ));
        }
        Ok(())
    }
}
