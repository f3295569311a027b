//! Built-in routes: paths the data plane sends to the control plane by its own
//! rules, not by route records. They are code, so no API call can create,
//! change or impersonate one (a stored route named `oauth-token` is an
//! ordinary route), and they apply only where they belong: the OAuth
//! endpoints on `auth.{BASE_DOMAIN}` and on proxies that set
//! `oauth_endpoints`, so an application's own `/token`, `/register` or
//! `/callback` reaches its backend everywhere else.

use crate::model::Proxy;

/// Login endpoints of proxies in redirect mode, served by the control plane on every host.
pub const LOGIN_PREFIX: &str = "/_portcullis/";

/// The OAuth protocol endpoints of the control plane: `/authorize` (and
/// `/consent`, where its consent form posts), `/token`, `/callback`, `/verify`, `/revoke`, `/introspect`, `/register`
/// and `/register/{client_id}`, `/jwks`, `/device`, `/device/code`,
/// `/device/token`, and the authorization server metadata documents
/// (`/.well-known/oauth-authorization-server[/...]`,
/// `/.well-known/openid-configuration[/...]`). `path` is normalized.
pub fn is_oauth_endpoint(path: &str) -> bool {
    match path {
        "/authorize" | "/consent" | "/token" | "/callback" | "/verify" | "/revoke" | "/introspect" | "/register" | "/jwks" | "/device"
        | "/device/code" | "/device/token" => true,
        _ => {
            path.strip_prefix("/register/")
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
                || ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
                    .iter()
                    .any(|base| path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
        }
    }
}

/// True for the authorization server's own host, `auth.{BASE_DOMAIN}`.
pub fn is_auth_host(p: &Proxy, base_domain: &str) -> bool {
    p.hostname.strip_prefix("auth.") == Some(base_domain)
}

/// Paths `auth.{BASE_DOMAIN}` forwards: the OAuth endpoints, metadata, the
/// login and `/mcp`; the rest of the control plane (admin API, `/health`,
/// `/metrics`) is not reachable through it.
pub fn auth_host_serves(path: &str) -> bool {
    is_oauth_endpoint(path)
        || path.starts_with(LOGIN_PREFIX)
        || path.starts_with("/.well-known/oauth-protected-resource")
        || path == "/mcp"
        || path.starts_with("/mcp/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_endpoints_are_exact_paths() {
        for p in [
            "/authorize",
            "/token",
            "/register",
            "/register/abc",
            "/device/code",
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-authorization-server/mcp",
            "/.well-known/openid-configuration",
        ] {
            assert!(is_oauth_endpoint(p), "{p}");
        }
        for p in [
            "/tokens",
            "/token/",
            "/register/a/b",
            "/register/",
            "/authorizex",
            "/.well-known/oauth-authorization-serverx",
            "/.well-known/oauth-protected-resource",
            "/api/token",
        ] {
            assert!(!is_oauth_endpoint(p), "{p}");
        }
    }

    #[test]
    fn the_auth_host_serves_only_its_paths() {
        for p in [
            "/token",
            "/_portcullis/login",
            "/.well-known/oauth-protected-resource/mcp",
            "/mcp",
            "/mcp/x",
        ] {
            assert!(auth_host_serves(p), "{p}");
        }
        for p in ["/metrics", "/health", "/api/v1/tokens/", "/mcpx", "/"] {
            assert!(!auth_host_serves(p), "{p}");
        }
    }
}
