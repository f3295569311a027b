//! [`Store`] without Redis, for a single node: the same keys and records as
//! the Redis store, held in memory under one lock (so every write is atomic
//! without retries), written through to one JSON file, with change events on
//! an in-process channel. `STORE=embedded` selects it; `just run` uses it
//! when no Redis answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::keys;
use super::{route_conflict, CascadeReport, ChangeEvent, EventKind, Store, StoreError, StoreResult};
use crate::model::{Certificate, Proxy, Route, Token};

/// Events buffered per subscriber; one that falls further behind loses its
/// stream and, like a dropped Redis subscription, resubscribes and reconciles.
const EVENT_BUFFER: usize = 1024;

/// On-disk format version.
const FORMAT: u32 = 1;

/// A stored value: a string or a set, as in Redis.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Value {
    Str(String),
    Set(BTreeSet<String>),
}

/// One key: its value and when it expires (Unix milliseconds).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_ms: Option<u64>,
}

impl Entry {
    /// Not expired at `now` (Unix milliseconds).
    fn live_at(&self, now: u64) -> bool {
        self.expires_ms.is_none_or(|t| t > now)
    }
}

/// The file's contents: written from a borrowed map, read into an owned one.
#[derive(Serialize, Deserialize)]
struct Snapshot<E> {
    format: u32,
    entries: E,
}

/// Single-node store; every handle opened for a path shares one instance.
pub struct EmbeddedStore {
    path: PathBuf,
    state: Mutex<BTreeMap<String, Entry>>,
    events: broadcast::Sender<ChangeEvent>,
    /// Held for the process's lifetime: a second process on the same file is refused.
    _lock: File,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

fn decode<T: DeserializeOwned>(key: &str, raw: &str) -> StoreResult<T> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
}

fn encode<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn ttl_ms(ttl_secs: u64) -> Option<u64> {
    Some(now_ms().saturating_add(ttl_secs.max(1).saturating_mul(1000)))
}

/// The state under the lock, with Redis-like operations on it.
struct Keys<'a> {
    map: MutexGuard<'a, BTreeMap<String, Entry>>,
    now: u64,
}

impl Keys<'_> {
    fn live(&self, key: &str) -> Option<&Entry> {
        self.map.get(key).filter(|e| e.live_at(self.now))
    }
    fn get(&self, key: &str) -> Option<String> {
        match self.live(key)?.value {
            Value::Str(ref s) => Some(s.clone()),
            Value::Set(_) => None,
        }
    }
    fn exists(&self, key: &str) -> bool {
        self.live(key).is_some()
    }
    fn json<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        self.get(key).map(|raw| decode(key, &raw)).transpose()
    }
    fn set(&mut self, key: String, value: String, expires_ms: Option<u64>) {
        self.map.insert(
            key,
            Entry {
                value: Value::Str(value),
                expires_ms,
            },
        );
    }
    fn del(&mut self, key: &str) -> Option<String> {
        let live = self.get(key);
        self.map.remove(key);
        live
    }
    fn members(&self, key: &str) -> Vec<String> {
        match self.live(key).map(|e| &e.value) {
            Some(Value::Set(s)) => s.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }
    /// Adds to a live set, or starts a new one (replacing an expired key or a string).
    fn sadd(&mut self, key: String, member: String) {
        if let Some(Entry { value: Value::Set(s), .. }) = self.map.get_mut(&key).filter(|e| e.live_at(self.now)) {
            s.insert(member);
            return;
        }
        let value = Value::Set(BTreeSet::from([member]));
        self.map.insert(key, Entry { value, expires_ms: None });
    }
    fn srem(&mut self, key: &str, member: &str) {
        if let Some(Entry { value: Value::Set(s), .. }) = self.map.get_mut(key) {
            s.remove(member);
            if s.is_empty() {
                self.map.remove(key);
            }
        }
    }
    /// `(key, value)` of every live string key starting with `prefix`, in key order.
    fn scan(&self, prefix: &str) -> Vec<(String, String)> {
        self.map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.live_at(self.now))
            .filter_map(|(k, e)| match &e.value {
                Value::Str(s) => Some((k.clone(), s.clone())),
                Value::Set(_) => None,
            })
            .collect()
    }
    /// Records of a family: keys `{prefix}:{id}` whose id has no ':'.
    fn family<T: DeserializeOwned>(&self, prefix: &str) -> StoreResult<Vec<T>> {
        let start = format!("{prefix}:");
        self.scan(&start)
            .iter()
            .filter(|(k, _)| !k[start.len()..].contains(':'))
            .map(|(k, v)| decode(k, v))
            .collect()
    }
    /// Sets the route's unique (path, priority) and priority index keys.
    fn index_route(&mut self, r: &Route) {
        for u in keys::route_unique_keys(r) {
            self.set(u, r.route_id.clone(), None);
        }
        self.set(keys::route_priority(r.priority, &r.route_id), r.route_id.clone(), None);
    }
    /// Removes the route's index keys.
    fn unindex_route(&mut self, r: &Route) {
        for u in keys::route_unique_keys(r) {
            self.del(&u);
        }
        if let Some(legacy) = keys::route_unique_legacy(r) {
            if self.get(&legacy).as_deref() == Some(r.route_id.as_str()) {
                self.del(&legacy);
            }
        }
        self.del(&keys::route_priority(r.priority, &r.route_id));
    }
    /// Removes the domain index entries of `name` that still point at it.
    fn cert_domain_cleanup(&mut self, name: &str, domains: &[String], keep: &[String]) {
        for d in domains.iter().filter(|d| !keep.contains(d)) {
            let k = keys::cert_domain(d);
            if self.get(&k).as_deref() == Some(name) {
                self.map.remove(&k);
            }
        }
    }
}

