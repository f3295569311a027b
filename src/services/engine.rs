//! The Docker engine through bollard: one lazily negotiated client and the
//! few calls services need. Engine failures become [`EngineError`]s that say
//! whether the engine is unreachable or refused the request.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::{
    Config, CreateContainerOptions, InspectContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    RestartContainerOptions, StatsOptions, StopContainerOptions,
};
use bollard::image::{BuildImageOptions, CreateImageOptions};
use bollard::system::EventsOptions;
use bollard::{ClientVersion, Docker};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::OnceCell;
use utoipa::ToSchema;

use crate::config::DockerConfig;

/// The label naming the service a container belongs to.
pub const LABEL_SERVICE: &str = "portcullis.service";
/// The label holding the owner's token hash.
pub const LABEL_OWNER: &str = "portcullis.owner";
/// The label holding the id of the store the service's record lives in.
pub const LABEL_STORE: &str = "portcullis.store";

/// Seconds a stop or restart waits before killing.
const STOP_GRACE_SECS: i64 = 5;
/// Seconds any single engine request may take (pulls and builds stream longer).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Why an engine call failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The engine cannot be reached (socket missing, daemon down).
    #[error("the Docker engine is unavailable: {0}")]
    Unavailable(String),
    /// The container or image does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The engine refused the request (bad image name, name in use...).
    #[error("{0}")]
    Refused(String),
    /// The engine failed while doing it.
    #[error("the Docker engine failed: {0}")]
    Failed(String),
}

impl From<bollard::errors::Error> for EngineError {
    fn from(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError { status_code: 404, message } => EngineError::NotFound(message),
            B::DockerResponseServerError { status_code, message } if (400..500).contains(&status_code) => EngineError::Refused(message),
            B::DockerResponseServerError { message, .. } => EngineError::Failed(message),
            B::DockerStreamError { error } => EngineError::Failed(error),
            B::JsonDataError { message, .. } => EngineError::Failed(format!("unreadable answer: {message}")),
            other => EngineError::Unavailable(other.to_string()),
        }
    }
}

/// Result alias.
pub type EngineResult<T> = Result<T, EngineError>;

/// What `inspect` tells about a container.
#[derive(Clone, Debug, Default)]
pub struct ContainerState {
    /// Container id.
    pub id: String,
    /// `created`, `running`, `exited`, `restarting`, `paused`, `dead`.
    pub status: String,
    /// Health check status, when the image has one.
    pub health: Option<String>,
    /// Exit code of the last run.
    pub exit_code: Option<i64>,
}

/// A container carrying our service label.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OurContainer {
    /// Container id.
    pub id: String,
    /// `portcullis.service`.
    pub service_name: String,
    /// `portcullis.owner`.
    pub owner: String,
    /// Docker's state word.
    pub state: String,
}

/// A one-shot resource summary (`GET /services/{name}/stats`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatsSummary {
    /// CPU use since the previous sample, in percent of one core times cores.
    pub cpu_percent: f64,
    /// Memory in use, bytes.
    pub memory_usage_bytes: u64,
    /// Memory limit, bytes.
    pub memory_limit_bytes: u64,
    /// Received bytes over every interface the container has (none in host mode).
    pub network_rx_bytes: u64,
    /// Sent bytes.
    pub network_tx_bytes: u64,
    /// Processes running.
    pub pids: u64,
    /// When the engine sampled.
    pub read_at: String,
}

/// The engine connection, negotiated on first use.
#[derive(Clone)]
pub struct Engine {
    cfg: DockerConfig,
    client: std::sync::Arc<OnceCell<Docker>>,
}

impl Engine {
    /// An engine for `DOCKER_HOST`; nothing is contacted until first use.
    pub fn new(cfg: DockerConfig) -> Self {
        Self {
            cfg,
            client: std::sync::Arc::new(OnceCell::new()),
        }
    }

