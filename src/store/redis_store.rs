//! [`Backend`] on Redis: values under the reference keys, every batch one Lua
//! script (`apply.lua`: checks, writes, PUBLISH) so it is atomic and
//! publishes once; change events over Redis pub/sub reach every instance.

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::Serialize;

use super::backend::{Applied, Backend, Batch, Check, Depth, Expiry};
use super::{keys, ChangeEvent, StoreError, StoreResult};

/// Keys examined per SCAN round trip.
const SCAN_COUNT: usize = 1000;

/// Keys fetched per MGET.
const MGET_CHUNK: usize = 500;

/// How often the whole key directory is checked for keys that expired
/// unseen (a prefix scan already drops the dead keys of its own range).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes directory entries whose key no longer exists, atomically per key,
/// so an entry for a key re-created meanwhile is kept.
const PRUNE_LUA: &str = "local n = 0
for _, k in ipairs(ARGV) do
  if redis.call('EXISTS', k) == 0 then n = n + redis.call('ZREM', KEYS[1], k) end
end
return n";

/// Redis-backed store; cheap to clone (one multiplexed, self-healing connection).
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    script: std::sync::Arc<redis::Script>,
    prune: std::sync::Arc<redis::Script>,
    last_prune: std::sync::Arc<std::sync::Mutex<std::time::Instant>>,
}

/// One check as `apply.lua` reads it.
#[derive(Serialize)]
struct WireCheck<'a> {
    key: &'a str,
    cond: &'static str,
    value: String,
}

/// A [`Batch`] as `apply.lua` reads it (ttl 0: none, -1: keep).
#[derive(Serialize)]
struct WireBatch<'a> {
    checks: Vec<WireCheck<'a>>,
    del: &'a [String],
    set: Vec<(&'a str, &'a str, i64)>,
    sadd: Vec<(&'a str, &'a str, i64)>,
    srem: &'a [(String, String)],
    channel: &'static str,
    event: String,
}

