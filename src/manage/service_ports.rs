//! Port management endpoints: a service's ports (list, add, update,
//! remove: the container is recreated so the engine publishes or passes
//! the new set), every allocated port, the ranges, and an availability check.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::services::{PortConfigRequest, ServiceKey};
use super::{Caller, ManageError, ManageResult, Manager};
use crate::model::ValidationError;
use crate::services::{ports, record, PortRecord};

/// `POST /api/v1/services/ports/check`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckPort {
    /// The port.
    pub port: u16,
    /// Address it would bind (default 127.0.0.1).
    #[serde(default)]
    pub bind_address: Option<String>,
}

/// `PUT /api/v1/services/{name}/ports/{port_name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePort {
    /// New bind address.
    #[serde(default)]
    pub bind_address: Option<String>,
    /// New source token; an empty string removes the requirement.
    #[serde(default)]
    pub source_token: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A new port for the service `service_name`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePortAdd {
    /// The service's name.
    pub service_name: String,
    /// The port (the REST body).
    #[serde(default)]
    pub port: PortConfigRequest,
}

/// Names one port of a service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePortKey {
    /// The service's name.
    pub service_name: String,
    /// The port's name within the service.
    pub port_name: String,
}

/// A change of one port of a service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePortUpdate {
    /// The service's name.
    pub service_name: String,
    /// The port's name within the service.
    pub port_name: String,
    /// The fields to change (the REST body).
    pub patch: UpdatePort,
}

/// The answer of the availability check.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortCheck {
    /// The port.
    pub port: u16,
    /// The address checked.
    pub bind_address: String,
    /// True when a service could get it now.
    pub available: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The ranges with how much of them is used.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortsAvailable {
    /// Ranges and the restricted list.
    #[serde(flatten)]
    pub ranges: ports::Ranges,
    /// Ports allocated now.
    pub allocated_count: usize,
    /// Ports of the exposed range still free.
    pub exposed_free: usize,
}

/// A port as shown to callers (the source token's hash stays inside).
#[derive(Debug, Serialize, ToSchema)]
pub struct PortView {
    /// The record, without `source_token_hash`.
    #[serde(flatten)]
    pub port: PortRecord,
}

fn view(mut p: PortRecord) -> PortView {
    p.source_token_hash = None;
    PortView { port: p }
}