/// The instances opened so far, by path: the proxy's services each open the
/// store, and they must share one state and one event channel.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<EmbeddedStore>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<EmbeddedStore>>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashMap::new()))
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
        let entries = match std::fs::read(path) {
            Ok(bytes) => {
                let snap: Snapshot<BTreeMap<String, Entry>> =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
                if snap.format != FORMAT {
                    return Err(StoreError::Corrupt(format!("{}: unknown format {}", path.display(), snap.format)));
                }
                snap.entries
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io_err(path, e)),
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Self {
            path: path.to_path_buf(),
            state: Mutex::new(entries),
            events,
            _lock: lock,
        })
    }

    fn keys(&self) -> StoreResult<Keys<'_>> {
        let map = self
            .state
            .lock()
            .map_err(|_| StoreError::Unavailable("store state poisoned".into()))?;
        Ok(Keys { map, now: now_ms() })
    }

    /// Writes the state to the file (temp file, fsync, rename: never half-written),
    /// dropping expired keys first.
    fn persist(&self, k: &mut Keys<'_>) -> StoreResult<()> {
        let now = k.now;
        k.map.retain(|_, e| e.live_at(now));
        let snap = Snapshot {
            format: FORMAT,
            entries: &*k.map,
        };
        let bytes = serde_json::to_vec(&snap).map_err(|e| io_err(&self.path, e))?;
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            // Owner-only: records hold sealed secrets and token hashes.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| io_err(&self.path, e))
    }

    /// Sends one change event to the subscribers (none listening is fine).
    fn emit(&self, kind: EventKind, id: &str, op: &str) {
        let _ = self.events.send(ChangeEvent {
            kind,
            id: id.to_string(),
            op: op.to_string(),
        });
    }

    /// Runs one write under the lock, persists it and publishes `event` (if any).
    /// If `f` fails part-way or the file cannot be written, the state before the
    /// write is restored, so memory never holds a half-done write or one the file lacks.
    fn write<T>(&self, f: impl FnOnce(&mut Keys<'_>) -> StoreResult<T>, event: Option<(EventKind, &str, &str)>) -> StoreResult<T> {
        self.transact(|k| Ok((f(k)?, event)))
    }

    /// [`write`](Self::write) for a write whose event is known only under the
    /// lock (whether a put creates or updates): `f` returns it with its result.
    fn transact<'e, T>(&self, f: impl FnOnce(&mut Keys<'_>) -> StoreResult<(T, Option<(EventKind, &'e str, &'e str)>)>) -> StoreResult<T> {
        let mut k = self.keys()?;
        let before = k.map.clone();
        let done = f(&mut k).and_then(|(out, event)| {
            self.persist(&mut k)?;
            if let Some((kind, id, op)) = event {
                self.emit(kind, id, op);
            }
            Ok(out)
        });
        if done.is_err() {
            *k.map = before;
        }
        done
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.keys().map(|_| ())
    }

    async fn get_proxy(&self, hostname: &str) -> StoreResult<Option<Proxy>> {
        self.keys()?.json(&keys::proxy(hostname))
    }

    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>> {
        self.keys()?.family("proxy")
    }

    async fn create_proxy(&self, proxy: &Proxy) -> StoreResult<()> {
        let key = keys::proxy(&proxy.hostname);
        self.write(
            |k| {
                if k.exists(&key) {
                    return Err(StoreError::Conflict(format!("proxy {} already exists", proxy.hostname)));
                }
                k.set(key.clone(), encode(proxy), None);
                k.sadd(keys::owner(&proxy.owner_token_hash), key.clone());
                Ok(())
            },
            Some((EventKind::Proxy, &proxy.hostname, "create")),
        )
    }

    async fn update_proxy(&self, proxy: &Proxy) -> StoreResult<()> {
        let what = format!("proxy {}", proxy.hostname);
        self.replace(
            &keys::proxy(&proxy.hostname),
            encode(proxy),
            what,
            EventKind::Proxy,
            &proxy.hostname,
        )
    }

    async fn delete_proxy(&self, hostname: &str) -> StoreResult<()> {
        let key = keys::proxy(hostname);
        self.write(
            |k| {
                let p: Proxy = k.json(&key)?.ok_or_else(|| StoreError::NotFound(format!("proxy {hostname}")))?;
                k.del(&key);
                k.srem(&keys::owner(&p.owner_token_hash), &key);
                Ok(())
            },
            Some((EventKind::Proxy, hostname, "delete")),
        )
    }

    async fn get_route(&self, id: &str) -> StoreResult<Option<Route>> {
        self.keys()?.json(&keys::route(id))
    }

    async fn list_routes(&self) -> StoreResult<Vec<Route>> {
        self.keys()?.family("route")
    }

    async fn create_route(&self, route: &Route) -> StoreResult<()> {
        let key = keys::route(&route.route_id);
        let unique = keys::route_unique_keys(route);
        self.write(
            |k| {
                if k.exists(&key) {
                    return Err(StoreError::Conflict(format!("route id {} already exists", route.route_id)));
                }
                if unique.iter().any(|u| k.exists(u)) {
                    return Err(route_conflict(route));
                }
                k.set(key.clone(), encode(route), None);
                k.index_route(route);
                k.sadd(keys::owner(&route.owner_token_hash), key.clone());
                Ok(())
            },
            Some((EventKind::Route, &route.route_id, "create")),
        )
    }

    async fn update_route(&self, route: &Route) -> StoreResult<()> {
        let key = keys::route(&route.route_id);
        self.write(
            |k| {
                let old: Route = k
                    .json(&key)?
                    .ok_or_else(|| StoreError::NotFound(format!("route {}", route.route_id)))?;
                let old_u = keys::route_unique_keys(&old);
                if keys::route_unique_keys(route).iter().any(|u| !old_u.contains(u) && k.exists(u)) {
                    return Err(route_conflict(route));
                }
                k.unindex_route(&old);
                k.set(key.clone(), encode(route), None);
                k.index_route(route);
                Ok(())
            },
            Some((EventKind::Route, &route.route_id, "update")),
        )
    }

    async fn delete_route(&self, id: &str) -> StoreResult<()> {
        let key = keys::route(id);
        self.write(
            |k| {
                let r: Route = k.json(&key)?.ok_or_else(|| StoreError::NotFound(format!("route {id}")))?;
                k.del(&key);
                k.unindex_route(&r);
                k.srem(&keys::owner(&r.owner_token_hash), &key);
                Ok(())
            },
            Some((EventKind::Route, id, "delete")),
        )
    }

    async fn get_token(&self, name: &str) -> StoreResult<Option<Token>> {
        self.keys()?.json(&keys::token(name))
    }

    async fn get_token_by_hash(&self, hash: &str) -> StoreResult<Option<Token>> {
        let k = self.keys()?;
        let Some(name) = k.get(&keys::token_hash(hash)) else {
            return Ok(None);
        };
        Ok(k.json::<Token>(&keys::token(&name))?.filter(|t| t.hash == hash))
    }

    async fn list_tokens(&self) -> StoreResult<Vec<Token>> {
        self.keys()?.family("token")
    }

    async fn create_token(&self, token: &Token) -> StoreResult<()> {
        let key = keys::token(&token.name);
        let by_hash = keys::token_hash(&token.hash);
        self.write(
            |k| {
                if k.exists(&key) || k.exists(&by_hash) {
                    return Err(StoreError::Conflict(format!("token {} already exists", token.name)));
                }
                k.set(key.clone(), encode(token), None);
                k.set(by_hash.clone(), token.name.clone(), None);
                Ok(())
            },
            Some((EventKind::Token, &token.name, "create")),
        )
    }

    async fn update_token(&self, token: &Token) -> StoreResult<()> {
        let what = format!("token {}", token.name);
        self.replace(&keys::token(&token.name), encode(token), what, EventKind::Token, &token.name)
    }

    async fn delete_token_cascade(&self, name: &str) -> StoreResult<CascadeReport> {
        let key = keys::token(name);
        self.write(
            |k| {
                let token: Token = k.json(&key)?.ok_or_else(|| StoreError::NotFound(format!("token {name}")))?;
                let owner = keys::owner(&token.hash);
                let mut report = CascadeReport::default();
                for member in k.members(&owner) {
                    let Some(raw) = k.del(&member) else { continue };
                    if let Some(h) = member.strip_prefix("proxy:") {
                        report.proxies.push(h.to_string());
                    } else if let Some(id) = member.strip_prefix("route:") {
                        let r: Route = decode(&member, &raw)?;
                        k.unindex_route(&r);
                        report.routes.push(id.to_string());
                    } else if let Some(cert) = member.strip_prefix("cert:") {
                        let c: Certificate = decode(&member, &raw)?;
                        k.cert_domain_cleanup(cert, &c.domains, &[]);
                        report.certificates.push(cert.to_string());
                    }
                }
                k.del(&key);
                k.del(&keys::token_hash(&token.hash));
                k.map.remove(&owner);
                Ok(report)
            },
            Some((EventKind::Token, name, "delete")),
        )
    }

    async fn get_cert(&self, name: &str) -> StoreResult<Option<Certificate>> {
        self.keys()?.json(&keys::cert(name))
    }

    async fn list_certs(&self) -> StoreResult<Vec<Certificate>> {
        self.keys()?.family("cert")
    }

    async fn put_cert(&self, cert: &Certificate) -> StoreResult<()> {
        let key = keys::cert(&cert.cert_name);
        self.transact(|k| {
            let op = match k.json::<Certificate>(&key)? {
                Some(old) => {
                    k.cert_domain_cleanup(&cert.cert_name, &old.domains, &cert.domains);
                    if old.owner_token_hash != cert.owner_token_hash {
                        k.srem(&keys::owner(&old.owner_token_hash), &key);
                    }
                    "update"
                }
                None => "create",
            };
            k.set(key.clone(), encode(cert), None);
            for d in &cert.domains {
                k.set(keys::cert_domain(d), cert.cert_name.clone(), None);
            }
            k.sadd(keys::owner(&cert.owner_token_hash), key.clone());
            Ok(((), Some((EventKind::Cert, cert.cert_name.as_str(), op))))
        })
    }

    async fn delete_cert(&self, name: &str) -> StoreResult<()> {
        let key = keys::cert(name);
        self.write(
            |k| {
                let c: Certificate = k.json(&key)?.ok_or_else(|| StoreError::NotFound(format!("certificate {name}")))?;
                k.del(&key);
                k.cert_domain_cleanup(name, &c.domains, &[]);
                k.srem(&keys::owner(&c.owner_token_hash), &key);
                Ok(())
            },
            Some((EventKind::Cert, name, "delete")),
        )
    }

    async fn list_service_urls(&self) -> StoreResult<HashMap<String, String>> {
        Ok(self.ids(&keys::service_url(""))?.into_iter().collect())
    }

    async fn put_service_url(&self, name: &str, url: &str) -> StoreResult<()> {
        self.put(
            keys::service_url(name),
            url.to_string(),
            None,
            Some((EventKind::Service, name, "update")),
        )
    }

    async fn delete_service_url(&self, name: &str) -> StoreResult<()> {
        self.write(
            |k| {
                k.del(&keys::service_url(name))
                    .map(|_| ())
                    .ok_or_else(|| StoreError::NotFound(format!("service {name}")))
            },
            Some((EventKind::Service, name, "delete")),
        )
    }

    async fn get_value(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.keys()?.get(&keys::internal(key)))
    }

    async fn set_value_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        self.kv_set_nx_inner(&keys::internal(key), value, None)
    }

    async fn put_challenge(&self, token: &str, key_authorization: &str, ttl_secs: u64) -> StoreResult<()> {
        let event = Some((EventKind::Challenge, token, "create"));
        self.put(keys::acme_challenge(token), key_authorization.to_string(), ttl_ms(ttl_secs), event)
    }

    async fn delete_challenge(&self, token: &str) -> StoreResult<()> {
        self.write(
            |k| {
                k.del(&keys::acme_challenge(token));
                Ok(())
            },
            Some((EventKind::Challenge, token, "delete")),
        )
    }

    async fn list_challenges(&self) -> StoreResult<HashMap<String, String>> {
        Ok(self.ids(&keys::acme_challenge(""))?.into_iter().collect())
    }

    async fn get_cert_status(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self.keys()?.get(&keys::cert_status(name)))
    }

    async fn put_cert_status(&self, name: &str, status_json: &str, ttl_secs: Option<u64>) -> StoreResult<()> {
        self.kv_set(&keys::cert_status(name), status_json, ttl_secs).await
    }

    async fn acquire_lock(&self, name: &str, owner: &str, ttl_secs: u64) -> StoreResult<bool> {
        self.kv_set_nx_inner(&keys::lock(name), owner, ttl_ms(ttl_secs))
    }

    async fn release_lock(&self, name: &str, owner: &str) -> StoreResult<()> {
        let key = keys::lock(name);
        self.write(
            |k| {
                if k.get(&key).as_deref() == Some(owner) {
                    k.del(&key);
                }
                Ok(())
            },
            None,
        )
    }

    async fn set_value(&self, key: &str, value: &str) -> StoreResult<()> {
        self.kv_set(&keys::internal(key), value, None).await
    }

    async fn put_revocation(&self, jti: &str, ttl_secs: u64) -> StoreResult<()> {
        self.put(
            keys::oauth_revoked(jti),
            "1".into(),
            ttl_ms(ttl_secs),
            Some((EventKind::Revocation, jti, "create")),
        )
    }

    async fn list_revocations(&self) -> StoreResult<Vec<String>> {
        Ok(self.ids(&keys::oauth_revoked(""))?.into_iter().map(|(id, _)| id).collect())
    }

    async fn publish(&self, kind: EventKind, id: &str, op: &str) -> StoreResult<()> {
        self.emit(kind, id, op);
        Ok(())
    }

    async fn kv_get(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.keys()?.get(key))
    }

    async fn kv_set(&self, key: &str, value: &str, ttl_secs: Option<u64>) -> StoreResult<()> {
        self.put(key.to_string(), value.to_string(), ttl_secs.and_then(ttl_ms), None)
    }

    async fn kv_set_nx(&self, key: &str, value: &str, ttl_secs: u64) -> StoreResult<bool> {
        self.kv_set_nx_inner(key, value, ttl_ms(ttl_secs))
    }

    async fn kv_take(&self, key: &str) -> StoreResult<Option<String>> {
        self.write(|k| Ok(k.del(key)), None)
    }

    async fn kv_del(&self, key: &str) -> StoreResult<()> {
        self.write(
            |k| {
                k.map.remove(key);
                Ok(())
            },
            None,
        )
    }

    async fn kv_incr(&self, key: &str, ttl_secs: u64) -> StoreResult<i64> {
        self.write(
            |k| {
                let (n, expires) = match k.live(key) {
                    Some(Entry {
                        value: Value::Str(s),
                        expires_ms,
                    }) => (
                        s.parse::<i64>()
                            .map_err(|_| StoreError::Corrupt(format!("{key}: not a counter")))?
                            .saturating_add(1),
                        *expires_ms,
                    ),
                    _ => (1, ttl_ms(ttl_secs)),
                };
                k.set(key.to_string(), n.to_string(), expires);
                Ok(n)
            },
            None,
        )
    }

    async fn kv_scan(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self.keys()?.scan(prefix))
    }

    async fn kv_sadd(&self, key: &str, member: &str, ttl_secs: u64) -> StoreResult<()> {
        self.write(
            |k| {
                k.sadd(key.to_string(), member.to_string());
                if let Some(e) = k.map.get_mut(key) {
                    e.expires_ms = ttl_ms(ttl_secs);
                }
                Ok(())
            },
            None,
        )
    }

    async fn kv_smembers(&self, key: &str) -> StoreResult<Vec<String>> {
        Ok(self.keys()?.members(key))
    }

    async fn subscribe(&self) -> StoreResult<BoxStream<'static, ChangeEvent>> {
        let rx = self.events.subscribe();
        // A lagging subscriber's stream ends: the caller resubscribes and reconciles.
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.ok().map(|ev| (ev, rx)) });
        Ok(Box::pin(stream))
    }
}

