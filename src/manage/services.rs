//! Docker services: create, list, show, update (recreate), delete, start,
//! stop, restart, logs, stats, a proxy for a service, and cleanup. A
//! user-scope caller manages only its own services (others' are 404); every
//! container gets limits and our labels, and nothing beyond the fields below
//! reaches the engine.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{require_admin, Caller, ManageError, ManageResult, Manager};
use crate::config::{memory_bytes, NetworkMode};
use crate::model::{now_rfc3339, valid_hostname, Proxy, ValidationError};
use crate::services::engine::StatsSummary;
use crate::services::{events, ports, record, spec, target_url, DockerService, EngineError, PortRecord, ServiceType, RESERVED_NAMES};

/// Fields that would give a container more than the API offers. [`parse`]
/// names them so such a request is answered with a clear 422 instead of
/// the generic "unknown field".
const FORBIDDEN_FIELDS: [&str; 16] = [
    "privileged",
    "volumes",
    "binds",
    "mounts",
    "cap_add",
    "capabilities",
    "devices",
    "host_config",
    "security_opt",
    "pid_mode",
    "ipc_mode",
    "userns_mode",
    "network_mode",
    "user",
    "sysctls",
    "cgroup_parent",
];

/// Largest number of environment variables, labels, command words or ports.
const MAX_ITEMS: usize = 64;
/// Longest single value (an environment value, a command word, a label).
const MAX_VALUE_LEN: usize = 4096;
/// Most CPU cores a container may ask for.
const MAX_CPUS: f64 = 64.0;

/// One requested port (reference `port_configs` entry).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortConfigRequest {
    /// Port name within the service (default `http` for the first, `portN` after).
    #[serde(default)]
    pub name: Option<String>,
    /// Host port; allocated from the exposed range when absent.
    #[serde(default)]
    pub host: Option<u16>,
    /// Port inside the container (bridge mode; host mode uses the host port).
    #[serde(default)]
    pub container: Option<u16>,
    /// Bind address (default: the service's `bind_address`).
    #[serde(default)]
    pub bind: Option<String>,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// A token requests to this port must carry (stored only as its hash).
    #[serde(default)]
    pub source_token: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST /api/v1/services/`: the reference "Docker Service Schema". Read
/// with [`parse`], which names a refused host-access field before the
/// generic unknown-field check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique name; also the container name and the default hostname label.
    pub service_name: String,
    /// `docker` when given.
    #[serde(default)]
    pub service_type: Option<ServiceType>,
    /// Image to run (used as it is when present, pulled when missing).
    #[serde(default)]
    pub image: Option<String>,
    /// Dockerfile under `DOCKER_BUILD_DIR` to build instead.
    #[serde(default)]
    pub dockerfile_path: Option<String>,
    /// Port the program listens on inside the container (bridge mode).
    #[serde(default)]
    pub internal_port: Option<u16>,
    /// Deprecated single published port: same as one `port_configs` entry.
    #[serde(default)]
    pub external_port: Option<u16>,
    /// Memory limit (`512m`); default `DOCKER_DEFAULT_MEMORY_LIMIT`.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// CPU cores; default `DOCKER_DEFAULT_CPU_LIMIT`.
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// Environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Command (exec form).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The Docker network to create the container on (bridge mode; at most one;
    /// refused in host mode, where there are none to join).
    #[serde(default)]
    pub networks: Vec<String>,
    /// Extra container labels (not `portcullis.*`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Publish every `port_configs` entry, not only the first.
    #[serde(default)]
    pub expose_ports: bool,
    /// Ports of the service.
    #[serde(default)]
    pub port_configs: Vec<PortConfigRequest>,
    /// Default bind address of the ports (default 127.0.0.1).
    #[serde(default)]
    pub bind_address: Option<String>,
    /// Docker restart policy (default `no`).
    #[serde(default)]
    pub restart_policy: Option<String>,
    /// Also create the proxy `{name}.{BASE_DOMAIN}` for it.
    #[serde(default)]
    pub auto_proxy: bool,
}

/// `PUT /api/v1/services/{name}`: the fields that may change; the container
/// is recreated with them (ports stay as allocated).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    /// New image.
    #[serde(default)]
    pub image: Option<String>,
    /// New internal port (bridge mode).
    #[serde(default)]
    pub internal_port: Option<u16>,
    /// New memory limit.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// New CPU limit.
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// New environment (replaces the old).
    #[serde(default)]
    pub environment: Option<BTreeMap<String, String>>,
    /// New command.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// New labels (replace the old).
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// New restart policy.
    #[serde(default)]
    pub restart_policy: Option<String>,
}

/// Names one Docker service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceKey {
    /// The service's name.
    pub service_name: String,
}

/// Options of the Docker service list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceList {
    /// Only the caller's own services (also for the admin).
    #[serde(default)]
    pub owned_only: bool,
}

/// A change of the service `service_name` (the container is recreated).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceUpdate {
    /// The service's name.
    pub service_name: String,
    /// The fields to change.
    pub patch: ServicePatch,
}

/// `DELETE /api/v1/services/{name}` (the options are query parameters).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDelete {
    /// The service's name.
    pub service_name: String,
    /// Remove the record even when the engine cannot remove the container.
    #[serde(default)]
    pub force: bool,
    /// Remove the service's proxies too (default true).
    #[serde(default)]
    pub delete_proxy: Option<bool>,
}

/// `GET /api/v1/services/{name}/logs` (the options are query parameters).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceLogs {
    /// The service's name.
    pub service_name: String,
    /// Lines from the end (default 100, at most 10000).
    #[serde(default)]
    pub lines: Option<u32>,
    /// Prefix each line with its time.
    #[serde(default)]
    pub timestamps: bool,
    /// Keep streaming new output (REST only: a tool answers once).
    #[serde(default)]
    pub follow: bool,
}

/// A proxy for the service `service_name`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceProxyCreate {
    /// The service's name.
    pub service_name: String,
    /// Hostname and HTTPS (the REST body).
    #[serde(default)]
    pub options: ServiceProxyRequest,
}

/// `POST /api/v1/services/{name}/proxy`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceProxyRequest {
    /// Hostname (default `{name}.{BASE_DOMAIN}`).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Serve HTTPS too (the self-signed certificate until one is attached).
    #[serde(default)]
    pub enable_https: bool,
}

/// What creating a service did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceCreated {
    /// The service.
    #[serde(flatten)]
    pub service: DockerService,
    /// The proxy made for it (`auto_proxy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
}

