//! Who may use `/mcp`: the Host and browser Origin it answers (DNS
//! rebinding), the resource URLs it is known by, its protected resource
//! metadata, and the bearer credential → caller (OAuth tokens for this
//! resource with scope `mcp` or `admin`; API tokens with their REST rights).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::protocol::{code, RpcError};
use crate::admin::AppState;
use crate::config::Config;
use crate::manage::{Caller, ManageError, Manager};
use crate::model::TokenScope;

/// Scopes an OAuth token needs here: `mcp` reads, `admin` reads and writes.
const SCOPES: [&str; 2] = ["mcp", "admin"];

/// The caller of one MCP request.
pub struct McpCaller {
    /// Identity and ownership, exactly as the REST API sees them.
    pub caller: Caller,
    /// True for OAuth tokens (a refused write then asks for the `admin` scope).
    pub oauth: bool,
}

/// The host part of a `Host` header or origin authority, lowercased, port
/// and IPv6 brackets removed.
fn host_only(authority: &str) -> String {
    let a = authority.trim();
    let host = match a.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => a.split(':').next().unwrap_or_default(),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The names this endpoint goes by, from the configuration.
struct Site<'a> {
    /// `OAUTH_ISSUER`.
    issuer: &'a str,
    /// `BASE_DOMAIN`.
    base_domain: &'a str,
    /// `HTTP_PORT` (the `localhost` proxy's port).
    http_port: u16,
}

impl<'a> Site<'a> {
    fn of(cfg: &'a Config) -> Self {
        Site {
            issuer: cfg.oauth.issuer.trim_end_matches('/'),
            base_domain: &cfg.base_domain,
            http_port: cfg.http_port,
        }
    }

    fn auth_host(&self) -> String {
        format!("auth.{}", self.base_domain)
    }

    /// The hosts `/mcp` answers: loopback names (the control plane's own
    /// listener and the `localhost` proxy), the issuer's host and
    /// `auth.{BASE_DOMAIN}`. Anything else is a rebound DNS name.
    fn host_allowed(&self, authority: &str) -> bool {
        let h = host_only(authority);
        let issuer_host = url::Url::parse(self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(host_only))
            .unwrap_or_default();
        matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1") || h == issuer_host || h == self.auth_host()
    }

    /// `localhost[:HTTP_PORT]`: the `localhost` proxy's authority.
    fn localhost(&self) -> String {
        if self.http_port == 80 {
            "localhost".into()
        } else {
            format!("localhost:{}", self.http_port)
        }
    }

    /// Every URL this endpoint is known by: under the issuer, on
    /// `auth.{BASE_DOMAIN}`, and on the `localhost` proxy. A token for any
    /// other resource (another proxy's backend) is refused here.
    fn resources(&self) -> [String; 3] {
        [
            format!("{}{}", self.issuer, super::ENDPOINT),
            format!("https://{}{}", self.auth_host(), super::ENDPOINT),
            format!("http://{}{}", self.localhost(), super::ENDPOINT),
        ]
    }

    /// The resource URL as the client reached it (by `Host`): the metadata
    /// and the 401 must name the URL the client used, or it would refuse
    /// the metadata (RFC 9728 §3.3).
    fn resource_for(&self, host: &str) -> String {
        let [issuer, auth_host, localhost] = self.resources();
        if host_only(host) == self.auth_host() {
            auth_host
        } else if host.eq_ignore_ascii_case(&self.localhost()) {
            localhost
        } else {
            issuer
        }
    }

    /// The URL of the metadata document for the resource the client reached.
    fn metadata_url(&self, host: &str) -> String {
        let resource = self.resource_for(host);
        let origin = resource.strip_suffix(super::ENDPOINT).unwrap_or(&resource);
        format!("{origin}{}", super::METADATA_PATH)
    }
}

