//! The store: a domain-level trait over everything Portcullis persists, with
//! change events. Redis implements it for production and multi-node; the
//! trait speaks in records, not keys, so an embedded single-node store can
//! implement it too.

mod embedded;
pub mod keys;
mod redis_store;

pub use embedded::EmbeddedStore;
pub use redis_store::RedisStore;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{Certificate, Proxy, Route, Token};

/// Failures of the store, independent of the backend.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness constraint would be broken.
    #[error("{0}")]
    Conflict(String),
    /// The backend cannot be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record cannot be decoded.
    #[error("corrupt record {0}")]
    Corrupt(String),
}

/// Opens the configured store: connects to Redis (failing fast when it does
/// not answer; callers retry), or opens the embedded store's file.
pub async fn open(cfg: &crate::config::Config) -> StoreResult<Arc<dyn Store>> {
    match &cfg.store {
        crate::config::StoreBackend::Redis => Ok(Arc::new(RedisStore::connect(&cfg.redis_url).await?)),
        crate::config::StoreBackend::Embedded(path) => Ok(EmbeddedStore::open(path)?),
    }
}

/// Another route already has `r`'s path and priority: both stores' message.
fn route_conflict(r: &crate::model::Route) -> StoreError {
    StoreError::Conflict(format!(
        "a route for path {} at priority {} already exists",
        r.path_pattern, r.priority
    ))
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// The kind of record a change event is about.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A proxy target.
    Proxy,
    /// A route.
    Route,
    /// An API token.
    Token,
    /// A certificate.
    Cert,
    /// A named service.
    Service,
    /// An ACME HTTP-01 challenge answer.
    Challenge,
    /// A revoked access token id.
    Revocation,
    /// The OAuth signing key ring.
    Keys,
}

impl EventKind {
    /// True when records of this kind feed the data plane snapshot.
    pub fn affects_snapshot(self) -> bool {
        !matches!(self, EventKind::Token)
    }
}

/// Published once per successful write; instances rebuild their snapshot on it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeEvent {
    /// What changed.
    pub kind: EventKind,
    /// Its id (hostname, route id, name).
    pub id: String,
    /// `create`, `update` or `delete`.
    pub op: String,
}

/// What deleting a token removed with it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CascadeReport {
    /// Hostnames of deleted proxies.
    pub proxies: Vec<String>,
    /// Ids of deleted routes.
    pub routes: Vec<String>,
    /// Names of deleted certificates.
    pub certificates: Vec<String>,
}