/// Every port of a service.
pub async fn list(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<Vec<PortView>> {
    Ok(m.visible_service(caller, &key.service_name)
        .await?
        .port_configs
        .into_iter()
        .map(view)
        .collect())
}

/// Adds a port to a service (claimed first; the container is recreated).
pub async fn add(m: &Manager, caller: &Caller, add: ServicePortAdd) -> ManageResult<PortView> {
    let (name, req) = (add.service_name.as_str(), add.port);
    let mut s = m.writable_service(caller, name).await?;
    if s.port_configs.len() >= 16 {
        return Err(ValidationError::new("port_configs", "at most 16 ports").into());
    }
    let index = s.port_configs.len();
    let mut p = m.port_record(caller, name, index, &req, &s.bind_address, s.internal_port)?;
    p.owner_token_hash = s.owner_token_hash.clone();
    if s.port_configs.iter().any(|q| q.port_name == p.port_name) {
        return Err(ManageError::Conflict(format!(
            "service {name} already has a port named {}",
            p.port_name
        )));
    }
    let p = m.claim_port(p).await?;
    s.port_configs.push(p.clone());
    if let Err(e) = m.recreate(&mut s).await {
        tracing::warn!(service = %name, error = %e, "port added but the container was not recreated");
    }
    Ok(view(p))
}

/// Removes a port (not the service's main port, the proxy target).
pub async fn remove(m: &Manager, caller: &Caller, key: ServicePortKey) -> ManageResult<PortView> {
    let (name, port_name) = (key.service_name.as_str(), key.port_name.as_str());
    let mut s = m.writable_service(caller, name).await?;
    let i = s
        .port_configs
        .iter()
        .position(|p| p.port_name == port_name)
        .ok_or_else(|| ManageError::NotFound(format!("port {port_name} of service {name}")))?;
    if i == 0 {
        return Err(ManageError::Conflict(format!(
            "{port_name} is the main port of {name} (its proxy target); delete the service instead"
        )));
    }
    let p = s.port_configs.remove(i);
    record::release_port(m.store.as_ref(), p.host_port).await?;
    if let Err(e) = m.recreate(&mut s).await {
        tracing::warn!(service = %name, error = %e, "port removed but the container was not recreated");
    }
    Ok(view(p))
}

/// Changes a port's bind address, source token or description.
pub async fn update(m: &Manager, caller: &Caller, upd: ServicePortUpdate) -> ManageResult<PortView> {
    let (name, port_name, req) = (upd.service_name.as_str(), upd.port_name.as_str(), upd.patch);
    let mut s = m.writable_service(caller, name).await?;
    let p = s
        .port_configs
        .iter_mut()
        .find(|p| p.port_name == port_name)
        .ok_or_else(|| ManageError::NotFound(format!("port {port_name} of service {name}")))?;
    if let Some(b) = req.bind_address {
        b.parse::<std::net::IpAddr>()
            .map_err(|_| ValidationError::new("bind_address", "an IP address"))?;
        p.bind_address = b;
    }
    match req.source_token.as_deref() {
        Some("") => p.source_token_hash = None,
        Some(t) if t.len() < 16 || t.len() > 256 => {
            return Err(ValidationError::new("source_token", "16 to 256 characters").into());
        }
        Some(t) => p.source_token_hash = Some(crate::secrets::token_hash(t)),
        None => {}
    }
    p.require_token = p.source_token_hash.is_some();
    if let Some(d) = req.description {
        crate::model::check_text_len("description", &d, 500)?;
        p.description = (!d.is_empty()).then_some(d);
    }
    let updated = p.clone();
    record::update_port(m.store.as_ref(), &updated).await?;
    if let Err(e) = m.recreate(&mut s).await {
        tracing::warn!(service = %name, error = %e, "port updated but the container was not recreated");
    }
    Ok(view(updated))
}

/// Every allocated port the caller may see (the admin: all).
pub async fn all(m: &Manager, caller: &Caller) -> ManageResult<Vec<PortView>> {
    Ok(record::list_ports(m.store.as_ref())
        .await?
        .into_iter()
        .filter(|p| caller.may_read(&p.owner_token_hash))
        .map(view)
        .collect())
}

/// The ranges and how full they are.
pub async fn available(m: &Manager, _caller: &Caller) -> ManageResult<PortsAvailable> {
    let taken = record::list_ports(m.store.as_ref()).await?;
    let exposed_taken = taken
        .iter()
        .filter(|p| (ports::EXPOSED.0..=ports::EXPOSED.1).contains(&p.host_port))
        .count();
    let exposed_total = usize::from(ports::EXPOSED.1 - ports::EXPOSED.0) + 1;
    Ok(PortsAvailable {
        ranges: ports::ranges(),
        allocated_count: taken.len(),
        exposed_free: exposed_total.saturating_sub(exposed_taken),
    })
}

/// Whether a service could get `port` now: not restricted, not
/// allocated, and nothing on this host listening on it.
pub async fn check(m: &Manager, _caller: &Caller, req: CheckPort) -> ManageResult<PortCheck> {
    let bind = req.bind_address.unwrap_or_else(|| "127.0.0.1".into());
    let ip: std::net::IpAddr = bind.parse().map_err(|_| ValidationError::new("bind_address", "an IP address"))?;
    let reason = if let Some(why) = ports::refusal(req.port) {
        Some(why)
    } else if record::port_holder(m.store.as_ref(), req.port).await?.is_some() {
        Some(format!("port {} is allocated to a service", req.port))
    } else if !ports::bindable(ip, req.port) {
        Some(format!("something on this host already listens on {bind}:{}", req.port))
    } else {
        None
    };
    Ok(PortCheck {
        port: req.port,
        bind_address: bind,
        available: reason.is_none(),
        reason,
    })
}
