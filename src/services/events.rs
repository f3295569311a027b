//! Keeps each Docker service's recorded state current: the engine's event
//! stream says when a container starts, dies or changes health, and a full
//! pass at every (re)subscription and every reconcile interval heals events
//! missed while the stream was down. A change is written to the record, which
//! publishes a `service` event, so every instance's data plane follows.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pingora::server::ShutdownWatch;

use super::engine::{ContainerState, Engine};
use super::record;
use crate::store::Store;

/// Engine actions after which a container's state may have changed.
const STATE_ACTIONS: [&str; 9] = ["start", "die", "stop", "kill", "oom", "pause", "unpause", "restart", "destroy"];

/// The status a record shows for an inspected container (`missing` when gone).
pub fn status_of(state: Option<&ContainerState>) -> (String, Option<String>, Option<i64>) {
    match state {
        None => ("missing".into(), None, None),
        Some(c) => {
            let status = if c.status == "running" && c.health.as_deref() == Some("unhealthy") {
                "unhealthy".to_string()
            } else {
                c.status.clone()
            };
            let exit = (c.status != "running").then_some(c.exit_code).flatten();
            (status, c.health.clone(), exit)
        }
    }
}

/// Re-reads one service's container and stores its state if it changed.
pub async fn refresh(store: &dyn Store, engine: &Engine, name: &str) {
    let Ok(Some(s)) = record::get(store, name).await else { return };
    let state = match engine.inspect(name).await {
        Ok(st) => st,
        Err(e) => {
            tracing::debug!(service = %name, error = %e, "cannot inspect the container");
            return;
        }
    };
    let (status, health, exit_code) = status_of(state.as_ref());
    if (&status, &health, &exit_code) == (&s.status, &s.health, &s.exit_code) {
        return;
    }
    if status != "running" && s.status == "running" {
        tracing::warn!(service = %name, %status, exit_code = ?exit_code, "service container is no longer running");
    } else {
        tracing::info!(service = %name, %status, "service container state changed");
    }
    let st = record::State {
        status,
        health,
        exit_code,
        updated_at: crate::model::now_rfc3339(),
    };
    if let Err(e) = record::put_state(store, name, &st).await {
        tracing::warn!(service = %name, error = %e, "cannot store the service state");
    }
}

/// Refreshes every recorded service.
async fn refresh_all(store: &dyn Store, engine: &Engine) {
    if let Ok(all) = record::list(store).await {
        for s in all {
            refresh(store, engine, &s.service_name).await;
        }
    }
}

/// Follows the engine's events until shutdown, resubscribing with backoff
/// when the engine goes away; every `interval` all states are re-read.
pub async fn watch(store: Arc<dyn Store>, engine: Engine, interval: Duration, mut shutdown: ShutdownWatch) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut events = match engine.events().await {
            Ok(ev) => {
                backoff = Duration::from_millis(500);
                ev
            }
            Err(e) => {
                tracing::debug!(error = %e, "no Docker events yet; retrying");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        refresh_all(store.as_ref(), &engine).await;
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => refresh_all(store.as_ref(), &engine).await,
                ev = events.next() => match ev {
                    Some(Ok((service, action))) => {
                        let action = action.split(':').next().unwrap_or_default().to_string();
                        if STATE_ACTIONS.contains(&action.as_str()) || action == "health_status" {
                            refresh(store.as_ref(), &engine, &service).await;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "Docker event stream failed; resubscribing");
                        break;
                    }
                    None => break,
                },
            }
        }
    }
}
