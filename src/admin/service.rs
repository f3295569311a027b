//! The control plane as a pingora background service: its own store
//! connection, the axum server on `API_HOST:API_PORT`, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::{router, AppState};
use crate::config::Config;
use crate::manage::Manager;

/// Serves the admin API, OAuth endpoints (later), `/health` and `/metrics`.
pub struct ControlPlane {
    /// Configuration.
    pub config: Arc<Config>,
}

/// Binds the control plane with `SO_REUSEPORT`, so an upgraded process
/// (`serve --upgrade`) listens next to the draining one instead of waiting
/// for it to exit.
fn listen_shared(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

#[async_trait]
impl BackgroundService for ControlPlane {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let addr = SocketAddr::new(self.config.api_host, self.config.api_port);
        let store = loop {
            match crate::store::open(&self.config).await {
                Ok(s) => break s,
                Err(e) => tracing::warn!(error = %e, "control plane cannot reach the store; retrying"),
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        let listener = loop {
            match listen_shared(addr) {
                Ok(l) => break l,
                Err(e) => tracing::warn!(%addr, error = %e, "cannot bind the control plane yet; retrying"),
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        };
        let state = Arc::new(AppState {
            manager: Manager::new(store, self.config.clone()),
            started: Instant::now(),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(state.manager.acme.clone().renewal_loop(shutdown.clone()));
        tokio::spawn(crate::services::events::watch(
            state.manager.store.clone(),
            state.manager.engine.clone(),
            self.config.reconcile_interval,
            shutdown.clone(),
        ));
        tracing::info!(%addr, "control plane listening");
        let mut stop = shutdown.clone();
        let served =
            axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "control plane stopped");
        }
    }
}
