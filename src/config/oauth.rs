//! OAuth authorization server settings.

use std::time::Duration;

use super::{existing_file, http_url, parse, raw, seconds, ConfigError};

/// Which upstream identity provider logs people in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginProvider {
    /// GitHub (or GitHub Enterprise).
    Github,
    /// Any OpenID Connect provider.
    Oidc,
    /// None configured: authorization requests fail with a clear error.
    None,
}

/// GitHub OAuth app settings (URLs configurable for GitHub Enterprise).
#[derive(Clone, Debug)]
pub struct GithubConfig {
    /// OAuth app client id.
    pub client_id: Option<String>,
    /// OAuth app client secret.
    pub client_secret: Option<String>,
    /// Authorize endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// REST API base.
    pub api_url: String,
}

/// Generic OpenID Connect provider settings.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// Issuer URL (discovery at `/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    /// Client id at the provider.
    pub client_id: Option<String>,
    /// Client secret at the provider.
    pub client_secret: Option<String>,
    /// Scopes requested.
    pub scopes: String,
    /// Claim used as the user name.
    pub username_claim: String,
}

/// User lists of one scope tier; `*` means everyone.
pub type UserList = Vec<String>;

/// Everything the authorization server needs.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    /// Issuer identifier (never taken from request headers).
    pub issuer: String,
    /// Seed signing key (PEM) from `OAUTH_JWT_PRIVATE_KEY_B64`.
    pub jwt_private_key_pem: Option<String>,
    /// Access token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh token lifetime.
    pub refresh_token_lifetime: Duration,
    /// Login session (authorize → callback) lifetime.
    pub session_timeout: Duration,
    /// Dynamic client registration lifetime.
    pub client_lifetime: Duration,
    /// Upstream login provider.
    pub login_provider: LoginProvider,
    /// GitHub settings.
    pub github: GithubConfig,
    /// OIDC settings.
    pub oidc: OidcConfig,
    /// Who may log in at all (`None` = anyone when unset).
    pub allowed_users: Option<UserList>,
    /// Users granted `admin`.
    pub admin_users: UserList,
    /// Users granted `user`.
    pub user_users: UserList,
    /// Users granted `mcp`.
    pub mcp_users: UserList,
    /// Overrides for the localhost proxy.
    pub localhost_admin_users: Option<UserList>,
    /// Overrides for the localhost proxy.
    pub localhost_user_users: Option<UserList>,
    /// Overrides for the localhost proxy.
    pub localhost_mcp_users: Option<UserList>,
    /// Most resources in one token's audience.
    pub max_resources_per_token: usize,
    /// Dynamic registrations allowed per source address per hour.
    pub registrations_per_hour: u32,
    /// host:port pairs a Client ID Metadata Document may be fetched from even
    /// though they are private or loopback (internal clients, tests).
    pub cimd_allowed_hosts: Vec<String>,
    /// Extra root certificate (PEM file) for outbound OAuth HTTPS (IdP, CIMD).
    pub http_ca_bundle: Option<std::path::PathBuf>,
}

fn list(var: &'static str) -> Option<UserList> {
    raw(var).map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

fn url_var(var: &'static str, default: &str) -> Result<String, ConfigError> {
    Ok(http_url(var, default)?.trim_end_matches('/').to_string())
}

/// True for hosts where plain http is acceptable (loopback, for tests).
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || host == "[::1]"
}

