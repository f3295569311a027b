//! [`Backend`] without Redis, for a single node: the same keys and values as
//! the Redis store, in one redb database file (`STORE_PATH`). A batch is one
//! redb write transaction (checks and writes together, so atomic without
//! retries across processes), committed durably and then announced on an
//! in-process channel. Transactions run on tokio's blocking pool, never on
//! the async workers. Expired keys read as absent and are swept out in later
//! write transactions. `STORE=embedded` selects it; `just run` uses it when
//! no Redis answers.
//!
//! Why redb: pure Rust (no C toolchain or second allocator), one file, ACID
//! copy-on-write B-trees with ordered range scans (prefix scans are the
//! store's list operation), readers that never block the writer, and a
//! commit that writes only the changed pages instead of the whole state.

mod migrate;
mod tables;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use futures::stream::BoxStream;
use redb::{Database, ReadableDatabase};
use tokio::sync::broadcast;

use super::backend::{Applied, Backend, Batch, Depth};
use super::{ChangeEvent, StoreError, StoreResult};
use tables::{now_ms, Reader, Writer};

/// Events buffered per subscriber; one that falls further behind loses its
/// stream and, like a dropped Redis subscription, resubscribes and reconciles.
const EVENT_BUFFER: usize = 1024;

/// Expired keys are swept at most this often (milliseconds), inside a write.
const SWEEP_EVERY_MS: u64 = 1000;

/// Single-node store; every handle opened for a path shares one instance.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    events: broadcast::Sender<ChangeEvent>,
    /// Held from commit to announcement, so events leave in commit order.
    writer: Mutex<()>,
    /// When expired keys were last swept (Unix milliseconds).
    last_sweep: AtomicU64,
    /// Held for the process's lifetime: a second process on the same file is refused.
    _lock: File,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {}", e.into()))
}

/// The instances opened so far, by path: the proxy's services each open the
/// store, and they must share one database and one event channel.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<EmbeddedStore>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<EmbeddedStore>>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Creates `path` owner-only if absent (records hold sealed secrets and token hashes).
fn owner_only(path: &Path) -> StoreResult<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| io_err(path, e))
}

