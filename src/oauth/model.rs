//! Records the authorization server keeps (all ephemeral, in the store's KV).

use serde::{Deserialize, Serialize};

/// A registered client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Client {
    /// Client id (random, or the CIMD URL).
    pub client_id: String,
    /// Hash of the secret for confidential clients.
    #[serde(default)]
    pub client_secret_hash: Option<String>,
    /// Hash of the registration access token.
    #[serde(default)]
    pub registration_token_hash: Option<String>,
    /// Display name.
    #[serde(default)]
    pub client_name: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grants allowed.
    pub grant_types: Vec<String>,
    /// Response types allowed.
    pub response_types: Vec<String>,
    /// Scopes the client may ask for (space separated), if restricted.
    #[serde(default)]
    pub scope: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// Other registered metadata, echoed back.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Unix time of registration.
    pub client_id_issued_at: i64,
    /// Unix time of expiry (0 = never).
    pub client_secret_expires_at: i64,
    /// `dcr`, `cimd` or `builtin`.
    pub source: String,
    /// Set by the admin: the client is a resource server and may introspect
    /// tokens issued to other clients.
    #[serde(default)]
    pub resource_server: bool,
    /// Set by the admin: no consent page for this client.
    #[serde(default)]
    pub pre_approved: bool,
}

/// The person behind a login.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    /// Stable id, `provider:subject`.
    pub id: String,
    /// Login name.
    pub username: String,
    /// E-mail, if known.
    #[serde(default)]
    pub email: Option<String>,
    /// Groups (GitHub orgs and org/team slugs, OIDC `groups`).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An authorization request waiting for the upstream login.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginSession {
    /// Client asking.
    pub client_id: String,
    /// Where to send the code.
    pub redirect_uri: String,
    /// Client's state.
    pub state: Option<String>,
    /// The authorization request named `redirect_uri`.
    #[serde(default = "yes")]
    pub redirect_uri_given: bool,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Scopes requested (empty = all the user may have).
    pub scope: Vec<String>,
    /// Resources requested.
    pub resources: Vec<String>,
    /// Proxy whose allowlist applies.
    pub proxy_hostname: Option<String>,
    /// The server picked the proxy (proxy login), not a client parameter.
    #[serde(default)]
    pub server_chose_proxy: bool,
    /// Digest of the nonce in the browser-binding cookie set when this login
    /// started at the authorization server (empty: bound at the proxy instead).
    #[serde(default)]
    pub browser: String,
    /// Our PKCE verifier toward the upstream IdP.
    pub upstream_verifier: String,
    /// OIDC nonce.
    pub nonce: String,
    /// Set when this login approves a device code.
    #[serde(default)]
    pub device_user_code: Option<String>,
}

/// An issued authorization code.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    /// Client it was issued to.
    pub client_id: String,
    /// Redirect URI it was sent to.
    pub redirect_uri: String,
    /// The authorization request named `redirect_uri` (then the token request must too).
    #[serde(default = "yes")]
    pub redirect_uri_given: bool,
    /// PKCE challenge.
    pub code_challenge: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Granted resources.
    pub resources: Vec<String>,
    /// Who logged in.
    pub user: User,
    /// Token family created from this code.
    pub family: String,
    /// Proxy whose lists applied at login (re-applied at every refresh).
    #[serde(default)]
    pub proxy_hostname: Option<String>,
    /// The server picked that proxy.
    #[serde(default)]
    pub server_chose_proxy: bool,
}

/// A refresh token (stored by hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// Token family.
    pub family: String,
    /// Client.
    pub client_id: String,
    /// User.
    pub user: User,
    /// Scopes of the grant (an access token may be narrower).
    pub scope: Vec<String>,
    /// Resources of the grant (an access token may be narrower).
    pub resources: Vec<String>,
    /// Proxy whose lists applied at login (re-applied at every refresh).
    #[serde(default)]
    pub proxy_hostname: Option<String>,
    /// The server picked that proxy.
    #[serde(default)]
    pub server_chose_proxy: bool,
    /// Unix expiry.
    pub expires_at: i64,
    /// When it was used (rotated away), if it was.
    #[serde(default)]
    pub rotated_at: Option<i64>,
    /// The response its rotation produced (sealed), for a concurrent retry.
    #[serde(default)]
    pub rotated_response: Option<String>,
}

/// What we remember of an access token (for introspection, revocation,
/// listing); the OAuth admin API shows it as it is.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRecord {
    /// Token id.
    pub jti: String,
    /// Client.
    pub client_id: String,
    /// Subject.
    pub sub: String,
    /// User name.
    pub username: String,
    /// Scopes, space separated.
    pub scope: String,
    /// Audience.
    pub aud: Vec<String>,
    /// Issued at (unix time).
    pub iat: i64,
    /// Expires at (unix time).
    pub exp: i64,
    /// Session (token family).
    pub family: String,
}

/// A pending device authorization (RFC 8628).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceGrant {
    /// Client.
    pub client_id: String,
    /// Requested scopes.
    pub scope: Vec<String>,
    /// Requested resources.
    pub resources: Vec<String>,
    /// The code the person types.
    pub user_code: String,
    /// Set once the person logged in and approved.
    #[serde(default)]
    pub user: Option<User>,
    /// Scopes actually granted (set with `user`).
    #[serde(default)]
    pub granted_scope: Vec<String>,
    /// Denied by policy.
    #[serde(default)]
    pub denied: Option<String>,
    /// Last poll (unix ms), for `slow_down`.
    #[serde(default)]
    pub last_poll_ms: i64,
}

fn yes() -> bool {
    true
}

/// Unix time now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