    /// The client, connected and negotiated (`DOCKER_API_VERSION`, lowered
    /// to the daemon's when older). A failure is not cached: the next call
    /// tries again.
    async fn docker(&self) -> EngineResult<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let version = ClientVersion {
                    major_version: self.cfg.api_version.0,
                    minor_version: self.cfg.api_version.1,
                };
                let host = &self.cfg.host;
                let d = if host.starts_with("unix://") {
                    Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, &version)?
                } else {
                    Docker::connect_with_http(&host.replacen("tcp://", "http://", 1), REQUEST_TIMEOUT_SECS, &version)?
                };
                let negotiated = tokio::time::timeout(Duration::from_secs(10), d.negotiate_version())
                    .await
                    .map_err(|_| EngineError::Unavailable(format!("{host} did not answer in 10 s")))??;
                Ok(negotiated)
            })
            .await
    }

    /// Uses `image` when present; pulls it when missing. A failed pull is
    /// reported with the engine's words.
    pub async fn ensure_image(&self, image: &str) -> EngineResult<()> {
        let d = self.docker().await?;
        match d.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) => match EngineError::from(e) {
                EngineError::NotFound(_) => {}
                other => return Err(other),
            },
        }
        let opts = CreateImageOptions {
            from_image: image,
            ..Default::default()
        };
        let mut pull = d.create_image(Some(opts), None, None);
        while let Some(step) = pull.next().await {
            if let Err(e) = step {
                return Err(EngineError::Refused(format!("cannot pull image {image}: {}", EngineError::from(e))));
            }
        }
        Ok(())
    }

    /// Builds `tag` from the Dockerfile named `dockerfile` in `context`
    /// (file name, contents).
    pub async fn build_image(&self, context: &[(String, Vec<u8>)], dockerfile: &str, tag: &str) -> EngineResult<()> {
        let d = self.docker().await?;
        let opts = BuildImageOptions {
            dockerfile: dockerfile.to_string(),
            t: tag.to_string(),
            rm: true,
            ..Default::default()
        };
        let mut build = d.build_image(opts, None, Some(Bytes::from(context_tar(context))));
        while let Some(step) = build.next().await {
            match step {
                Ok(info) => {
                    if let Some(err) = info.error {
                        return Err(EngineError::Refused(format!("the image build failed: {err}")));
                    }
                }
                Err(e) => return Err(EngineError::Refused(format!("the image build failed: {}", EngineError::from(e)))),
            }
        }
        Ok(())
    }

    /// Creates container `name`; returns its id.
    pub async fn create(&self, name: &str, config: Config<String>) -> EngineResult<String> {
        let d = self.docker().await?;
        let opts = CreateContainerOptions {
            name: name.to_string(),
            platform: None,
        };
        Ok(d.create_container(Some(opts), config).await?.id)
    }

    /// Starts a container (already running is fine).
    pub async fn start(&self, name: &str) -> EngineResult<()> {
        match self.docker().await?.start_container::<String>(name, None).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            r => Ok(r?),
        }
    }

    /// Stops a container (already stopped is fine).
    pub async fn stop(&self, name: &str) -> EngineResult<()> {
        let opts = StopContainerOptions { t: STOP_GRACE_SECS };
        match self.docker().await?.stop_container(name, Some(opts)).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            r => Ok(r?),
        }
    }

    /// Restarts a container.
    pub async fn restart(&self, name: &str) -> EngineResult<()> {
        let opts = RestartContainerOptions {
            t: STOP_GRACE_SECS as isize,
        };
        Ok(self.docker().await?.restart_container(name, Some(opts)).await?)
    }

    /// Removes a container and its anonymous volumes; a missing one is fine.
    pub async fn remove(&self, name: &str) -> EngineResult<()> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker().await?.remove_container(name, Some(opts)).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            r => Ok(r?),
        }
    }

    /// The container's state, `None` when it does not exist.
    pub async fn inspect(&self, name: &str) -> EngineResult<Option<ContainerState>> {
        let d = self.docker().await?;
        let c = match d.inspect_container(name, None::<InspectContainerOptions>).await {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let state = c.state.unwrap_or_default();
        Ok(Some(ContainerState {
            id: c.id.unwrap_or_default(),
            status: state.status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            exit_code: state.exit_code,
        }))
    }

    /// The container's output: the last `tail` lines, then (with `follow`)
    /// whatever it writes until it stops or the reader goes away.
    pub async fn logs(
        &self,
        name: &str,
        tail: u32,
        timestamps: bool,
        follow: bool,
    ) -> EngineResult<BoxStream<'static, EngineResult<Bytes>>> {
        let d = self.docker().await?.clone();
        // A missing container fails here, before any byte is streamed.
        if self.inspect(name).await?.is_none() {
            return Err(EngineError::NotFound(format!("container {name}")));
        }
        let opts = LogsOptions::<String> {
            follow,
            stdout: true,
            stderr: true,
            timestamps,
            tail: tail.to_string(),
            ..Default::default()
        };
        Ok(log_stream(d, name.to_string(), opts))
    }

    /// One sample of CPU, memory, network and process counts.
    pub async fn stats(&self, name: &str) -> EngineResult<StatsSummary> {
        let d = self.docker().await?;
        let opts = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let s = d
            .stats(name, Some(opts))
            .next()
            .await
            .ok_or_else(|| EngineError::Failed("the engine sent no statistics".into()))??;
        let cpu_delta = s
            .cpu_stats
            .cpu_usage
            .total_usage
            .saturating_sub(s.precpu_stats.cpu_usage.total_usage);
        let sys_delta = s
            .cpu_stats
            .system_cpu_usage
            .unwrap_or(0)
            .saturating_sub(s.precpu_stats.system_cpu_usage.unwrap_or(0));
        let cpus = s.cpu_stats.online_cpus.unwrap_or(1).max(1);
        let cpu_percent = if sys_delta > 0 {
            cpu_delta as f64 / sys_delta as f64 * cpus as f64 * 100.0
        } else {
            0.0
        };
        let (rx, tx) = s
            .networks
            .iter()
            .flatten()
            .fold((0, 0), |(rx, tx), (_, n)| (rx + n.rx_bytes, tx + n.tx_bytes));
        Ok(StatsSummary {
            cpu_percent,
            memory_usage_bytes: s.memory_stats.usage.unwrap_or(0),
            memory_limit_bytes: s.memory_stats.limit.unwrap_or(0),
            network_rx_bytes: rx,
            network_tx_bytes: tx,
            pids: s.pids_stats.current.unwrap_or(0),
            read_at: s.read,
        })
    }

    /// Every container labelled as a service of the store `store_id`, running or not.
    pub async fn list_ours(&self, store_id: &str) -> EngineResult<Vec<OurContainer>> {
        let d = self.docker().await?;
        let labels = vec![LABEL_SERVICE.to_string(), format!("{LABEL_STORE}={store_id}")];
        let opts = ListContainersOptions::<String> {
            all: true,
            filters: HashMap::from([("label".to_string(), labels)]),
            ..Default::default()
        };
        Ok(d.list_containers(Some(opts))
            .await?
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                OurContainer {
                    id: c.id.unwrap_or_default(),
                    service_name: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                    owner: labels.get(LABEL_OWNER).cloned().unwrap_or_default(),
                    state: c.state.unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Container events of our containers as `(service name, action)`,
    /// until the engine closes the stream.
    pub async fn events(&self) -> EngineResult<BoxStream<'static, EngineResult<(String, String)>>> {
        let d = self.docker().await?.clone();
        let opts = EventsOptions::<String> {
            filters: HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("label".to_string(), vec![LABEL_SERVICE.to_string()]),
            ]),
            ..Default::default()
        };
        let s = d.events(Some(opts)).map(|ev| {
            let ev = ev?;
            let action = ev.action.unwrap_or_default();
            let service = ev
                .actor
                .and_then(|a| a.attributes)
                .and_then(|mut a| a.remove(LABEL_SERVICE))
                .unwrap_or_default();
            Ok((service, action))
        });
        Ok(s.boxed())
    }
}