/// What deleting a service removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceDeleted {
    /// `deleted`.
    pub status: &'static str,
    /// The service.
    pub service_name: String,
    /// Ports released.
    pub released_ports: Vec<u16>,
    /// Proxies deleted.
    pub deleted_proxies: Vec<String>,
}

/// What `cleanup` removed.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CleanupReport {
    /// Containers labelled as ours without a record (removed).
    pub removed_containers: Vec<String>,
    /// Records without a container (marked `missing`, their ports kept).
    pub missing_containers: Vec<String>,
    /// Port claims of services that no longer exist (released).
    pub released_ports: Vec<u16>,
}

/// The last lines of a service's output.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceLogText {
    /// The service.
    pub service_name: String,
    /// The output, as the container wrote it.
    pub logs: String,
}

/// Logs: the text, or a stream when following.
pub enum Logs {
    /// The last lines.
    Text(String),
    /// Output as it comes.
    Stream(BoxStream<'static, Result<Bytes, EngineError>>),
}

impl From<EngineError> for ManageError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(m) => ManageError::NotFound(m),
            EngineError::Refused(m) => ManageError::Conflict(m),
            other => ManageError::Engine(other.to_string()),
        }
    }
}

/// Reads a service request (REST body or MCP arguments): a host-access
/// field ([`FORBIDDEN_FIELDS`]), at the root or in `patch`, is refused
/// with a message saying why; anything else `T` does not know is the
/// usual unknown-field 422.
pub fn parse<T: DeserializeOwned>(v: Value) -> ManageResult<T> {
    let refused = |o: &Value| FORBIDDEN_FIELDS.iter().copied().find(|f| o.get(*f).is_some());
    if let Some(f) = refused(&v).or_else(|| v.get("patch").and_then(refused)) {
        return Err(ValidationError::new(
            f,
            "privileged mode, host mounts, capabilities and other host access are never accepted from the API",
        )
        .into());
    }
    super::from_json(v)
}

/// A service name: a DNS label (it becomes a hostname label and a container name).
fn check_name(name: &str) -> ManageResult<()> {
    if name.is_empty() || name.len() > 63 || !valid_hostname(name) || name.contains('.') {
        return Err(ValidationError::new("service_name", "1-63 lowercase letters, digits and '-' (a DNS label)").into());
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(ValidationError::new("service_name", format!("{name} is reserved")).into());
    }
    Ok(())
}

