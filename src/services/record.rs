//! Stored records of Docker services, external service metadata and port
//! claims, and their store access. Records live as internal values under
//! the keys of `store::keys` (`service:docker:{name}`, `port:{port}`), so
//! every backend holds them without new store operations; each write
//! publishes a `service` change event and the snapshot rebuilds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::NetworkMode;
use crate::store::{keys, EventKind, Store, StoreError, StoreResult};

/// The three kinds of services (reference "Service Types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// A container run by the proxy.
    Docker,
    /// A named URL registered through the API.
    External,
    /// Built in (`api`, the control plane).
    Internal,
}

/// One port of a service as stored (reference "Port Schema"): the claim
/// record at `port:{host_port}` and an entry of the service's `port_configs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PortRecord {
    /// Service holding the port.
    pub service_name: String,
    /// Name of the port within the service (`http`, `metrics`...).
    pub port_name: String,
    /// Port on the host.
    pub host_port: u16,
    /// Port inside the container (equal to `host_port` in host network mode).
    pub container_port: u16,
    /// Address the port is bound to on the host.
    pub bind_address: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `sha256:` hash of the source token a request to this port must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_token_hash: Option<String>,
    /// True when `source_token_hash` is set.
    pub require_token: bool,
    /// Owner of the service.
    pub owner_token_hash: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A Docker service as stored (reference "Docker Service Schema" plus state).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DockerService {
    /// Unique name: container name, `portcullis.service` label, route target.
    pub service_name: String,
    /// Always `docker`.
    pub service_type: ServiceType,
    /// Image the container runs (the built tag for `dockerfile_path`).
    pub image: String,
    /// Dockerfile under `DOCKER_BUILD_DIR` the image was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_path: Option<String>,
    /// Port the service listens on inside the container.
    pub internal_port: u16,
    /// Docker memory size (`512m`).
    pub memory_limit: String,
    /// CPU cores.
    pub cpu_limit: f64,
    /// Process limit.
    pub pids_limit: i64,
    /// Environment of the container (`PORT` added in host mode).
    pub environment: BTreeMap<String, String>,
    /// Command, when not the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Docker networks to join (bridge mode only).
    pub networks: Vec<String>,
    /// Extra labels (ours, `portcullis.*`, are added and cannot be overridden).
    pub labels: BTreeMap<String, String>,
    /// Publish `port_configs` on the host (bridge mode).
    pub expose_ports: bool,
    /// Every port of the service; the first is the proxy target.
    pub port_configs: Vec<PortRecord>,
    /// Default bind address of the ports.
    pub bind_address: String,
    /// Docker restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub restart_policy: String,
    /// Network mode the container was created with.
    pub network_mode: NetworkMode,
    /// The allocated main port (`PORT` in host mode).
    pub port: u16,
    /// Where the proxy sends this service's traffic.
    pub target_url: String,
    /// Container id, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// `created`, `running`, `exited`, `restarting`, `unhealthy`, `missing`.
    pub status: String,
    /// The container's health status when it has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Exit code of the last stop, when exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Owner (`sha256:` hash of the creating token).
    pub owner_token_hash: String,
    /// Name of the creating token.
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 of the last state or configuration change.
    pub updated_at: String,
}

impl DockerService {
    /// True when the container serves traffic (running, not unhealthy).
    pub fn serving(&self) -> bool {
        self.status == "running"
    }
}

/// Description and owner of an external service (its URL is `service:url:{name}`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ExternalMeta {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who registered it.
    #[serde(default)]
    pub owner_token_hash: String,
    /// Name of that token.
    #[serde(default)]
    pub created_by: String,
    /// RFC 3339.
    #[serde(default)]
    pub created_at: String,
    /// RFC 3339.
    #[serde(default)]
    pub updated_at: String,
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, v: &str) -> StoreResult<T> {
    serde_json::from_str(v).map_err(|_| StoreError::Corrupt(key.to_string()))
}

fn encode<T: Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// The container state of a service, stored apart from its record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// See [`DockerService::status`].
    pub status: String,
    /// See [`DockerService::health`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// See [`DockerService::exit_code`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// RFC 3339.
    pub updated_at: String,
}

impl DockerService {
    /// The state part of the record.
    pub fn state(&self) -> State {
        State {
            status: self.status.clone(),
            health: self.health.clone(),
            exit_code: self.exit_code,
            updated_at: self.updated_at.clone(),
        }
    }

    fn apply(&mut self, st: State) {
        self.status = st.status;
        self.health = st.health;
        self.exit_code = st.exit_code;
        self.updated_at = st.updated_at;
    }
}

/// One Docker service record with its current state.
pub async fn get(store: &dyn Store, name: &str) -> StoreResult<Option<DockerService>> {
    let key = keys::docker_service(name);
    let Some(mut s) = store
        .get_value(&key)
        .await?
        .map(|v| decode::<DockerService>(&key, &v))
        .transpose()?
    else {
        return Ok(None);
    };
    let skey = keys::docker_service_state(name);
    if let Some(st) = store.get_value(&skey).await? {
        s.apply(decode(&skey, &st)?);
    }
    Ok(Some(s))
}

