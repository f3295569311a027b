//! The OAuth 2.1 authorization server: login through GitHub or any OIDC
//! provider, authorization code + PKCE with resource indicators, refresh
//! rotation, dynamic registration and client metadata documents,
//! introspection, revocation, device flow, `/verify`, metadata and JWKS.

pub mod authorize;
pub mod clients;
pub mod consent;
pub mod device;
pub mod error;
pub mod introspect;
pub mod keys;
pub mod metadata;
pub mod model;
pub mod params;
pub mod proxy_login;
pub mod scopes;
pub mod token;
pub mod tokens;
pub mod upstream;

pub use error::{OAuthError, OAuthResult};

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::config::Config;
use crate::secrets::Sealer;
use crate::store::{OAuthStore, Store};

/// Every scope this server knows.
pub const SUPPORTED_SCOPES: [&str; 6] = ["admin", "user", "mcp", "mcp:read", "mcp:write", "mcp:admin"];

/// The built-in public client of the `portcullis` CLI (device flow).
pub const CLI_CLIENT_ID: &str = "portcullis-cli";

/// Shared state of the authorization server.
#[derive(Clone)]
pub struct OAuth {
    /// The store (ephemeral KV for sessions, codes, tokens).
    pub store: Arc<dyn Store>,
    /// Configuration.
    pub config: Arc<Config>,
    /// Seals secrets at rest.
    pub sealer: Sealer,
    /// Outbound HTTP (upstream IdP), redirects not followed.
    pub http: reqwest::Client,
    /// `OAUTH_HTTP_CA_BUNDLE`, parsed once.
    extra_root: Option<reqwest::Certificate>,
    ring: Arc<ArcSwapOption<(String, keys::KeyRing)>>,
}

/// Outbound HTTP for OAuth: no redirects followed, bounded time, the extra root if any.
fn outbound_client(timeout: std::time::Duration, extra_root: Option<&reqwest::Certificate>) -> reqwest::ClientBuilder {
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    match extra_root {
        Some(c) => b.add_root_certificate(c.clone()),
        None => b,
    }
}

impl OAuth {
    /// Builds the server state.
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>, sealer: Sealer) -> Self {
        let extra_root = config.oauth.http_ca_bundle.as_ref().and_then(|p| {
            std::fs::read(p)
                .map_err(|e| e.to_string())
                .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()))
                .map_err(|e| tracing::warn!(path = %p.display(), error = %e, "OAUTH_HTTP_CA_BUNDLE unusable"))
                .ok()
        });
        let http = outbound_client(std::time::Duration::from_secs(10), extra_root.as_ref())
            .build()
            .unwrap_or_default();
        Self {
            store,
            config,
            sealer,
            http,
            extra_root,
            ring: Arc::new(ArcSwapOption::empty()),
        }
    }

    /// An outbound client that reaches `host` only at the checked address `addr` (SSRF guard).
    pub fn pinned_client(&self, timeout: std::time::Duration, host: &str, addr: std::net::SocketAddr) -> OAuthResult<reqwest::Client> {
        outbound_client(timeout, self.extra_root.as_ref())
            .resolve(host, addr)
            .build()
            .map_err(|e| OAuthError::server(e.to_string()))
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.config.oauth.issuer
    }

    /// The current key ring (cached; reloaded when the stored ring changes).
    pub async fn keys(&self) -> OAuthResult<keys::KeyRing> {
        let raw = self.store.key_ring().await?;
        if let (Some(cached), Some(raw)) = (self.ring.load_full(), &raw) {
            if &cached.0 == raw {
                return Ok(cached.1.clone());
            }
        }
        let (raw, ring) = keys::ring_from(
            self.store.as_ref(),
            &self.sealer,
            self.config.oauth.jwt_private_key_pem.as_deref(),
            raw,
        )
        .await?;
        self.ring.store(Some(Arc::new((raw, ring.clone()))));
        Ok(ring)
    }

    /// Rotates the signing keys (admin operation).
    pub async fn rotate_keys(&self) -> OAuthResult<keys::KeyRing> {
        let keep = i64::try_from(self.config.oauth.access_token_lifetime.as_secs()).unwrap_or(1800) + 120;
        let ring = keys::rotate(
            self.store.as_ref(),
            &self.sealer,
            self.config.oauth.jwt_private_key_pem.as_deref(),
            keep,
        )
        .await?;
        self.ring.store(None);
        Ok(ring)
    }
}

/// Random URL-safe string of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// Canonical form of a resource indicator: absolute http(s) URI, no fragment,
/// lowercase scheme and host, no trailing slash. `None` when not acceptable.
pub fn canonical_resource(r: &str) -> Option<String> {
    let u = url::Url::parse(r).ok()?;
    if u.fragment().is_some() || !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
        return None;
    }
    if u.scheme() == "http" && !crate::config::is_loopback_host(u.host_str().unwrap_or("")) {
        return None;
    }
    let s = u.to_string();
    Some(s.strip_suffix('/').unwrap_or(&s).to_string())
}