/// True when `text` matches the glob `pattern` (`*` = any run, `?` = one char).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn check_image(image: &str, allow: &[String]) -> ManageResult<()> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && !image.starts_with(['-', '.', '/'])
        && image.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if !ok {
        return Err(ValidationError::new("image", "not an image reference (name[:tag] or name@digest)").into());
    }
    if !allow.is_empty() && !allow.iter().any(|g| glob_match(g, image)) {
        return Err(ValidationError::new("image", format!("{image} is not in DOCKER_IMAGE_ALLOWLIST")).into());
    }
    Ok(())
}

fn check_memory(v: &str) -> ManageResult<String> {
    match memory_bytes(v) {
        Some(b) if b >= 6 << 20 => Ok(v.trim().to_ascii_lowercase()),
        _ => Err(ValidationError::new("memory_limit", "a size of at least 6m, e.g. 256m or 1g").into()),
    }
}

fn check_cpu(v: f64) -> ManageResult<f64> {
    if v.is_finite() && (0.01..=MAX_CPUS).contains(&v) {
        Ok(v)
    } else {
        Err(ValidationError::new("cpu_limit", format!("a number of cores from 0.01 to {MAX_CPUS}")).into())
    }
}

fn check_text(field: &str, v: &str) -> ManageResult<()> {
    if v.len() > MAX_VALUE_LEN || v.contains('\0') {
        return Err(ValidationError::new(field, format!("at most {MAX_VALUE_LEN} bytes, no NUL")).into());
    }
    Ok(())
}

fn check_environment(env: &BTreeMap<String, String>) -> ManageResult<()> {
    if env.len() > MAX_ITEMS {
        return Err(ValidationError::new("environment", format!("at most {MAX_ITEMS} variables")).into());
    }
    for (k, v) in env {
        let valid = k.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.len() <= 128
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(ValidationError::new(format!("environment.{k}"), "names are letters, digits and '_'").into());
        }
        check_text(&format!("environment.{k}"), v)?;
    }
    Ok(())
}

fn check_labels(labels: &BTreeMap<String, String>) -> ManageResult<()> {
    if labels.len() > MAX_ITEMS {
        return Err(ValidationError::new("labels", format!("at most {MAX_ITEMS} labels")).into());
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > 128 || k.starts_with("portcullis.") || k.contains('\0') {
            return Err(ValidationError::new(format!("labels.{k}"), "1-128 bytes, not under portcullis.").into());
        }
        check_text(&format!("labels.{k}"), v)?;
    }
    Ok(())
}

fn check_command(cmd: &Option<Vec<String>>) -> ManageResult<()> {
    if let Some(c) = cmd {
        if c.is_empty() || c.len() > MAX_ITEMS {
            return Err(ValidationError::new("command", format!("1 to {MAX_ITEMS} words")).into());
        }
        for w in c {
            check_text("command", w)?;
        }
    }
    Ok(())
}

fn check_restart(v: &str) -> ManageResult<String> {
    spec::restart_policy(v)
        .map(|_| v.to_string())
        .ok_or_else(|| ValidationError::new("restart_policy", "no, always, unless-stopped, on-failure or on-failure:N").into())
}

/// A bind address: an IP literal.
fn check_bind(field: &str, v: &str) -> ManageResult<IpAddr> {
    v.parse::<IpAddr>()
        .map_err(|_| ValidationError::new(field, "an IP address such as 127.0.0.1 or 0.0.0.0").into())
}

/// One network at most: it becomes the container's network mode when Docker
/// creates it; joining more would need a connect per network after create,
/// which this API does not do, and a list it silently cut short would lie.
fn check_networks(n: &[String]) -> ManageResult<()> {
    if n.len() > 1 {
        return Err(ValidationError::new("networks", "one network per service (the container is created on it)").into());
    }
    for net in n {
        let named = !net.is_empty()
            && net.len() <= 64
            && net.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !["host", "none", "default"].contains(&net.as_str());
        if !named {
            return Err(ValidationError::new("networks", format!("{net:?} is not a network name this API joins")).into());
        }
    }
    Ok(())
}

/// Most files and bytes a build context holds.
const MAX_CONTEXT_FILES: usize = 64;
const MAX_CONTEXT_BYTES: usize = 16 << 20;

