//! Keeps the snapshot current: rebuilds on every change event (coalescing
//! bursts) and on a periodic full reconcile, so a lost pub/sub message heals.
//! Tokens naming an unknown signing key ask for a key refresh, bounded by
//! [`KeyRefresh`]: it reloads the keys alone, never the whole snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::build::auth_keys;
use super::{build, Snapshot, SnapshotHandle};
use crate::auth::KEY_REFRESH_INTERVAL;
use crate::config::Config;
use crate::metrics;
use crate::secrets::Sealer;
use crate::store::Store;
use crate::tls::CertKey;

/// How long the request that triggered a key refresh waits for it.
const KEY_REFRESH_WAIT: Duration = Duration::from_secs(1);

/// The bounded key refresh shared by the data plane (which asks) and the
/// sync service (which reloads the keys).
pub struct KeyRefresh {
    origin: Instant,
    /// Milliseconds after `origin` (plus one) of the last refresh asked for; 0: never.
    last: AtomicU64,
    /// Wakes the sync service.
    wake: tokio::sync::Notify,
    /// Refreshes finished, and their signal, for the waiting request.
    done: AtomicU64,
    finished: tokio::sync::Notify,
}

impl Default for KeyRefresh {
    fn default() -> Self {
        KeyRefresh {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            done: AtomicU64::new(0),
            finished: tokio::sync::Notify::new(),
        }
    }
}

impl KeyRefresh {
    /// Asks for a key refresh and waits (at most 1 s) until it finished;
    /// returns at once, `false`, when one was asked for less than
    /// [`KEY_REFRESH_INTERVAL`] ago.
    pub async fn refresh(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last.load(Ordering::Acquire);
        let interval = u64::try_from(KEY_REFRESH_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if (last != 0 && now.saturating_sub(last) < interval)
            || self.last.compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            metrics::KEY_REFRESHES.with_label_values(&["skipped"]).inc();
            return false;
        }
        let before = self.done.load(Ordering::Acquire);
        let finished = self.finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        self.wake.notify_one();
        let _ = tokio::time::timeout(KEY_REFRESH_WAIT, async {
            while self.done.load(Ordering::Acquire) == before {
                finished.as_mut().await;
                finished.set(self.finished.notified());
                finished.as_mut().enable();
            }
        })
        .await;
        true
    }

    fn mark_done(&self) {
        self.done.fetch_add(1, Ordering::AcqRel);
        self.finished.notify_waiters();
    }
}

/// The background service that owns snapshot rebuilding.
pub struct SyncService {
    /// Configuration (Redis URL, reconcile interval, secret key).
    pub config: Arc<Config>,
    /// The snapshot to keep current.
    pub handle: SnapshotHandle,
    /// Certificate for names no stored certificate covers.
    pub fallback: Arc<CertKey>,
    /// Key refresh requests from the data plane (an unknown signing key id).
    pub keys: Arc<KeyRefresh>,
}

impl SyncService {
    /// Builds and swaps in a new snapshot; on failure keeps the old one.
    pub async fn rebuild(&self, store: &dyn Store) {
        let sealer = Sealer::new(self.config.secret_key);
        match build(store, &sealer, self.fallback.clone(), &self.config).await {
            Ok(s) => {
                let ts = s.built_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                tracing::debug!(proxies = s.proxies.len(), "snapshot rebuilt");
                self.handle.store(Arc::new(s));
                metrics::SNAPSHOT_REBUILDS.with_label_values(&["ok"]).inc();
                metrics::SNAPSHOT_TIMESTAMP.set(i64::try_from(ts).unwrap_or(0));
            }
            Err(e) => {
                metrics::SNAPSHOT_REBUILDS.with_label_values(&["failed"]).inc();
                tracing::warn!(error = %e, "snapshot rebuild failed; keeping the previous snapshot");
            }
        }
    }

    /// Reloads the signing keys (and revocations) alone and swaps them in,
    /// sharing everything else with the current snapshot; no swap when the
    /// key ids are unchanged, so the verified-token cache survives.
    pub async fn refresh_keys(&self, store: &dyn Store) {
        let sealer = Sealer::new(self.config.secret_key);
        let result = match auth_keys(store, &sealer, &self.config.oauth).await {
            Ok(auth) => {
                let cur = self.handle.load();
                let same = auth.keys.len() == cur.auth.keys.len() && auth.keys.keys().all(|k| cur.auth.keys.contains_key(k));
                if same {
                    "unchanged"
                } else {
                    self.handle.store(Arc::new(Snapshot {
                        proxies: cur.proxies.clone(),
                        certs: cur.certs.clone(),
                        challenges: cur.challenges.clone(),
                        auth,
                        control: cur.control.clone(),
                        built_at: SystemTime::now(),
                    }));
                    tracing::info!("signing keys refreshed for a token with an unknown key id");
                    "changed"
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "signing key refresh failed; keeping the current keys");
                "failed"
            }
        };
        metrics::KEY_REFRESHES.with_label_values(&[result]).inc();
        self.keys.mark_done();
    }

    async fn connect(&self, shutdown: &mut ShutdownWatch) -> Option<Arc<dyn Store>> {
        let mut delay = Duration::from_millis(200);
        loop {
            match crate::store::open(&self.config).await {
                Ok(s) => return Some(s),
                Err(e) => tracing::warn!(error = %e, "snapshot sync cannot reach the store; retrying"),
            }
            tokio::select! {
                _ = shutdown.changed() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

#[async_trait]
impl BackgroundService for SyncService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(store) = self.connect(&mut shutdown).await else { return };
        let mut tick = tokio::time::interval(self.config.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'outer: loop {
            let mut events = match store.subscribe().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to change events; retrying");
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'outer,
                    }
                }
            };
            // Rebuild after (re)subscribing: anything missed while unsubscribed is picked up.
            self.rebuild(&*store).await;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tick.tick() => self.rebuild(&*store).await,
                    _ = self.keys.wake.notified() => self.refresh_keys(&*store).await,
                    ev = events.next() => {
                        let Some(ev) = ev else {
                            tracing::warn!("change event subscription ended; resubscribing");
                            continue 'outer;
                        };
                        metrics::CHANGE_EVENTS.inc();
                        tracing::debug!(kind = ?ev.kind, id = %ev.id, op = %ev.op, "change event");
                        let mut relevant = ev.kind.affects_snapshot();
                        while let Some(Some(more)) = events.next().now_or_never() {
                            metrics::CHANGE_EVENTS.inc();
                            relevant |= more.kind.affects_snapshot();
                        }
                        if relevant {
                            self.rebuild(&*store).await;
                        }
                    }
                }
            }
        }
    }
}