/// Every persistent operation Portcullis needs. Each write is atomic and
/// publishes exactly one [`ChangeEvent`] when it succeeds.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the backend answers.
    async fn ping(&self) -> StoreResult<()>;

    /// One proxy by hostname.
    async fn get_proxy(&self, hostname: &str) -> StoreResult<Option<Proxy>>;
    /// Every proxy.
    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>>;
    /// Creates a proxy; `Conflict` if the hostname exists.
    async fn create_proxy(&self, proxy: &Proxy) -> StoreResult<()>;
    /// Replaces a proxy; `NotFound` if it is gone.
    async fn update_proxy(&self, proxy: &Proxy) -> StoreResult<()>;
    /// Deletes a proxy; `NotFound` if it is gone.
    async fn delete_proxy(&self, hostname: &str) -> StoreResult<()>;

    /// One route by id.
    async fn get_route(&self, id: &str) -> StoreResult<Option<Route>>;
    /// Every route.
    async fn list_routes(&self) -> StoreResult<Vec<Route>>;
    /// Creates a route; `Conflict` on a taken id or path+priority.
    async fn create_route(&self, route: &Route) -> StoreResult<()>;
    /// Replaces a route (same id), moving its indexes.
    async fn update_route(&self, route: &Route) -> StoreResult<()>;
    /// Deletes a route and its indexes.
    async fn delete_route(&self, id: &str) -> StoreResult<()>;

    /// One token by name.
    async fn get_token(&self, name: &str) -> StoreResult<Option<Token>>;
    /// One token by `sha256:` hash.
    async fn get_token_by_hash(&self, hash: &str) -> StoreResult<Option<Token>>;
    /// Every token.
    async fn list_tokens(&self) -> StoreResult<Vec<Token>>;
    /// Creates a token; `Conflict` on a taken name.
    async fn create_token(&self, token: &Token) -> StoreResult<()>;
    /// Replaces a token's record (same name and hash).
    async fn update_token(&self, token: &Token) -> StoreResult<()>;
    /// Deletes a token and everything it owns, in one atomic step.
    async fn delete_token_cascade(&self, name: &str) -> StoreResult<CascadeReport>;

    /// One certificate by name.
    async fn get_cert(&self, name: &str) -> StoreResult<Option<Certificate>>;
    /// Every certificate.
    async fn list_certs(&self) -> StoreResult<Vec<Certificate>>;
    /// Creates or replaces a certificate and its domain index.
    async fn put_cert(&self, cert: &Certificate) -> StoreResult<()>;
    /// Deletes a certificate and its domain index.
    async fn delete_cert(&self, name: &str) -> StoreResult<()>;

    /// Named service URLs (`service` route targets).
    async fn list_service_urls(&self) -> StoreResult<HashMap<String, String>>;
    /// Sets a named service URL.
    async fn put_service_url(&self, name: &str, url: &str) -> StoreResult<()>;
    /// Removes a named service URL.
    async fn delete_service_url(&self, name: &str) -> StoreResult<()>;

    /// Reads a small internal value (self-signed certificate, locks' owners).
    async fn get_value(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets a small internal value unless present; true when this call set it.
    async fn set_value_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;

    /// Stores an HTTP-01 answer for `token` (expires after `ttl_secs`); publishes an event.
    async fn put_challenge(&self, token: &str, key_authorization: &str, ttl_secs: u64) -> StoreResult<()>;
    /// Removes an HTTP-01 answer; publishes an event.
    async fn delete_challenge(&self, token: &str) -> StoreResult<()>;
    /// Every live HTTP-01 answer, by token.
    async fn list_challenges(&self) -> StoreResult<HashMap<String, String>>;

    /// Certificate generation status (operational state: no change event).
    async fn get_cert_status(&self, name: &str) -> StoreResult<Option<String>>;
    /// Sets the generation status, expiring after `ttl_secs` when given.
    async fn put_cert_status(&self, name: &str, status_json: &str, ttl_secs: Option<u64>) -> StoreResult<()>;

    /// Takes the named lock for `ttl_secs` unless someone holds it; true when taken.
    async fn acquire_lock(&self, name: &str, owner: &str, ttl_secs: u64) -> StoreResult<bool>;
    /// Releases the lock if `owner` still holds it.
    async fn release_lock(&self, name: &str, owner: &str) -> StoreResult<()>;

    /// Sets a small internal value (overwriting).
    async fn set_value(&self, key: &str, value: &str) -> StoreResult<()>;

    /// Marks an access token id revoked until `ttl_secs` (its expiry); publishes an event.
    async fn put_revocation(&self, jti: &str, ttl_secs: u64) -> StoreResult<()>;
    /// Every revoked, unexpired access token id.
    async fn list_revocations(&self) -> StoreResult<Vec<String>>;
    /// Publishes a change event without writing a record (e.g. key rotation).
    async fn publish(&self, kind: EventKind, id: &str, op: &str) -> StoreResult<()>;

    /// Ephemeral state (OAuth sessions, codes, refresh tokens): reads a value.
    async fn kv_get(&self, key: &str) -> StoreResult<Option<String>>;
    /// Ephemeral state: sets a value, expiring after `ttl_secs` when given.
    async fn kv_set(&self, key: &str, value: &str, ttl_secs: Option<u64>) -> StoreResult<()>;
    /// Ephemeral state: sets unless present; true when this call set it.
    async fn kv_set_nx(&self, key: &str, value: &str, ttl_secs: u64) -> StoreResult<bool>;
    /// Ephemeral state: reads and deletes in one step (single-use values).
    async fn kv_take(&self, key: &str) -> StoreResult<Option<String>>;
    /// Ephemeral state: deletes.
    async fn kv_del(&self, key: &str) -> StoreResult<()>;
    /// Ephemeral state: increments a counter that expires `ttl_secs` after creation.
    async fn kv_incr(&self, key: &str, ttl_secs: u64) -> StoreResult<i64>;
    /// Ephemeral state: every `(key, value)` under `prefix`.
    async fn kv_scan(&self, prefix: &str) -> StoreResult<Vec<(String, String)>>;
    /// Ephemeral state: adds to a set that expires after `ttl_secs`.
    async fn kv_sadd(&self, key: &str, member: &str, ttl_secs: u64) -> StoreResult<()>;
    /// Ephemeral state: members of a set.
    async fn kv_smembers(&self, key: &str) -> StoreResult<Vec<String>>;

    /// Change events from every instance, in order, until the stream ends
    /// (the connection dropped: the caller resubscribes and reconciles).
    async fn subscribe(&self) -> StoreResult<BoxStream<'static, ChangeEvent>>;
}