/// The build context of the Dockerfile at `path`: it and the regular files
/// beside it (not subdirectories, never symlinks, which could leave
/// `DOCKER_BUILD_DIR`), so a `COPY` of a file next to it works. Returns the
/// files and the Dockerfile's name among them.
async fn build_context(path: &std::path::Path) -> std::io::Result<(Vec<(String, Vec<u8>)>, String)> {
    let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(invalid)?.to_string();
    let dir = path.parent().ok_or_else(invalid)?;
    if !tokio::fs::symlink_metadata(path).await?.is_file() {
        return Err(invalid());
    }
    let mut files = Vec::new();
    let mut total = 0;
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(e) = entries.next_entry().await? {
        let (Ok(file), Ok(meta)) = (e.file_name().into_string(), e.metadata().await) else {
            continue;
        };
        if !meta.is_file() || file.len() > 100 {
            continue;
        }
        let data = tokio::fs::read(e.path()).await?;
        total += data.len();
        if files.len() >= MAX_CONTEXT_FILES || total > MAX_CONTEXT_BYTES {
            return Err(invalid());
        }
        files.push((file, data));
    }
    Ok((files, name))
}

impl Manager {
    /// The record of `name` if the caller may see it; 404 otherwise.
    pub(super) async fn visible_service(&self, caller: &Caller, name: &str) -> ManageResult<DockerService> {
        match record::get(self.store.as_ref(), name).await? {
            Some(s) if caller.may_read(&s.owner_token_hash) => Ok(s),
            _ => Err(ManageError::NotFound(format!("service {name}"))),
        }
    }

    /// The record of `name` if the caller may change it; 404 otherwise.
    pub(super) async fn writable_service(&self, caller: &Caller, name: &str) -> ManageResult<DockerService> {
        let s = self.visible_service(caller, name).await?;
        if !caller.may_write(&s.owner_token_hash) {
            return Err(ManageError::Forbidden("this token may only read".into()));
        }
        Ok(s)
    }

    /// Turns a requested port into a port record (host port still to claim).
    pub(super) fn port_record(
        &self,
        caller: &Caller,
        service: &str,
        index: usize,
        req: &PortConfigRequest,
        default_bind: &str,
        internal_port: u16,
    ) -> ManageResult<PortRecord> {
        let field = format!("port_configs[{index}]");
        let name = req
            .name
            .clone()
            .unwrap_or_else(|| if index == 0 { "http".into() } else { format!("port{index}") });
        if !crate::model::valid_name(&name) || name.len() > 32 {
            return Err(ValidationError::new(format!("{field}.name"), "1-32 letters, digits, '-', '_', '.'").into());
        }
        if let Some(h) = req.host {
            if let Some(why) = ports::refusal(h) {
                return Err(ValidationError::new(format!("{field}.host"), why).into());
            }
        }
        let bind = req.bind.clone().unwrap_or_else(|| default_bind.to_string());
        check_bind(&format!("{field}.bind"), &bind)?;
        let protocol = req.protocol.clone().unwrap_or_else(|| "tcp".into());
        if protocol != "tcp" && protocol != "udp" {
            return Err(ValidationError::new(format!("{field}.protocol"), "tcp or udp").into());
        }
        if let Some(d) = &req.description {
            crate::model::check_text_len(&format!("{field}.description"), d, 500)?;
        }
        let source_token_hash = match &req.source_token {
            Some(t) if t.len() < 16 || t.len() > 256 => {
                return Err(ValidationError::new(format!("{field}.source_token"), "16 to 256 characters").into())
            }
            Some(t) => Some(crate::secrets::token_hash(t)),
            None => None,
        };
        let host_mode = self.config.docker.network_mode == NetworkMode::Host;
        Ok(PortRecord {
            service_name: service.to_string(),
            port_name: name,
            host_port: req.host.unwrap_or(0),
            container_port: if host_mode {
                req.host.unwrap_or(0)
            } else {
                req.container.unwrap_or(internal_port)
            },
            bind_address: bind,
            protocol,
            require_token: source_token_hash.is_some(),
            source_token_hash,
            owner_token_hash: caller.hash.clone(),
            description: req.description.clone(),
        })
    }

    /// Claims the port of `p` (allocating one when `host_port` is 0).
    pub(super) async fn claim_port(&self, p: PortRecord) -> ManageResult<PortRecord> {
        let bind = check_bind("bind_address", &p.bind_address)?;
        if p.host_port == 0 {
            return ports::allocate(self.store.as_ref(), &p, bind)
                .await?
                .ok_or_else(|| ManageError::Conflict("no free port in the exposed range".into()));
        }
        if !ports::claim(self.store.as_ref(), &p).await? {
            return Err(ManageError::Conflict(format!("port {} is already allocated", p.host_port)));
        }
        Ok(p)
    }

