//! ForwardAuth inside the data plane: access tokens checked locally against
//! the snapshot's keys (no subrequest), per-proxy modes, allowlists, scopes,
//! audiences, and the answers (401/403 with `WWW-Authenticate`, or a
//! redirect to the login for browsers).

mod check;
pub mod metadata;

pub use check::{check, metadata_url, Outcome, RequestInfo};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use http::HeaderValue;

use jsonwebtoken::DecodingKey;

use crate::config::OAuthConfig;
use crate::oauth::tokens::AccessClaims;
use crate::secrets::Sealer;
use crate::store::{Store, StoreError};

/// Most verified tokens remembered per snapshot before the cache starts over.
const VERIFIED_CACHE_MAX: usize = 10_000;

/// Most unknown key ids remembered before that cache starts over.
const UNKNOWN_KIDS_MAX: usize = 1_000;

/// A token whose signature was checked, with the identity header values
/// (user id, user, e-mail, scopes) built once: a cached hit copies nothing.
pub struct Verified {
    /// The token's claims.
    pub claims: AccessClaims,
    /// Values for the user-id, user, e-mail and scopes headers; `None` when
    /// absent (no e-mail) or not a valid header value.
    pub header_values: [Option<HeaderValue>; 4],
}

impl Verified {
    fn new(claims: AccessClaims) -> Self {
        let value = |s: &str| HeaderValue::from_str(s).ok();
        let header_values = [
            value(&claims.sub),
            value(&claims.preferred_username),
            claims.email.as_deref().filter(|e| !e.is_empty()).and_then(value),
            value(&claims.scope),
        ];
        Verified { claims, header_values }
    }
}

/// The authenticated caller of a request.
pub type Identity = Arc<Verified>;

/// Verification material in the snapshot.
#[derive(Default)]
pub struct AuthKeys {
    /// Our issuer.
    pub issuer: String,
    /// Public keys by kid (previous, current, next).
    pub keys: HashMap<String, DecodingKey>,
    /// Revoked, unexpired token ids.
    pub revoked: HashSet<String, foldhash::fast::RandomState>,
    /// Global login allowlist (`OAUTH_ALLOWED_GITHUB_USERS`).
    pub allowed_users: Option<Vec<String>>,
    /// Tokens whose signature this snapshot already checked. It dies with the
    /// snapshot, so a key rotation or revocation (both rebuild it) empties it;
    /// expiry and revocation are still checked on every hit.
    verified: std::sync::Mutex<crate::snapshot::FastMap<String, (String, Identity)>>,
    /// Key ids that were unknown, and since when: for a key refresh interval
    /// a token naming one is refused at once, without asking for a refresh.
    unknown_kids: std::sync::Mutex<crate::snapshot::FastMap<String, std::time::Instant>>,
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
    pub fn cached(&self, token: &str) -> Option<Identity> {
        let m = self.verified.lock().ok()?;
        let (full, claims) = m.get(cache_key(token))?;
        (full == token).then(|| claims.clone())
    }

    /// Remembers a verified token and returns it ready for the request path.
    pub fn remember(&self, token: &str, claims: AccessClaims) -> Identity {
        let verified = Arc::new(Verified::new(claims));
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= VERIFIED_CACHE_MAX {
                m.clear();
            }
            m.insert(cache_key(token).to_string(), (token.to_string(), verified.clone()));
        }
        verified
    }
}

impl AuthKeys {
    /// A token names `kid`, which this snapshot lacks: `None` the first time
    /// (ask for a key refresh), then the refusal reason for a refresh
    /// interval (answered 401 at once).
    pub fn unknown_kid(&self, kid: &str) -> Option<String> {
        let mut m = self.unknown_kids.lock().ok()?;
        let now = std::time::Instant::now();
        if m.get(kid)
            .is_some_and(|since| now.duration_since(*since) < crate::snapshot::sync::KEY_REFRESH_INTERVAL)
        {
            return Some("token signed with an unknown key".into());
        }
        if m.len() >= UNKNOWN_KIDS_MAX {
            m.clear();
        }
        m.insert(kid.to_string(), now);
        None
    }

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
            verified: std::sync::Mutex::default(),
            unknown_kids: std::sync::Mutex::default(),
        })
    }
}