/// The request's `Host` header ("" when absent or not text).
fn host_of(headers: &HeaderMap) -> &str {
    headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Refuses a request whose `Host` is not ours or whose browser `Origin`
/// names another site (403): a web page must not drive the management API.
pub fn check_host_and_origin(cfg: &Config, headers: &HeaderMap) -> Result<(), RpcError> {
    let site = Site::of(cfg);
    if !site.host_allowed(host_of(headers)) {
        return Err(RpcError::new(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            "this Host is not served here (DNS rebinding protection)",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .and_then(|u| u.host_str().map(|h| site.host_allowed(h)))
            .unwrap_or(false);
        if !ok {
            return Err(RpcError::new(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "requests from this browser Origin are not allowed",
            ));
        }
    }
    Ok(())
}

/// True when `resource` (canonical form) names this endpoint: the
/// authorization server then issues tokens for it.
pub fn is_mcp_resource(cfg: &Config, resource: &str) -> bool {
    Site::of(cfg).resources().iter().any(|r| r == resource)
}

/// Protected resource metadata (RFC 9728 section 2): which authorization
/// server issues tokens for `/mcp` and what to ask it for.
#[derive(Serialize, ToSchema)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier tokens must be issued for (as the client
    /// addressed this server).
    pub resource: String,
    /// The issuer of the authorization server.
    pub authorization_servers: Vec<String>,
    /// The scopes the endpoint honours.
    pub scopes_supported: Vec<&'static str>,
    /// `header`: the token travels in `Authorization: Bearer`.
    pub bearer_methods_supported: Vec<&'static str>,
    /// A name for people.
    pub resource_name: &'static str,
}

/// `GET /.well-known/oauth-protected-resource/mcp` (RFC 9728).
pub async fn metadata(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let cfg = &s.manager.config;
    let doc = ProtectedResourceMetadata {
        resource: Site::of(cfg).resource_for(host_of(&headers)),
        authorization_servers: vec![cfg.oauth.issuer.clone()],
        scopes_supported: SCOPES.to_vec(),
        bearer_methods_supported: vec!["header"],
        resource_name: "Portcullis management (MCP)",
    };
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(doc)).into_response()
}

/// 401 with the pointer to the metadata (and `invalid_token` when a token was sent).
fn unauthorized(cfg: &Config, headers: &HeaderMap, error: Option<&str>) -> RpcError {
    // No `scope` here: a client then asks for every scope the metadata
    // lists and gets those the person is entitled to, instead of `mcp` alone
    // and a step-up its registration may not allow.
    let mut www = format!("Bearer resource_metadata=\"{}\"", Site::of(cfg).metadata_url(host_of(headers)));
    if let Some(e) = error {
        let e: String = e
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
            .take(200)
            .collect();
        www.push_str(&format!(", error=\"invalid_token\", error_description=\"{e}\""));
    }
    RpcError::new(
        StatusCode::UNAUTHORIZED,
        code::FORBIDDEN,
        error.unwrap_or("authentication required: send Authorization: Bearer <token>"),
    )
    .with_header("WWW-Authenticate", www)
}

/// 403 `insufficient_scope`: the token is valid but lacks `scope`.
pub fn insufficient_scope(cfg: &Config, headers: &HeaderMap, scope: &str, message: &str) -> RpcError {
    RpcError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, message).with_header(
        "WWW-Authenticate",
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{}\"",
            Site::of(cfg).metadata_url(host_of(headers))
        ),
    )
}

/// The bearer token of the request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(rest.trim())
        .filter(|t| !t.is_empty())
}

/// Resolves the caller: an OAuth access token of our issuer whose audience
/// is this endpoint and whose scope has `mcp` or `admin`, or an API token
/// (or `ADMIN_TOKEN`) with exactly its REST rights.
pub async fn authenticate(m: &Manager, headers: &HeaderMap) -> Result<McpCaller, RpcError> {
    let cfg = &m.config;
    let Some(token) = bearer(headers) else {
        return Err(unauthorized(cfg, headers, None));
    };
    let looks_like_jwt = token.split('.').count() == 3;
    if !looks_like_jwt
        || m.config
            .admin_token
            .as_deref()
            .is_some_and(|a| crate::secrets::constant_time_eq(a, token))
    {
        return match m.authenticate(Some(token)).await {
            Ok(caller) => Ok(McpCaller { caller, oauth: false }),
            Err(ManageError::Store(e)) => Err(store_down(&e)),
            Err(e) => Err(unauthorized(cfg, headers, Some(&e.to_string()))),
        };
    }
    let claims = m
        .oauth
        .verify_access(token)
        .await
        .map_err(|e| unauthorized(cfg, headers, Some(&e.description)))?;
    if !claims.aud.iter().any(|a| is_mcp_resource(cfg, a)) {
        return Err(unauthorized(cfg, headers, Some("the token's audience is not this MCP endpoint")));
    }
    let scopes: Vec<&str> = claims.scope.split_whitespace().collect();
    let admin = scopes.contains(&"admin");
    if !admin && !scopes.contains(&"mcp") {
        return Err(insufficient_scope(
            cfg,
            headers,
            SCOPES[0],
            "the token needs the mcp or admin scope",
        ));
    }
    Ok(McpCaller {
        caller: Caller {
            name: claims.preferred_username,
            hash: format!("oauth:{}", claims.sub),
            // `admin` acts as the admin does through REST; `mcp` alone
            // reads what the person owns, like an OAuth `user` token.
            scope: if admin { TokenScope::Admin } else { TokenScope::User },
            email: claims.email,
            read_only: !admin,
        },
        oauth: true,
    })
}

fn store_down(e: &str) -> RpcError {
    tracing::error!(error = %e, "store failure in /mcp authentication");
    RpcError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code::INTERNAL,
        "the store is unavailable, try again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: Site<'static> = Site {
        issuer: "https://auth.example.test",
        base_domain: "example.test",
        http_port: 8080,
    };

    #[test]
    fn only_our_hosts_pass() {
        for host in ["localhost:8080", "127.0.0.1:9000", "[::1]:9000", "AUTH.example.test", "localhost"] {
            assert!(SITE.host_allowed(host), "{host}");
        }
        for host in ["evil.example.com", "localhost.evil.test", "example.test", "", "127.0.0.2"] {
            assert!(!SITE.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn the_resource_is_the_url_the_client_used() {
        assert_eq!(SITE.resource_for("localhost:8080"), "http://localhost:8080/mcp");
        assert_eq!(SITE.resource_for("AUTH.example.test"), "https://auth.example.test/mcp");
        // another port of localhost is not the localhost proxy: the issuer's URL
        assert_eq!(SITE.resource_for("localhost:1234"), "https://auth.example.test/mcp");
        assert_eq!(
            SITE.metadata_url("localhost:8080"),
            "http://localhost:8080/.well-known/oauth-protected-resource/mcp"
        );
        let known = SITE.resources();
        assert!(known.contains(&"http://localhost:8080/mcp".to_string()));
        assert!(!known.contains(&"https://app.example.test/mcp".to_string()));
        assert!(!known.contains(&"https://auth.example.test".to_string()));
    }
}
