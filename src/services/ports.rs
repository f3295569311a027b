//! Port management (reference "Port Management Architecture"): the ranges,
//! the restricted list, and allocation that claims in the store first, so no
//! two services, on any instance sharing the store, get one port.

use std::net::{IpAddr, SocketAddr, TcpListener};

use serde::Serialize;
use utoipa::ToSchema;

use super::record::{self, PortRecord};
use crate::store::{Store, StoreResult};

/// Internal HTTP services.
pub const INTERNAL_HTTP: (u16, u16) = (9000, 9999);
/// Internal HTTPS services.
pub const INTERNAL_HTTPS: (u16, u16) = (10000, 10999);
/// User services: where ports are allocated when a request names none.
pub const EXPOSED: (u16, u16) = (11000, 65535);
/// System ports no service may take.
pub const RESTRICTED: [u16; 9] = [22, 25, 53, 80, 443, 3306, 5432, 6379, 27017];

/// How many candidates one allocation tries before reporting the range full.
const ALLOCATION_ATTEMPTS: usize = 64;

/// The ranges, for `GET /services/ports/available`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ranges {
    /// Internal HTTP range.
    pub internal_http: [u16; 2],
    /// Internal HTTPS range.
    pub internal_https: [u16; 2],
    /// Exposed range (allocation pool).
    pub exposed: [u16; 2],
    /// Never allocated.
    pub restricted: Vec<u16>,
}

/// The configured ranges.
pub fn ranges() -> Ranges {
    Ranges {
        internal_http: [INTERNAL_HTTP.0, INTERNAL_HTTP.1],
        internal_https: [INTERNAL_HTTPS.0, INTERNAL_HTTPS.1],
        exposed: [EXPOSED.0, EXPOSED.1],
        restricted: RESTRICTED.to_vec(),
    }
}

/// Why a port may not be requested at all, whoever holds it.
pub fn refusal(port: u16) -> Option<String> {
    if port == 0 {
        return Some("port 0 is not a port".into());
    }
    if RESTRICTED.contains(&port) {
        return Some(format!("port {port} is restricted (system reserved)"));
    }
    if port < 1024 {
        return Some(format!("port {port} is privileged (below 1024)"));
    }
    None
}

/// True when nothing on this host listens on `port` at `bind` right now.
pub fn bindable(bind: IpAddr, port: u16) -> bool {
    TcpListener::bind(SocketAddr::new(bind, port)).is_ok()
}

/// Claims `p.host_port` exactly; `Ok(false)` when it is held (restricted
/// ports are refused by the caller beforehand).
pub async fn claim(store: &dyn Store, p: &PortRecord) -> StoreResult<bool> {
    record::claim_port(store, p).await
}

/// Allocates a free port of the exposed range for `template` (its
/// `host_port` is ignored): from a random start, candidates that nothing on
/// this host listens on are claimed in the store until one claim succeeds.
/// `None` when [`ALLOCATION_ATTEMPTS`] candidates were all taken.
pub async fn allocate(store: &dyn Store, template: &PortRecord, bind: IpAddr) -> StoreResult<Option<PortRecord>> {
    let span = u32::from(EXPOSED.1 - EXPOSED.0) + 1;
    let start = rand::random::<u32>() % span;
    for i in 0..ALLOCATION_ATTEMPTS {
        let offset = (start + u32::try_from(i).unwrap_or(0) * 7919) % span;
        let port = EXPOSED.0 + u16::try_from(offset).unwrap_or(0);
        if refusal(port).is_some() || !bindable(bind, port) {
            continue;
        }
        let mut p = template.clone();
        p.host_port = port;
        if p.container_port == 0 {
            p.container_port = port;
        }
        if claim(store, &p).await? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_and_privileged_ports_are_refused() {
        for p in [0, 22, 80, 443, 6379, 1023] {
            assert!(refusal(p).is_some(), "{p}");
        }
        for p in [1024, 8080, 11000, 65535] {
            assert!(refusal(p).is_none(), "{p}");
        }
    }
}