impl EmbeddedStore {
    /// Replaces a record that must exist (`NotFound` naming `what` otherwise).
    fn replace(&self, key: &str, json: String, what: String, kind: EventKind, id: &str) -> StoreResult<()> {
        self.write(
            |k| {
                if !k.exists(key) {
                    return Err(StoreError::NotFound(what));
                }
                k.set(key.to_string(), json, None);
                Ok(())
            },
            Some((kind, id, "update")),
        )
    }

    /// Sets one string value (expiring when `expires_ms` is given), with an optional event.
    fn put(&self, key: String, value: String, expires_ms: Option<u64>, event: Option<(EventKind, &str, &str)>) -> StoreResult<()> {
        self.write(
            |k| {
                k.set(key, value, expires_ms);
                Ok(())
            },
            event,
        )
    }

    /// `(id, value)` of every live key `{prefix}{id}`.
    fn ids(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .keys()?
            .scan(prefix)
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_string(), v))
            .collect())
    }

    fn kv_set_nx_inner(&self, key: &str, value: &str, expires_ms: Option<u64>) -> StoreResult<bool> {
        self.write(
            |k| {
                if k.exists(key) {
                    return Ok(false);
                }
                k.set(key.to_string(), value.to_string(), expires_ms);
                Ok(true)
            },
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;

    fn proxy(host: &str, owner: &str) -> Proxy {
        let mut p: Proxy = serde_json::from_value(json!({"hostname": host, "target_url": "http://127.0.0.1:1"})).unwrap();
        p.owner_token_hash = owner.into();
        p
    }

    fn route(id: &str, path: &str, priority: i64, owner: &str) -> Route {
        let mut r: Route = serde_json::from_value(json!({
            "route_id": id, "path_pattern": path, "target_type": "port", "target_value": "8080", "priority": priority
        }))
        .unwrap();
        r.owner_token_hash = owner.into();
        r
    }

    fn token(name: &str, hash: &str) -> Token {
        serde_json::from_value(json!({"name": name, "hash": hash, "token_encrypted": "sealed", "created_at": "2026-11-24T00:00:00Z"}))
            .unwrap()
    }

    #[tokio::test]
    async fn writes_check_like_redis_and_publish_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::load(&dir.path().join("s.json")).unwrap();
        let mut events = s.subscribe().await.unwrap();
        s.create_proxy(&proxy("a.test", "h1")).await.unwrap();
        assert!(matches!(s.create_proxy(&proxy("a.test", "h1")).await, Err(StoreError::Conflict(_))));
        assert!(matches!(s.update_proxy(&proxy("b.test", "h1")).await, Err(StoreError::NotFound(_))));
        s.create_route(&route("r1", "/x", 10, "h1")).await.unwrap();
        assert!(matches!(s.create_route(&route("r2", "/x", 10, "h1")).await, Err(StoreError::Conflict(m)) if m.contains("priority 10")));
        s.create_route(&route("r2", "/x", 11, "h1")).await.unwrap();
        assert!(matches!(
            s.update_route(&route("r2", "/x", 10, "h1")).await,
            Err(StoreError::Conflict(_))
        ));
        s.update_route(&route("r2", "/y", 10, "h1")).await.unwrap();
        assert_eq!(
            s.list_routes().await.unwrap().len(),
            2,
            "priority and unique index keys are not records"
        );
        let ev = events.next().await.unwrap();
        assert_eq!((ev.kind, ev.id.as_str(), ev.op.as_str()), (EventKind::Proxy, "a.test", "create"));
        let kinds: Vec<_> = [events.next().await, events.next().await, events.next().await]
            .into_iter()
            .map(|e| e.unwrap().op)
            .collect();
        assert_eq!(kinds, ["create", "create", "update"], "failed writes publish nothing");
    }

    #[tokio::test]
    async fn a_certificate_put_reports_create_then_update() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::load(&dir.path().join("s.json")).unwrap();
        let mut events = s.subscribe().await.unwrap();
        let cert: Certificate = serde_json::from_value(serde_json::json!({
            "cert_name": "c1", "domains": ["a.test"], "status": "active", "source": "upload",
            "expires_at": "", "not_before": "", "serial": "01", "issuer": "test",
            "fingerprint_sha256": "00", "fullchain_pem": "", "owner_token_hash": "h1"
        }))
        .unwrap();
        s.put_cert(&cert).await.unwrap();
        s.put_cert(&cert).await.unwrap();
        let ops = [events.next().await.unwrap().op, events.next().await.unwrap().op];
        assert_eq!(ops, ["create", "update"]);
    }

    #[tokio::test]
    async fn deleting_a_token_cascades_to_what_it_owns() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::load(&dir.path().join("s.json")).unwrap();
        s.create_token(&token("t", "h1")).await.unwrap();
        assert!(
            matches!(s.create_token(&token("u", "h1")).await, Err(StoreError::Conflict(_))),
            "hash taken"
        );
        assert_eq!(s.get_token_by_hash("h1").await.unwrap().unwrap().name, "t");
        s.create_proxy(&proxy("a.test", "h1")).await.unwrap();
        s.create_proxy(&proxy("b.test", "other")).await.unwrap();
        s.create_route(&route("r1", "/x", 10, "h1")).await.unwrap();
        let report = s.delete_token_cascade("t").await.unwrap();
        assert_eq!(report.proxies, ["a.test"]);
        assert_eq!(report.routes, ["r1"]);
        assert!(s.get_token("t").await.unwrap().is_none() && s.get_token_by_hash("h1").await.unwrap().is_none());
        assert_eq!(s.list_proxies().await.unwrap().len(), 1);
        s.create_route(&route("r3", "/x", 10, "other")).await.unwrap();
    }

    #[tokio::test]
    async fn a_write_that_fails_part_way_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::load(&dir.path().join("s.json")).unwrap();
        s.create_token(&token("t", "h1")).await.unwrap();
        s.create_proxy(&proxy("a.test", "h1")).await.unwrap();
        // An owned route whose record cannot be decoded: the cascade fails after
        // it has already removed the proxy (members are visited in key order).
        s.put(keys::route("bad"), "{not json".into(), None, None).unwrap();
        s.kv_sadd(&keys::owner("h1"), &keys::route("bad"), 3600).await.unwrap();
        assert!(matches!(s.delete_token_cascade("t").await, Err(StoreError::Corrupt(_))));
        assert!(s.get_proxy("a.test").await.unwrap().is_some(), "the proxy is still there");
        assert!(s.get_token("t").await.unwrap().is_some(), "and so is the token");
    }

    #[tokio::test]
    async fn expiring_values_counters_and_single_use_values() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::load(&dir.path().join("s.json")).unwrap();
        assert!(s.acquire_lock("l", "me", 30).await.unwrap());
        assert!(!s.acquire_lock("l", "you", 30).await.unwrap());
        s.release_lock("l", "you").await.unwrap();
        assert!(!s.acquire_lock("l", "you", 30).await.unwrap(), "only the owner releases");
        s.release_lock("l", "me").await.unwrap();
        assert!(s.acquire_lock("l", "you", 30).await.unwrap());
        assert_eq!(s.kv_incr("c", 60).await.unwrap(), 1);
        assert_eq!(s.kv_incr("c", 60).await.unwrap(), 2);
        s.kv_set("once", "v", None).await.unwrap();
        assert_eq!(s.kv_take("once").await.unwrap().as_deref(), Some("v"));
        assert_eq!(s.kv_take("once").await.unwrap(), None);
        s.put_challenge("tok", "answer", 60).await.unwrap();
        assert_eq!(s.list_challenges().await.unwrap().get("tok").map(String::as_str), Some("answer"));
        s.kv_set("short", "v", Some(1)).await.unwrap();
        {
            let mut k = s.keys().unwrap();
            k.map.get_mut("short").unwrap().expires_ms = Some(now_ms() - 1);
        }
        assert_eq!(s.kv_get("short").await.unwrap(), None, "an expired key reads as absent");
        assert!(s.kv_set_nx("short", "w", 30).await.unwrap(), "and can be set again");
        s.kv_sadd("set", "a", 60).await.unwrap();
        s.kv_sadd("set", "b", 60).await.unwrap();
        assert_eq!(s.kv_smembers("set").await.unwrap(), ["a", "b"]);
        assert_eq!(s.kv_scan("ch").await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn state_survives_a_reload_and_the_file_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let s = EmbeddedStore::load(&path).unwrap();
        s.create_proxy(&proxy("a.test", "h1")).await.unwrap();
        s.put_service_url("svc", "http://127.0.0.1:2").await.unwrap();
        assert!(matches!(EmbeddedStore::load(&path), Err(StoreError::Unavailable(m)) if m.contains("in use")));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "owner-only file"
        );
        drop(s);
        let s = EmbeddedStore::load(&path).unwrap();
        assert_eq!(s.get_proxy("a.test").await.unwrap().unwrap().owner_token_hash, "h1");
        assert_eq!(
            s.list_service_urls().await.unwrap().get("svc").map(String::as_str),
            Some("http://127.0.0.1:2")
        );
        drop(s);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            matches!(EmbeddedStore::load(&path), Err(StoreError::Corrupt(_))),
            "a damaged file stops start-up"
        );
    }
}
