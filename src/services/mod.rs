//! Services (issue 18): Docker containers run by the proxy (bollard),
//! external and internal services, port allocation, and the state of each
//! container kept current from the engine's events.

pub mod engine;
pub mod events;
pub mod ports;
pub mod record;
pub mod source_token;
pub mod spec;

use std::collections::HashMap;
use std::net::IpAddr;

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
    /// URL of a Docker service port with a source token -> the token's hash
    /// (`source_token`: the proxy asks for it on the hostnames sent there).
    pub tokens: HashMap<String, String>,
}

/// The URL the proxy sends a service port's traffic to (loopback for an
/// unspecified bind address).
pub fn target_url(bind: IpAddr, port: u16) -> String {
    let host = if bind.is_unspecified() {
        if bind.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        }
    } else {
        bind
    };
    match host {
        IpAddr::V6(h) => format!("http://[{h}]:{port}"),
        IpAddr::V4(h) => format!("http://{h}:{port}"),
    }
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
        for p in &s.port_configs {
            if let (Some(h), Ok(bind)) = (&p.source_token_hash, p.bind_address.parse()) {
                t.tokens.insert(target_url(bind, p.host_port), h.clone());
            }
        }
        t.urls.insert(s.service_name.clone(), s.target_url);
    }
    Ok(t)
}
