//! The store: everything Portcullis persists, with change events, in two
//! layers. A [`Backend`] (Redis for production and several instances, the
//! embedded redb database for one) offers a few primitives: get, scan, one
//! atomic apply of a write batch with its event, expiry, subscribe. The
//! record rules sit above it once, for both: [`Store`] (proxies, routes,
//! tokens, certificates, small values) and [`OAuthStore`] (the OAuth
//! server's state, every multi-key write one batch). Every key is built in
//! [`keys`].

pub mod backend;
mod embedded;
pub mod keys;
mod oauth;
mod records;
mod redis_store;

pub use backend::Backend;
pub use embedded::EmbeddedStore;
pub use oauth::{OAuthStore, Parked, Redemption};
pub use records::Store;
pub use redis_store::RedisStore;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

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
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CascadeReport {
    /// Hostnames of deleted proxies.
    pub proxies: Vec<String>,
    /// Ids of deleted routes.
    pub routes: Vec<String>,
    /// Names of deleted certificates.
    pub certificates: Vec<String>,
}