/// Reads the OAuth settings.
pub fn oauth_config(base_domain: &str) -> Result<OAuthConfig, ConfigError> {
    const V_ISSUER: &str = "OAUTH_ISSUER";
    let issuer = url_var(V_ISSUER, &format!("https://auth.{base_domain}"))?;
    let parsed = url::Url::parse(&issuer).map_err(|e| ConfigError {
        var: V_ISSUER,
        value: issuer.clone(),
        reason: e.to_string(),
    })?;
    if parsed.scheme() == "http" && !is_loopback_host(parsed.host_str().unwrap_or("")) {
        return Err(ConfigError {
            var: V_ISSUER,
            value: issuer,
            reason: "must be https (plain http only for loopback)".into(),
        });
    }
    let jwt_private_key_pem = match raw("OAUTH_JWT_PRIVATE_KEY_B64") {
        None => None,
        Some(b64) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| ConfigError {
                    var: "OAUTH_JWT_PRIVATE_KEY_B64",
                    value: "<hidden>".into(),
                    reason: "not base64".into(),
                })?;
            let pem = String::from_utf8(bytes).unwrap_or_default();
            if openssl::rsa::Rsa::private_key_from_pem(pem.as_bytes()).is_err()
                && openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).map_or(true, |k| k.rsa().is_err())
            {
                return Err(ConfigError {
                    var: "OAUTH_JWT_PRIVATE_KEY_B64",
                    value: "<hidden>".into(),
                    reason: "not a base64-encoded RSA private key PEM".into(),
                });
            }
            Some(pem)
        }
    };
    let github = GithubConfig {
        client_id: raw("GITHUB_CLIENT_ID"),
        client_secret: raw("GITHUB_CLIENT_SECRET"),
        authorize_url: url_var("GITHUB_AUTHORIZE_URL", "https://github.com/login/oauth/authorize")?,
        token_url: url_var("GITHUB_TOKEN_URL", "https://github.com/login/oauth/access_token")?,
        api_url: url_var("GITHUB_API_URL", "https://api.github.com")?,
    };
    let oidc = OidcConfig {
        issuer: raw("OIDC_ISSUER").map(|s| s.trim_end_matches('/').to_string()),
        client_id: raw("OIDC_CLIENT_ID"),
        client_secret: raw("OIDC_CLIENT_SECRET"),
        scopes: raw("OIDC_SCOPES").unwrap_or_else(|| "openid email profile".into()),
        username_claim: raw("OIDC_USERNAME_CLAIM").unwrap_or_else(|| "preferred_username".into()),
    };
    let login_provider = match raw("OAUTH_LOGIN_PROVIDER").map(|s| s.to_ascii_lowercase()) {
        Some(p) if p == "github" => LoginProvider::Github,
        Some(p) if p == "oidc" => LoginProvider::Oidc,
        Some(p) => {
            return Err(ConfigError {
                var: "OAUTH_LOGIN_PROVIDER",
                value: p,
                reason: "expected github or oidc".into(),
            })
        }
        None if github.client_id.is_some() => LoginProvider::Github,
        None if oidc.issuer.is_some() => LoginProvider::Oidc,
        None => LoginProvider::None,
    };
    let http_ca_bundle = existing_file("OAUTH_HTTP_CA_BUNDLE")?;
    Ok(OAuthConfig {
        issuer,
        jwt_private_key_pem,
        access_token_lifetime: seconds("OAUTH_ACCESS_TOKEN_LIFETIME", 1800)?,
        refresh_token_lifetime: seconds("OAUTH_REFRESH_TOKEN_LIFETIME", 31_536_000)?,
        session_timeout: seconds("OAUTH_SESSION_TIMEOUT", 300)?,
        client_lifetime: seconds("OAUTH_CLIENT_LIFETIME", 7_776_000)?,
        login_provider,
        github,
        oidc,
        allowed_users: list("OAUTH_ALLOWED_GITHUB_USERS"),
        admin_users: list("OAUTH_ADMIN_USERS").unwrap_or_default(),
        user_users: list("OAUTH_USER_USERS").unwrap_or_default(),
        mcp_users: list("OAUTH_MCP_USERS").unwrap_or_default(),
        localhost_admin_users: list("OAUTH_LOCALHOST_ADMIN_USERS"),
        localhost_user_users: list("OAUTH_LOCALHOST_USER_USERS"),
        localhost_mcp_users: list("OAUTH_LOCALHOST_MCP_USERS"),
        max_resources_per_token: parse("MCP_MAX_RESOURCES_PER_TOKEN", 5, "a count")?,
        registrations_per_hour: parse("OAUTH_REGISTRATIONS_PER_HOUR", 20, "a count")?,
        cimd_allowed_hosts: list("OAUTH_CIMD_ALLOWED_HOSTS").unwrap_or_default(),
        http_ca_bundle,
    })
}

#[cfg(test)]
impl OAuthConfig {
    /// The settings as read from the environment of a unit test (no OAuth variables set there).
    pub fn from_test_env() -> Self {
        oauth_config("example.com").expect("the OAuth defaults are valid")
    }
}