/// The log stream, owning its client (the response body outlives the handler).
fn log_stream(d: Docker, name: String, opts: LogsOptions<String>) -> BoxStream<'static, EngineResult<Bytes>> {
    futures::stream::once(async move {
        d.logs(&name, Some(opts))
            .map(|r| r.map(|o| o.into_bytes()).map_err(EngineError::from))
    })
    .flatten()
    .boxed()
}

/// A ustar archive of regular files: the build context (a Dockerfile and
/// the files next to it; no tar dependency for 512-byte headers).
fn context_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
        let octal = |field: &mut [u8], v: u64| {
            let s = format!("{:0width$o}\0", v, width = field.len() - 1);
            field.copy_from_slice(s.as_bytes());
        };
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 0);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[cfg(test)]
mod tests {
    use super::context_tar;

    #[test]
    fn tar_of_files_has_valid_headers_and_padding() {
        let t = context_tar(&[("Dockerfile".into(), b"FROM busybox\n".to_vec()), ("a".into(), vec![b'x'; 513])]);
        assert_eq!(t.len(), 512 + 512 + 512 + 1024 + 1024);
        assert_eq!(&t[1024..1025], b"a");
        assert_eq!(&t[..10], b"Dockerfile");
        assert_eq!(&t[257..262], b"ustar");
        assert_eq!(&t[512..525], b"FROM busybox\n");
        let stored: u64 = u64::from_str_radix(std::str::from_utf8(&t[148..154]).unwrap(), 8).unwrap();
        let mut h = t[..512].to_vec();
        h[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, h.iter().map(|b| u64::from(*b)).sum::<u64>());
    }
}