    async fn release_ports(&self, ps: &[PortRecord]) {
        for p in ps {
            if let Err(e) = record::release_port(self.store.as_ref(), p.host_port).await {
                tracing::warn!(port = p.host_port, error = %e, "cannot release a port claim");
            }
        }
    }

    /// Validates a create request into a record without ports.
    fn new_record(&self, caller: &Caller, req: &ServiceSpec) -> ManageResult<DockerService> {
        let d = &self.config.docker;
        check_name(&req.service_name)?;
        if req.service_type.is_some_and(|t| t != ServiceType::Docker) {
            return Err(ValidationError::new("service_type", "this endpoint creates docker services").into());
        }
        let image = match (&req.image, &req.dockerfile_path) {
            (Some(i), None) => {
                check_image(i, &d.image_allowlist)?;
                i.clone()
            }
            (None, Some(p)) => {
                require_admin(caller)?;
                if p.is_empty() || p.len() > 255 || p.starts_with('/') || p.split('/').any(|s| s == ".." || s.is_empty()) {
                    return Err(ValidationError::new("dockerfile_path", "a relative path under DOCKER_BUILD_DIR without '..'").into());
                }
                format!("portcullis-built/{}:latest", req.service_name)
            }
            _ => return Err(ValidationError::new("image", "give exactly one of image and dockerfile_path").into()),
        };
        check_environment(&req.environment)?;
        check_labels(&req.labels)?;
        check_command(&req.command)?;
        if d.network_mode == NetworkMode::Host && !req.networks.is_empty() {
            return Err(ValidationError::new(
                "networks",
                "networks cannot be joined in host network mode (DOCKER_NETWORK_MODE=host): the container shares the host's network",
            )
            .into());
        }
        check_networks(&req.networks)?;
        if req.port_configs.len() > 16 {
            return Err(ValidationError::new("port_configs", "at most 16 ports").into());
        }
        let bind_address = req.bind_address.clone().unwrap_or_else(|| "127.0.0.1".into());
        check_bind("bind_address", &bind_address)?;
        let now = now_rfc3339();
        Ok(DockerService {
            service_name: req.service_name.clone(),
            service_type: ServiceType::Docker,
            image,
            dockerfile_path: req.dockerfile_path.clone(),
            internal_port: req.internal_port.unwrap_or(80),
            memory_limit: match &req.memory_limit {
                Some(m) => check_memory(m)?,
                None if d.default_memory_bytes % (1 << 20) == 0 => format!("{}m", d.default_memory_bytes >> 20),
                None => format!("{}b", d.default_memory_bytes),
            },
            cpu_limit: check_cpu(req.cpu_limit.unwrap_or(d.default_cpus))?,
            pids_limit: d.pids_limit,
            environment: req.environment.clone(),
            command: req.command.clone(),
            networks: req.networks.clone(),
            labels: req.labels.clone(),
            expose_ports: req.expose_ports,
            port_configs: Vec::new(),
            bind_address,
            restart_policy: check_restart(req.restart_policy.as_deref().unwrap_or("no"))?,
            network_mode: d.network_mode,
            port: 0,
            target_url: String::new(),
            container_id: None,
            status: "creating".into(),
            health: None,
            exit_code: None,
            owner_token_hash: caller.hash.clone(),
            created_by: caller.name.clone(),
            created_at: now.clone(),
            updated_at: now,
        })
    }

    /// Sets the main port and target of `s` from its first port.
    fn set_main_port(s: &mut DockerService) {
        if let Some(first) = s.port_configs.first() {
            s.port = first.host_port;
            if s.network_mode == NetworkMode::Host {
                s.internal_port = first.host_port;
            }
            let bind = first.bind_address.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
            s.target_url = target_url(bind, first.host_port);
        }
    }

    /// Makes the image available (pull when missing, or build the Dockerfile).
    async fn provide_image(&self, s: &DockerService) -> ManageResult<()> {
        let engine = &self.engine;
        match &s.dockerfile_path {
            None => engine.ensure_image(&s.image).await.map_err(|e| match e {
                EngineError::Refused(m) | EngineError::NotFound(m) => ValidationError::new("image", m).into(),
                other => other.into(),
            }),
            Some(p) => {
                let path = self.config.docker.build_dir.join(p);
                let (context, name) = build_context(&path)
                    .await
                    .map_err(|_| ValidationError::new("dockerfile_path", format!("{p} is not a file under DOCKER_BUILD_DIR")))?;
                engine.build_image(&context, &name, &s.image).await.map_err(|e| match e {
                    EngineError::Refused(m) => ValidationError::new("dockerfile_path", m).into(),
                    other => other.into(),
                })
            }
        }
    }

