//! The primitives a storage backend provides, and nothing more: reads (get,
//! set members, prefix scan), one atomic apply of a write batch together with
//! its change event, expiry on any written key, and a change-event stream.
//! Every record rule (indexes, owner sets, cascades, conflict checks and
//! their messages) is written once above this, in [`super::records`] and
//! [`super::oauth`], so Redis and the embedded store cannot drift apart.

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::{ChangeEvent, StoreResult};

/// A condition that must hold when a [`Batch`] applies; otherwise nothing is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The key does not exist (a uniqueness rule): fails as [`Applied::Conflict`].
    Absent(String),
    /// The key exists: fails as [`Applied::Missing`].
    Present(String),
    /// The string key holds exactly this value (an optimistic read): fails as [`Applied::Changed`].
    Equals(String, String),
    /// The set key holds exactly these members (sorted): fails as [`Applied::Changed`].
    Members(String, Vec<String>),
}

/// How long a written string key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Until deleted (a record, an index).
    Never,
    /// This many seconds from now (at least one).
    Secs(u64),
    /// Whatever the key had before (a counter in its window).
    Keep,
}

/// One atomic write: if every check holds, deletes, then sets, then set
/// additions and removals are applied, and the event (if any) is published
/// exactly once. Readers never see part of a batch.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Conditions checked first, in order; the first that fails is reported.
    pub checks: Vec<Check>,
    /// Keys removed (strings or sets).
    pub del: Vec<String>,
    /// String keys written, with their lifetime.
    pub set: Vec<(String, String, Expiry)>,
    /// Set members added; `Some(secs)` (re)starts the whole set's expiry.
    pub sadd: Vec<(String, String, Option<u64>)>,
    /// Set members removed (an emptied set disappears).
    pub srem: Vec<(String, String)>,
    /// Published to every subscriber when the batch applied.
    pub event: Option<ChangeEvent>,
}

impl Batch {
    /// A batch that publishes `event` when it applies.
    pub fn with_event(kind: super::EventKind, id: &str, op: &str) -> Self {
        Self {
            event: Some(ChangeEvent {
                kind,
                id: id.to_string(),
                op: op.to_string(),
            }),
            ..Self::default()
        }
    }
    /// Adds a check.
    pub fn check(&mut self, c: Check) -> &mut Self {
        self.checks.push(c);
        self
    }
    /// Requires the key to still hold what was read (`None`: still absent).
    pub fn unchanged(&mut self, key: &str, seen: &Option<String>) -> &mut Self {
        self.check(match seen {
            Some(v) => Check::Equals(key.to_string(), v.clone()),
            None => Check::Absent(key.to_string()),
        })
    }
    /// Writes a string key that never expires.
    pub fn put(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.set.push((key.into(), value.into(), Expiry::Never));
        self
    }
    /// Writes a string key that expires after `secs`.
    pub fn put_ex(&mut self, key: impl Into<String>, value: impl Into<String>, secs: u64) -> &mut Self {
        self.set.push((key.into(), value.into(), Expiry::Secs(secs.max(1))));
        self
    }
    /// Removes a key.
    pub fn del(&mut self, key: impl Into<String>) -> &mut Self {
        self.del.push(key.into());
        self
    }
    /// Adds a member to a set (`ttl`: restart the set's expiry).
    pub fn sadd(&mut self, key: impl Into<String>, member: impl Into<String>, ttl: Option<u64>) -> &mut Self {
        self.sadd.push((key.into(), member.into(), ttl.map(|t| t.max(1))));
        self
    }
    /// Removes a member from a set.
    pub fn srem(&mut self, key: impl Into<String>, member: impl Into<String>) -> &mut Self {
        self.srem.push((key.into(), member.into()));
        self
    }
}

/// Outcome of [`Backend::apply`]: applied, or the first check that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Written (and the event published).
    Ok,
    /// An [`Check::Absent`] key exists.
    Conflict(String),
    /// A [`Check::Present`] key is gone.
    Missing(String),
    /// A key read earlier changed since ([`Check::Equals`], [`Check::Members`]): read again.
    Changed(String),
}

/// Which keys under a prefix a scan returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Every key starting with the prefix.
    All,
    /// Only keys whose rest after the prefix has no `:` (records, not their indexes).
    Direct,
}

/// A storage backend: Redis, or the embedded database. Expired keys read as absent.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Checks the backend answers.
    async fn ping(&self) -> StoreResult<()>;
    /// A string key's value.
    async fn get(&self, key: &str) -> StoreResult<Option<String>>;
    /// A set key's members, sorted.
    async fn members(&self, key: &str) -> StoreResult<Vec<String>>;
    /// `(key, value)` of the string keys starting with `prefix`, sorted by key.
    async fn scan(&self, prefix: &str, depth: Depth) -> StoreResult<Vec<(String, String)>>;
    /// Applies `batch` atomically (see [`Batch`]).
    async fn apply(&self, batch: &Batch) -> StoreResult<Applied>;
    /// Change events from every writer, in order, until the stream ends
    /// (the connection dropped: the caller resubscribes and reconciles).
    async fn subscribe(&self) -> StoreResult<BoxStream<'static, ChangeEvent>>;
}