fn secs(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl<'a> WireBatch<'a> {
    fn new(b: &'a Batch) -> Self {
        let checks = b
            .checks
            .iter()
            .map(|c| match c {
                Check::Absent(k) => WireCheck {
                    key: k,
                    cond: "absent",
                    value: String::new(),
                },
                Check::Present(k) => WireCheck {
                    key: k,
                    cond: "present",
                    value: String::new(),
                },
                Check::Equals(k, v) => WireCheck {
                    key: k,
                    cond: "equals",
                    value: v.clone(),
                },
                Check::Members(k, m) => {
                    let mut m = m.clone();
                    m.sort();
                    WireCheck {
                        key: k,
                        cond: "members",
                        value: m.join("\n"),
                    }
                }
            })
            .collect();
        let set = b
            .set
            .iter()
            .map(|(k, v, e)| {
                let ttl = match e {
                    Expiry::Never => 0,
                    Expiry::Secs(t) => secs((*t).max(1)),
                    Expiry::Keep => -1,
                };
                (k.as_str(), v.as_str(), ttl)
            })
            .collect();
        let sadd = b
            .sadd
            .iter()
            .map(|(k, m, t)| (k.as_str(), m.as_str(), t.map_or(0, |t| secs(t.max(1)))))
            .collect();
        let event = b.event.as_ref().and_then(|e| serde_json::to_string(e).ok()).unwrap_or_default();
        Self {
            checks,
            del: &b.del,
            set,
            sadd,
            srem: &b.srem,
            channel: keys::EVENTS_CHANNEL,
            event,
        }
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects to `url` (fails fast if Redis does not answer).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(std::time::Duration::from_secs(3))
            .set_response_timeout(std::time::Duration::from_secs(5))
            // No internal retries: redis-rs backs off 1 s then up to 60 s
            // (factor 100), which made this "fail fast" connect hang past
            // REDIS_STARTUP_TIMEOUT and stalled reconnects. Callers retry.
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_with_config(client.clone(), cfg).await.map_err(unavailable)?;
        let store = Self {
            client,
            conn,
            script: std::sync::Arc::new(redis::Script::new(include_str!("apply.lua"))),
            prune: std::sync::Arc::new(redis::Script::new(PRUNE_LUA)),
            last_prune: std::sync::Arc::new(std::sync::Mutex::new(std::time::Instant::now())),
        };
        store.ping().await?;
        store.fill_directory().await?;
        Ok(store)
    }

    /// Builds the key directory once for a database written before it
    /// existed: one SCAN of everything, keeping the string keys (the request
    /// log's hashes, sorted sets and stream are not store keys). Writes made
    /// meanwhile register themselves, so two instances doing this at once
    /// only repeat work.
    async fn fill_directory(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        let ready: bool = conn.exists(keys::KEY_DIRECTORY_READY).await.map_err(unavailable)?;
        if ready {
            return Ok(());
        }
        let all = self.every_key().await?;
        for chunk in all.chunks(MGET_CHUNK) {
            let vals: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query_async(&mut conn).await.map_err(unavailable)?;
            let strings: Vec<(u8, &String)> = chunk
                .iter()
                .zip(vals)
                .filter(|(k, v)| v.is_some() && k.as_str() != keys::KEY_DIRECTORY_READY)
                .map(|(k, _)| (0, k))
                .collect();
            if !strings.is_empty() {
                let _: () = conn.zadd_multiple(keys::KEY_DIRECTORY, &strings).await.map_err(unavailable)?;
            }
        }
        let _: () = conn.set(keys::KEY_DIRECTORY_READY, "1").await.map_err(unavailable)?;
        Ok(())
    }

    /// Drops the directory entries of `candidates` whose key is gone.
    async fn prune(&self, candidates: &[String]) -> StoreResult<()> {
        let mut conn = self.conn();
        for chunk in candidates.chunks(MGET_CHUNK) {
            let _: i64 = self
                .prune
                .key(keys::KEY_DIRECTORY)
                .arg(chunk)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Every [`PRUNE_EVERY`], starts a check of the whole directory for keys
    /// that expired in ranges no scan reads (e.g. access-token records). It
    /// runs as a task of its own: the scan that finds it due does not wait
    /// for a walk over every entry.
    fn prune_all_when_due(&self) {
        {
            let mut last = self.last_prune.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < PRUNE_EVERY {
                return;
            }
            *last = std::time::Instant::now();
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.prune_all().await {
                tracing::warn!(error = %e, "store key directory not pruned; next try in {} s", PRUNE_EVERY.as_secs());
            }
        });
    }

    /// Drops the directory entries of every key that is gone.
    async fn prune_all(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        // Walk by name: removing entries does not move a lexicographic cursor.
        let mut after = b"-".to_vec();
        loop {
            let chunk: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(keys::KEY_DIRECTORY)
                .arg(&after)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(MGET_CHUNK)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some(last) = chunk.last() else { return Ok(()) };
            after = [b"(", last.as_bytes()].concat();
            self.prune(&chunk).await?;
            if chunk.len() < MGET_CHUNK {
                return Ok(());
            }
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Every key of the database (for the one-time directory fill only:
    /// everything else reads the directory).
    async fn every_key(&self) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        let mut found = Vec::new();
        // COUNT 1000 instead of Redis's default 10: one round trip per 1,000 keys.
        let opts = redis::ScanOptions::default().with_count(SCAN_COUNT);
        let mut iter: redis::AsyncIter<String> = conn.scan_options(opts).await.map_err(unavailable)?;
        while let Some(k) = iter.next_item().await {
            found.push(k.map_err(unavailable)?);
        }
        Ok(found)
    }
}

#[async_trait]
impl Backend for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await.map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        // A set under the key reads as absent, like the embedded store.
        match self.conn().get::<_, Option<String>>(key).await {
            Err(e) if e.kind() == redis::ErrorKind::TypeError || e.code() == Some("WRONGTYPE") => Ok(None),
            other => other.map_err(unavailable),
        }
    }

    async fn members(&self, key: &str) -> StoreResult<Vec<String>> {
        let mut m: Vec<String> = self.conn().smembers(key).await.map_err(unavailable)?;
        m.sort();
        Ok(m)
    }

    async fn scan(&self, prefix: &str, depth: Depth) -> StoreResult<Vec<(String, String)>> {
        self.prune_all_when_due();
        let mut conn = self.conn();
        // The directory's range of names starting with `prefix`: from
        // `[prefix` up to, not including, `prefix` + 0xFF (no UTF-8 byte is
        // 0xFF, so every such name sorts below it).
        let min = [b"[", prefix.as_bytes()].concat();
        let max = [b"(", prefix.as_bytes(), &[0xff]].concat();
        let found: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(keys::KEY_DIRECTORY)
            .arg(min)
            .arg(max)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let found: Vec<String> = found
            .into_iter()
            .filter(|k| depth == Depth::All || !k[prefix.len()..].contains(':'))
            .collect();
        let mut out = Vec::with_capacity(found.len());
        let mut gone = Vec::new();
        for chunk in found.chunks(MGET_CHUNK) {
            let vals: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query_async(&mut conn).await.map_err(unavailable)?;
            for (k, v) in chunk.iter().zip(vals) {
                match v {
                    Some(v) => out.push((k.clone(), v)),
                    None => gone.push(k.clone()),
                }
            }
        }
        if !gone.is_empty() {
            self.prune(&gone).await?;
        }
        Ok(out)
    }

    async fn apply(&self, batch: &Batch) -> StoreResult<Applied> {
        let wire = serde_json::to_string(&WireBatch::new(batch)).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let out: Vec<String> = self
            .script
            .arg(wire)
            .arg(keys::KEY_DIRECTORY)
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let key = out.get(1).cloned().unwrap_or_default();
        Ok(match out.first().map(String::as_str) {
            Some("ok") => Applied::Ok,
            Some("conflict") => Applied::Conflict(key),
            Some("missing") => Applied::Missing(key),
            _ => Applied::Changed(key),
        })
    }

    async fn subscribe(&self) -> StoreResult<BoxStream<'static, ChangeEvent>> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub.subscribe(keys::EVENTS_CHANNEL).await.map_err(unavailable)?;
        let stream = pubsub.into_on_message().filter_map(|msg| async move {
            let payload: String = msg.get_payload().ok()?;
            serde_json::from_str::<ChangeEvent>(&payload).ok()
        });
        Ok(Box::pin(stream))
    }
}