    /// Creates and starts the container of `s`, recording its id and state.
    async fn run_container(&self, s: &mut DockerService) -> ManageResult<()> {
        let store_id = record::store_id(self.store.as_ref()).await?;
        let cfg = spec::container_config(s, self.config.docker.pids_limit, &store_id);
        let id = self.engine.create(&s.service_name, cfg).await?;
        s.container_id = Some(id);
        self.engine.start(&s.service_name).await?;
        self.refresh_state(s).await;
        Ok(())
    }

    /// Reads the container's state into `s`.
    async fn refresh_state(&self, s: &mut DockerService) {
        if let Ok(st) = self.engine.inspect(&s.service_name).await {
            let (status, health, exit) = events::status_of(st.as_ref());
            s.status = status;
            s.health = health;
            s.exit_code = exit;
            s.updated_at = now_rfc3339();
        }
    }

    /// Replaces the container of `s` with one built from the record as it is now.
    pub(super) async fn recreate(&self, s: &mut DockerService) -> ManageResult<()> {
        self.provide_image(s).await?;
        self.engine.remove(&s.service_name).await?;
        s.container_id = None;
        let r = self.run_container(s).await;
        s.updated_at = now_rfc3339();
        record::put(self.store.as_ref(), s).await?;
        r
    }

    /// Reads and stores the container's state only: the rest of the record
    /// may have changed meanwhile and is not written back.
    async fn store_state(&self, s: &mut DockerService) -> ManageResult<DockerService> {
        self.refresh_state(s).await;
        record::put_state(self.store.as_ref(), &s.service_name, &s.state()).await?;
        Ok(s.clone())
    }

    /// The proxy is built here rather than by `create_proxy`: its target is the
    /// service's own loopback port, which the user target rules would refuse
    /// for a user's proxy; the snapshot allows it for the service's owner.
    async fn create_service_proxy_for(&self, caller: &Caller, s: &DockerService, req: ServiceProxyRequest) -> ManageResult<Proxy> {
        let hostname = req
            .hostname
            .unwrap_or_else(|| format!("{}.{}", s.service_name, self.config.base_domain))
            .to_ascii_lowercase();
        let mut p: Proxy = super::from_json(serde_json::json!({
            "hostname": hostname,
            "target_url": s.target_url,
            "enable_https": req.enable_https,
        }))?;
        p.validate()?;
        self.check_claimable_host(caller, &p.hostname)?;
        p.owner_token_hash = s.owner_token_hash.clone();
        p.created_by = caller.name.clone();
        p.created_at = now_rfc3339();
        self.store.create_proxy(&p).await?;
        tracing::info!(hostname = %p.hostname, service = %s.service_name, by = %caller.name, "service proxy created");
        Ok(p.public())
    }
}

/// Creates a Docker service owned by the caller: ports claimed in the
/// store first (a taken port is 409), then the image, the container, and
/// optionally its proxy. A failure undoes what was done.
pub async fn create(m: &Manager, caller: &Caller, req: ServiceSpec) -> ManageResult<ServiceCreated> {
    let mut s = m.new_record(caller, &req)?;
    if record::get(m.store.as_ref(), &s.service_name).await?.is_some() || m.store.list_service_urls().await?.contains_key(&s.service_name) {
        return Err(ManageError::Conflict(format!("a service named {} already exists", s.service_name)));
    }
    let mut wanted = req.port_configs.clone();
    if let Some(p) = req.external_port {
        wanted.push(PortConfigRequest {
            host: Some(p),
            ..Default::default()
        });
    }
    if wanted.is_empty() {
        wanted.push(PortConfigRequest::default());
    }
    let mut records = Vec::with_capacity(wanted.len());
    for (i, w) in wanted.iter().enumerate() {
        records.push(m.port_record(caller, &s.service_name, i, w, &s.bind_address.clone(), s.internal_port)?);
    }
    let mut names: Vec<&str> = records.iter().map(|r| r.port_name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(ValidationError::new("port_configs", "port names must differ").into());
    }
    for r in records {
        match m.claim_port(r).await {
            Ok(p) => s.port_configs.push(p),
            Err(e) => {
                m.release_ports(&s.port_configs).await;
                return Err(e);
            }
        }
    }
    Manager::set_main_port(&mut s);
    if let Err(e) = record::create(m.store.as_ref(), &s).await {
        m.release_ports(&s.port_configs).await;
        return Err(e.into());
    }
    let started = async {
        m.provide_image(&s).await?;
        m.run_container(&mut s).await
    }
    .await;
    if let Err(e) = started {
        let _ = m.engine.remove(&s.service_name).await;
        let _ = record::delete(m.store.as_ref(), &s.service_name).await;
        m.release_ports(&s.port_configs).await;
        return Err(e);
    }
    record::put(m.store.as_ref(), &s).await?;
    tracing::info!(service = %s.service_name, image = %s.image, port = s.port, by = %caller.name, "service created");
    let proxy = if req.auto_proxy {
        Some(m.create_service_proxy_for(caller, &s, ServiceProxyRequest::default()).await?)
    } else {
        None
    };
    Ok(ServiceCreated { service: s, proxy })
}

