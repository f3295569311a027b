//! ForwardAuth inside the data plane: access tokens checked locally against
//! the snapshot's keys (no subrequest), per-proxy modes, allowlists, scopes
//! and audiences. [`check`] only decides (a typed [`Outcome`]); the proxy
//! turns a denial into its reply, and `snapshot::build` loads the keys, so
//! this module names neither the store nor pingora's session.

mod check;
mod decision;
pub mod mcp_metrics;
pub mod mcp_policy;
pub mod metadata;
#[cfg(test)]
mod tests;

pub use check::{check, metadata_url, unknown_key, RequestInfo};
pub use decision::{Denial, Outcome, Pass};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use jsonwebtoken::DecodingKey;

use crate::model::AccessClaims;

/// Most verified tokens remembered per snapshot before the cache starts over.
const VERIFIED_CACHE_MAX: usize = 10_000;

/// Most unknown key ids remembered before that cache starts over.
const UNKNOWN_KIDS_MAX: usize = 1_000;

/// At most one signing key refresh per this interval, however many tokens
/// with unknown key ids arrive; the others are answered 401 at once. Key
/// rotation reaches the data plane by change event, so this refresh is only a
/// fallback (e.g. a lost event). Here because the unknown-kid memory below
/// uses it; the snapshot sync bounds its refreshes with it.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Maps read per request: foldhash instead of SipHash (the keys are token
/// signatures and key ids this process saw; lookups only).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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
    verified: std::sync::Mutex<FastMap<String, (String, Identity)>>,
    /// Key ids that were unknown, and since when: for a key refresh interval
    /// a token naming one is refused at once, without asking for a refresh.
    unknown_kids: std::sync::Mutex<FastMap<String, Instant>>,
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
    /// Verification material as loaded (by `snapshot::build`), with empty caches.
    pub fn new(
        issuer: String,
        keys: HashMap<String, DecodingKey>,
        revoked: HashSet<String, foldhash::fast::RandomState>,
        allowed_users: Option<Vec<String>>,
    ) -> Self {
        Self {
            issuer,
            keys,
            revoked,
            allowed_users,
            verified: std::sync::Mutex::default(),
            unknown_kids: std::sync::Mutex::default(),
        }
    }

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

    /// A token names `kid`, which this snapshot lacks: `None` the first time
    /// (ask for a key refresh), then the refusal reason for a refresh
    /// interval (answered 401 at once).
    pub fn unknown_kid(&self, kid: &str) -> Option<String> {
        let mut m = self.unknown_kids.lock().ok()?;
        let now = Instant::now();
        if m.get(kid).is_some_and(|since| now.duration_since(*since) < KEY_REFRESH_INTERVAL) {
            return Some("token signed with an unknown key".into());
        }
        if m.len() >= UNKNOWN_KIDS_MAX {
            m.clear();
        }
        m.insert(kid.to_string(), now);
        None
    }
}