/// Opens (creating if needed) the redb database at `path` with its tables.
fn open_db(path: &Path) -> StoreResult<Database> {
    owner_only(path)?;
    let db = Database::create(path).map_err(|e| match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(m)) => StoreError::Corrupt(format!("{}: {m}", path.display())),
        other => io_err(path, other),
    })?;
    let tx = db.begin_write().map_err(db_err)?;
    Writer::open(&tx, 0).map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    Ok(db)
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`; the same instance for the same path.
    pub fn open(path: &Path) -> StoreResult<Arc<Self>> {
        let mut open = registry()
            .lock()
            .map_err(|_| StoreError::Unavailable("store registry poisoned".into()))?;
        if let Some(s) = open.get(path) {
            return Ok(s.clone());
        }
        let store = Arc::new(Self::load(path)?);
        open.insert(path.to_path_buf(), store.clone());
        Ok(store)
    }

    /// Opens the file at `path`, first migrating a state file of the JSON
    /// store that preceded this one (at `path` itself, or beside it with a
    /// `.json` extension) into it.
    fn load(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let lock_path = path.with_extension("lock");
        let lock = File::create(&lock_path).map_err(|e| io_err(&lock_path, e))?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(format!(
                "{} is in use by another portcullis process (the embedded store is single-node; use Redis for several instances)",
                path.display()
            ))
        })?;
        if let Some(source) = migrate::legacy_source(path) {
            migrate::from_json(&source, path)?;
        }
        let db = open_db(path)?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                events,
                writer: Mutex::new(()),
                last_sweep: AtomicU64::new(0),
                _lock: lock,
            }),
        })
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Unavailable(format!("embedded store task: {e}")))?
    }

    /// Runs `f` in a read transaction on the blocking pool.
    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Reader) -> Result<T, redb::Error> + Send + 'static) -> StoreResult<T> {
        self.blocking(move |inner| {
            let tx = inner.db.begin_read().map_err(db_err)?;
            let r = Reader::open(&tx, now_ms()).map_err(db_err)?;
            f(&r).map_err(db_err)
        })
        .await
    }
}

impl Inner {
    /// One batch in one write transaction: checks, writes, a sweep of expired
    /// keys when one is due, commit, then the event.
    fn apply(&self, batch: &Batch) -> StoreResult<Applied> {
        let _order = self
            .writer
            .lock()
            .map_err(|_| StoreError::Unavailable("store writer poisoned".into()))?;
        let now = now_ms();
        let tx = self.db.begin_write().map_err(db_err)?;
        let outcome = {
            let mut w = Writer::open(&tx, now).map_err(db_err)?;
            let outcome = w.apply(batch).map_err(db_err)?;
            if outcome == Applied::Ok && now.saturating_sub(self.last_sweep.load(Ordering::Relaxed)) >= SWEEP_EVERY_MS {
                w.sweep().map_err(db_err)?;
                self.last_sweep.store(now, Ordering::Relaxed);
            }
            outcome
        };
        if outcome != Applied::Ok {
            tx.abort().map_err(db_err)?;
            return Ok(outcome);
        }
        tx.commit().map_err(db_err)?;
        if let Some(ev) = &batch.event {
            // Nobody listening is fine.
            let _ = self.events.send(ev.clone());
        }
        Ok(outcome)
    }
}

#[async_trait]
impl Backend for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|_| Ok(())).await
    }

    async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.read(move |r| r.string(&key)).await
    }

    async fn members(&self, key: &str) -> StoreResult<Vec<String>> {
        let key = key.to_string();
        self.read(move |r| r.members(&key)).await
    }

    async fn scan(&self, prefix: &str, depth: Depth) -> StoreResult<Vec<(String, String)>> {
        let prefix = prefix.to_string();
        self.read(move |r| r.scan(&prefix, depth)).await
    }

    async fn apply(&self, batch: &Batch) -> StoreResult<Applied> {
        let batch = batch.clone();
        self.blocking(move |inner| inner.apply(&batch)).await
    }

    async fn subscribe(&self) -> StoreResult<BoxStream<'static, ChangeEvent>> {
        let rx = self.inner.events.subscribe();
        // A lagging subscriber's stream ends: the caller resubscribes and reconciles.
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.ok().map(|ev| (ev, rx)) });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use serde_json::json;

    #[tokio::test]
    async fn the_file_is_owner_only_locked_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let s = EmbeddedStore::load(&path).unwrap();
        s.put_service_url("svc", "http://127.0.0.1:2").await.unwrap();
        assert!(matches!(EmbeddedStore::load(&path), Err(StoreError::Unavailable(m)) if m.contains("in use")));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        drop(s);
        let s = EmbeddedStore::load(&path).unwrap();
        assert_eq!(
            s.list_service_urls().await.unwrap().get("svc").map(String::as_str),
            Some("http://127.0.0.1:2")
        );
    }

    #[tokio::test]
    async fn a_damaged_state_file_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("s.json");
        std::fs::write(&json_path, b"{not json").unwrap();
        assert!(matches!(EmbeddedStore::load(&json_path), Err(StoreError::Corrupt(_))));
        let redb_path = dir.path().join("t.redb");
        std::fs::write(&redb_path, b"this is no database, just bytes that are long enough").unwrap();
        assert!(EmbeddedStore::load(&redb_path).is_err(), "neither JSON nor redb");
    }

    /// A state file as the JSON store wrote it (format 1): records, an owner
    /// set, an index, an expired and a live ephemeral key.
    fn json_state(now: u64) -> serde_json::Value {
        let proxy = json!({"hostname": "a.test", "target_url": "http://127.0.0.1:1", "owner_token_hash": "h1"});
        json!({"format": 1, "entries": {
            "proxy:a.test": {"value": {"str": proxy.to_string()}},
            "owner:h1": {"value": {"set": ["proxy:a.test"]}},
            "token:hash:h1": {"value": {"str": "t"}},
            "oauth:code:gone": {"value": {"str": "x"}, "expires_ms": now - 1000},
            "oauth:code:live": {"value": {"str": "y"}, "expires_ms": now + 600_000},
        }})
    }

    #[tokio::test]
    async fn a_json_state_file_is_migrated_once_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, json_state(now_ms()).to_string()).unwrap();
        let s = EmbeddedStore::load(&path).unwrap();
        assert_eq!(s.get_proxy("a.test").await.unwrap().unwrap().owner_token_hash, "h1");
        assert_eq!(s.members("owner:h1").await.unwrap(), ["proxy:a.test"]);
        assert_eq!(s.get("token:hash:h1").await.unwrap().as_deref(), Some("t"));
        assert_eq!(s.get("oauth:code:gone").await.unwrap(), None, "expired keys are not carried over");
        assert_eq!(s.get("oauth:code:live").await.unwrap().as_deref(), Some("y"));
        let backup = std::fs::read_to_string(dir.path().join("state.json.migrated")).unwrap();
        assert!(backup.contains("proxy:a.test"), "the JSON file is kept beside it");
        s.delete_proxy("a.test").await.unwrap();
        drop(s);
        let s = EmbeddedStore::load(&path).unwrap();
        assert!(s.get_proxy("a.test").await.unwrap().is_none(), "migrated once, not again");
    }

    #[tokio::test]
    async fn the_json_file_beside_a_new_database_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("store.json"), json_state(now_ms()).to_string()).unwrap();
        let s = EmbeddedStore::load(&dir.path().join("store.redb")).unwrap();
        assert!(s.get_proxy("a.test").await.unwrap().is_some());
        assert!(!dir.path().join("store.json").exists());
        assert!(dir.path().join("store.json.migrated").exists());
    }
}
