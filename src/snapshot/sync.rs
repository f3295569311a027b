//! Keeps the snapshot current: rebuilds on every change event (coalescing
//! bursts) and on a periodic full reconcile, so a lost pub/sub message heals.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::{build, SnapshotHandle};
use crate::config::Config;
use crate::metrics;
use crate::secrets::Sealer;
use crate::store::Store;
use crate::tls::CertKey;

/// The background service that owns snapshot rebuilding.
pub struct SyncService {
    /// Configuration (Redis URL, reconcile interval, secret key).
    pub config: Arc<Config>,
    /// The snapshot to keep current.
    pub handle: SnapshotHandle,
    /// Certificate for names no stored certificate covers.
    pub fallback: Arc<CertKey>,
    /// Rebuild requests from the data plane (an unknown signing key id).
    pub wake: Arc<tokio::sync::Notify>,
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
                    _ = self.wake.notified() => self.rebuild(&*store).await,
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
