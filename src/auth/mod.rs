//! ForwardAuth inside the data plane: access tokens checked locally against
//! the snapshot's keys (no subrequest), per-proxy modes, allowlists, scopes,
//! audiences, and the answers (401/403 with `WWW-Authenticate`, or a
//! redirect to the login for browsers).

mod check;
pub mod metadata;

pub use check::{check, metadata_url, Identity, Outcome, RequestInfo};

use std::collections::{HashMap, HashSet};

use jsonwebtoken::DecodingKey;

use crate::config::OAuthConfig;
use crate::oauth::tokens::AccessClaims;
use crate::secrets::Sealer;
use crate::store::{Store, StoreError};

/// Most verified tokens remembered per snapshot before the cache starts over.
const VERIFIED_CACHE_MAX: usize = 10_000;

/// Verification material in the snapshot.
#[derive(Default)]
pub struct AuthKeys {
    /// Our issuer.
    pub issuer: String,
    /// Public keys by kid (previous, current, next).
    pub keys: HashMap<String, DecodingKey>,
    /// Revoked, unexpired token ids.
    pub revoked: HashSet<String>,
    /// Global login allowlist (`OAUTH_ALLOWED_GITHUB_USERS`).
    pub allowed_users: Option<Vec<String>>,
    /// Tokens whose signature this snapshot already checked. It dies with the
    /// snapshot, so a key rotation or revocation (both rebuild it) empties it;
    /// expiry and revocation are still checked on every hit.
    verified: std::sync::Mutex<HashMap<String, (String, std::sync::Arc<AccessClaims>)>>,
}

/// The cache key: the token's last 43 characters (part of its signature), so
/// hashing stays cheap for long JWTs; a hit is confirmed against the whole token.
fn cache_key(token: &str) -> &str {
    let mut start = token.len().saturating_sub(43);
    while !token.is_char_boundary(start) {
        start += 1;
    }
    &token[start..]
}

impl AuthKeys {
    /// A token verified earlier under this snapshot's keys.
    pub fn cached(&self, token: &str) -> Option<std::sync::Arc<AccessClaims>> {
        let m = self.verified.lock().ok()?;
        let (full, claims) = m.get(cache_key(token))?;
        (full == token).then(|| claims.clone())
    }

    /// Remembers a verified token.
    pub fn remember(&self, token: &str, claims: std::sync::Arc<AccessClaims>) {
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= VERIFIED_CACHE_MAX {
                m.clear();
            }
            m.insert(cache_key(token).to_string(), (token.to_string(), claims));
        }
    }
}

impl AuthKeys {
    /// Loads keys and revocations from the store.
    pub async fn load(store: &dyn Store, sealer: &Sealer, oauth: &OAuthConfig) -> Result<Self, StoreError> {
        let keys = match crate::oauth::keys::ring(store, sealer, oauth.jwt_private_key_pem.as_deref()).await {
            Ok(r) => r.all.into_iter().map(|k| (k.kid, k.decoding)).collect(),
            Err(e) => {
                tracing::warn!(error = %e.description, "signing keys unavailable; tokens cannot be verified");
                HashMap::new()
            }
        };
        Ok(Self {
            issuer: oauth.issuer.clone(),
            keys,
            revoked: store.list_revocations().await?.into_iter().collect(),
            allowed_users: oauth.allowed_users.clone(),
            verified: std::sync::Mutex::new(HashMap::new()),
        })
    }
}