/// Every Docker service record with its state, by name.
pub async fn list(store: &dyn Store) -> StoreResult<Vec<DockerService>> {
    let states: std::collections::HashMap<String, State> = store
        .kv_scan(&keys::internal(&keys::docker_service_state("")))
        .await?
        .into_iter()
        .filter_map(|(k, v)| {
            let name = k.rsplit(':').next()?.to_string();
            Some((name, decode(&k, &v).ok()?))
        })
        .collect();
    let mut v: Vec<DockerService> = store
        .kv_scan(&keys::internal(&keys::docker_service("")))
        .await?
        .into_iter()
        .filter_map(|(k, v)| decode::<DockerService>(&k, &v).ok())
        .map(|mut s| {
            if let Some(st) = states.get(&s.service_name) {
                s.apply(st.clone());
            }
            s
        })
        .collect();
    v.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    Ok(v)
}

/// Stores a new record; `Conflict` when the name is taken.
pub async fn create(store: &dyn Store, s: &DockerService) -> StoreResult<()> {
    if !store
        .set_value_if_absent(&keys::docker_service(&s.service_name), &encode(s)?)
        .await?
    {
        return Err(StoreError::Conflict(format!("a service named {} already exists", s.service_name)));
    }
    store
        .set_value(&keys::docker_service_state(&s.service_name), &encode(&s.state())?)
        .await?;
    store.publish(EventKind::Service, &s.service_name, "create").await
}

/// Replaces a record and its state.
pub async fn put(store: &dyn Store, s: &DockerService) -> StoreResult<()> {
    store.set_value(&keys::docker_service(&s.service_name), &encode(s)?).await?;
    put_state(store, &s.service_name, &s.state()).await
}

/// Replaces only the state of a service (the event watcher's write).
pub async fn put_state(store: &dyn Store, name: &str, st: &State) -> StoreResult<()> {
    store.set_value(&keys::docker_service_state(name), &encode(st)?).await?;
    store.publish(EventKind::Service, name, "update").await
}

/// Removes a record and its state.
pub async fn delete(store: &dyn Store, name: &str) -> StoreResult<()> {
    store.kv_del(&keys::internal(&keys::docker_service(name))).await?;
    store.kv_del(&keys::internal(&keys::docker_service_state(name))).await?;
    store.publish(EventKind::Service, name, "delete").await
}

/// Metadata of an external service.
pub async fn get_external(store: &dyn Store, name: &str) -> StoreResult<Option<ExternalMeta>> {
    let key = keys::external_service(name);
    store.get_value(&key).await?.map(|v| decode(&key, &v)).transpose()
}

/// Sets the metadata of an external service.
pub async fn put_external(store: &dyn Store, name: &str, m: &ExternalMeta) -> StoreResult<()> {
    store.set_value(&keys::external_service(name), &encode(m)?).await
}

/// Removes the metadata of an external service.
pub async fn delete_external(store: &dyn Store, name: &str) -> StoreResult<()> {
    store.kv_del(&keys::internal(&keys::external_service(name))).await
}

/// Claims `p.host_port` for `p`; false when someone holds it. Atomic in the
/// store (set-if-absent), also across instances sharing Redis.
pub async fn claim_port(store: &dyn Store, p: &PortRecord) -> StoreResult<bool> {
    store.set_value_if_absent(&keys::port_claim(p.host_port), &encode(p)?).await
}

/// Rewrites a claim the caller holds (bind address, token, description).
pub async fn update_port(store: &dyn Store, p: &PortRecord) -> StoreResult<()> {
    store.set_value(&keys::port_claim(p.host_port), &encode(p)?).await
}

/// Releases a claim.
pub async fn release_port(store: &dyn Store, port: u16) -> StoreResult<()> {
    store.kv_del(&keys::internal(&keys::port_claim(port))).await
}

/// Who holds `port`, if anyone.
pub async fn port_holder(store: &dyn Store, port: u16) -> StoreResult<Option<PortRecord>> {
    let key = keys::port_claim(port);
    store.get_value(&key).await?.map(|v| decode(&key, &v)).transpose()
}

/// Every claimed port, by number.
pub async fn list_ports(store: &dyn Store) -> StoreResult<Vec<PortRecord>> {
    let mut v: Vec<PortRecord> = store
        .kv_scan(&keys::internal(keys::PORT_CLAIMS))
        .await?
        .into_iter()
        .filter_map(|(k, v)| decode(&k, &v).ok())
        .collect();
    v.sort_by_key(|p| p.host_port);
    Ok(v)
}

/// This store's id for the `portcullis.store` label, made on first use.
pub async fn store_id(store: &dyn Store) -> StoreResult<String> {
    if let Some(id) = store.get_value(keys::SERVICES_STORE_ID).await? {
        return Ok(id);
    }
    let fresh = hex::encode(rand::random::<[u8; 8]>());
    store.set_value_if_absent(keys::SERVICES_STORE_ID, &fresh).await?;
    Ok(store.get_value(keys::SERVICES_STORE_ID).await?.unwrap_or(fresh))
}