/// Docker services the caller may see (`owned_only`: only its own, also for the admin).
pub async fn list(m: &Manager, caller: &Caller, req: ServiceList) -> ManageResult<Vec<DockerService>> {
    let owned_only = req.owned_only;
    Ok(record::list(m.store.as_ref())
        .await?
        .into_iter()
        .filter(|s| {
            if owned_only {
                caller.may_read(&s.owner_token_hash) && (!caller.is_admin() || s.owner_token_hash == caller.hash)
            } else {
                caller.may_read(&s.owner_token_hash)
            }
        })
        .collect())
}

/// One Docker service.
pub async fn get(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<DockerService> {
    m.visible_service(caller, &key.service_name).await
}

/// Applies `req` and recreates the container with it (ports unchanged).
pub async fn update(m: &Manager, caller: &Caller, req: ServiceUpdate) -> ManageResult<DockerService> {
    let (name, req) = (req.service_name.as_str(), req.patch);
    let mut s = m.writable_service(caller, name).await?;
    if let Some(i) = req.image {
        if s.dockerfile_path.is_some() {
            return Err(ValidationError::new("image", "this service is built from its dockerfile_path").into());
        }
        check_image(&i, &m.config.docker.image_allowlist)?;
        s.image = i;
    }
    if let Some(p) = req.internal_port {
        if s.network_mode == NetworkMode::Bridge {
            s.internal_port = p;
        }
    }
    if let Some(m) = req.memory_limit {
        s.memory_limit = check_memory(&m)?;
    }
    if let Some(c) = req.cpu_limit {
        s.cpu_limit = check_cpu(c)?;
    }
    if let Some(e) = req.environment {
        check_environment(&e)?;
        s.environment = e;
    }
    if req.command.is_some() {
        check_command(&req.command)?;
        s.command = req.command;
    }
    if let Some(l) = req.labels {
        check_labels(&l)?;
        s.labels = l;
    }
    if let Some(r) = req.restart_policy {
        s.restart_policy = check_restart(&r)?;
    }
    m.recreate(&mut s).await?;
    tracing::info!(service = %s.service_name, by = %caller.name, "service updated");
    Ok(s)
}

/// Deletes a service: its container, its port claims, and (unless
/// `delete_proxy` is false) the proxies that target it.
pub async fn delete(m: &Manager, caller: &Caller, opts: ServiceDelete) -> ManageResult<ServiceDeleted> {
    let name = opts.service_name.as_str();
    let s = m.writable_service(caller, name).await?;
    if let Err(e) = m.engine.remove(&s.service_name).await {
        if !opts.force {
            return Err(e.into());
        }
        tracing::warn!(service = %name, error = %e, "container not removed; deleting the record anyway (force)");
    }
    let mut deleted_proxies = Vec::new();
    if opts.delete_proxy.unwrap_or(true) {
        for p in m.store.list_proxies().await? {
            if p.target_url == s.target_url && p.owner_token_hash == s.owner_token_hash {
                m.store.delete_proxy(&p.hostname).await?;
                deleted_proxies.push(p.hostname);
            }
        }
    }
    record::delete(m.store.as_ref(), &s.service_name).await?;
    m.release_ports(&s.port_configs).await;
    tracing::info!(service = %name, by = %caller.name, "service deleted");
    Ok(ServiceDeleted {
        status: "deleted",
        service_name: s.service_name,
        released_ports: s.port_configs.iter().map(|p| p.host_port).collect(),
        deleted_proxies,
    })
}

/// Starts the container.
pub async fn start(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<DockerService> {
    let name = key.service_name.as_str();
    let mut s = m.writable_service(caller, name).await?;
    m.engine.start(name).await?;
    m.store_state(&mut s).await
}

/// Stops the container; its proxy answers 503 until it is started.
pub async fn stop(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<DockerService> {
    let name = key.service_name.as_str();
    let mut s = m.writable_service(caller, name).await?;
    m.engine.stop(name).await?;
    m.store_state(&mut s).await
}

/// Restarts the container.
pub async fn restart(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<DockerService> {
    let name = key.service_name.as_str();
    let mut s = m.writable_service(caller, name).await?;
    m.engine.restart(name).await?;
    m.store_state(&mut s).await
}

/// The container's output.
pub async fn logs(m: &Manager, caller: &Caller, q: ServiceLogs) -> ManageResult<Logs> {
    let name = q.service_name.as_str();
    m.visible_service(caller, name).await?;
    let lines = q.lines.unwrap_or(100);
    if lines > 10_000 {
        return Err(ValidationError::new("lines", "at most 10000").into());
    }
    let mut stream = m.engine.logs(name, lines, q.timestamps, q.follow).await?;
    if q.follow {
        return Ok(Logs::Stream(stream));
    }
    let mut out = Vec::new();
    use futures::StreamExt;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(Logs::Text(String::from_utf8_lossy(&out).into_owned()))
}

/// One sample of the container's resource use.
pub async fn stats(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<StatsSummary> {
    m.visible_service(caller, &key.service_name).await?;
    Ok(m.engine.stats(&key.service_name).await?)
}

/// Creates the proxy `{name}.{BASE_DOMAIN}` (or `hostname`) for a service.
pub async fn create_proxy(m: &Manager, caller: &Caller, req: ServiceProxyCreate) -> ManageResult<Proxy> {
    let s = m.writable_service(caller, &req.service_name).await?;
    m.create_service_proxy_for(caller, &s, req.options).await
}

/// Removes containers labelled as services of this store that have no record, marks
/// records whose container is gone, and releases port claims of services
/// that no longer exist (admin only: it spans every owner).
pub async fn cleanup(m: &Manager, caller: &Caller) -> ManageResult<CleanupReport> {
    require_admin(caller)?;
    let mut report = CleanupReport::default();
    let records = record::list(m.store.as_ref()).await?;
    let known: std::collections::HashSet<&str> = records.iter().map(|s| s.service_name.as_str()).collect();
    let store_id = record::store_id(m.store.as_ref()).await?;
    let containers = m.engine.list_ours(&store_id).await?;
    for c in &containers {
        if !known.contains(c.service_name.as_str()) {
            m.engine.remove(&c.id).await?;
            tracing::info!(container = %c.id, service = %c.service_name, "orphan container removed");
            report.removed_containers.push(c.id.clone());
        }
    }
    for s in &records {
        if !containers.iter().any(|c| c.service_name == s.service_name) {
            let mut st = s.state();
            st.status = "missing".into();
            st.updated_at = now_rfc3339();
            record::put_state(m.store.as_ref(), &s.service_name, &st).await?;
            report.missing_containers.push(s.service_name.clone());
        }
    }
    for p in record::list_ports(m.store.as_ref()).await? {
        if !known.contains(p.service_name.as_str()) {
            record::release_port(m.store.as_ref(), p.host_port).await?;
            report.released_ports.push(p.host_port);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_network_is_joined_and_a_longer_list_is_refused() {
        assert!(check_networks(&[]).is_ok());
        assert!(check_networks(&["proxy_network".into()]).is_ok());
        let two = check_networks(&["a".into(), "b".into()]).unwrap_err();
        assert!(format!("{two:?}").contains("one network per service"), "{two:?}");
        assert!(check_networks(&["host".into()]).is_err());
    }

    #[test]
    fn globs_match_like_shells() {
        assert!(glob_match("busybox*", "busybox:latest"));
        assert!(glob_match("docker.io/library/*", "docker.io/library/nginx:1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("nginx:1.2?", "nginx:1.25"));
        assert!(!glob_match("busybox", "busybox:latest"));
        assert!(!glob_match("nginx*", "evil/nginx"));
    }

    #[test]
    fn service_names_are_dns_labels_and_not_reserved() {
        assert!(check_name("my-app").is_ok());
        for bad in ["", "My-App", "a.b", "-x", "ports", "api", "cleanup", "a/b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
