//! Services (issue 18): Docker containers run by the proxy (bollard),
//! external and internal services, port allocation, and the state of each
//! container kept current from the engine's events.

pub mod engine;
pub mod events;
pub mod ports;
pub mod record;
pub mod spec;

use std::collections::HashMap;

pub use engine::{Engine, EngineError};
pub use record::{DockerService, ExternalMeta, PortRecord, ServiceType};

use crate::store::{Store, StoreResult};

/// Name of the built-in internal service: the control plane.
pub const API_SERVICE: &str = "api";

/// Names that are path segments of the services API, never service names.
pub const RESERVED_NAMES: [&str; 5] = [API_SERVICE, "external", "unified", "cleanup", "ports"];

/// What the data plane needs to know about services: where each named
/// service is (every type, for `service` route targets), and which target
/// URLs belong to a container that is not serving, with the reason.
#[derive(Debug, Default)]
pub struct Targets {
    /// Service name -> URL: external, Docker, and `api`.
    pub urls: HashMap<String, String>,
    /// Target URL of a Docker service that is not running -> why.
    pub down: HashMap<String, String>,
    /// Target URL of a Docker service -> its owner (a user may proxy to its
    /// own container's loopback port, which the user target rules refuse otherwise).
    pub owners: HashMap<String, String>,
}

/// Reads every service the snapshot routes to; `api_url` is the control plane's.
pub async fn targets(store: &dyn Store, api_url: String) -> StoreResult<Targets> {
    let mut t = Targets {
        urls: store.list_service_urls().await?,
        ..Default::default()
    };
    t.urls.insert(API_SERVICE.into(), api_url);
    for s in record::list(store).await? {
        if !s.serving() {
            t.down.insert(
                s.target_url.clone(),
                format!(
                    "503 Service Unavailable: service {} is not running ({})\n",
                    s.service_name, s.status
                ),
            );
        }
        t.owners.insert(s.target_url.clone(), s.owner_token_hash.clone());
        t.urls.insert(s.service_name.clone(), s.target_url);
    }
    Ok(t)
}
