//! Docker services settings (issue 18): where the engine is, which API
//! version to speak, how containers are networked, what images are allowed
//! and the resource limits every container gets when the request sets none.

use super::{parse, raw, ConfigError};

/// Docker engine address.
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// Engine API version to speak first (negotiated down when the daemon is older).
pub const DOCKER_API_VERSION: &str = "DOCKER_API_VERSION";
/// `bridge` (ports published) or `host` (the container binds its port itself).
pub const DOCKER_NETWORK_MODE: &str = "DOCKER_NETWORK_MODE";
/// Comma-separated image globs a service may use (empty: any image).
pub const DOCKER_IMAGE_ALLOWLIST: &str = "DOCKER_IMAGE_ALLOWLIST";
/// Memory limit of a container whose request sets none.
pub const DOCKER_DEFAULT_MEMORY_LIMIT: &str = "DOCKER_DEFAULT_MEMORY_LIMIT";
/// CPU limit (cores) of a container whose request sets none.
pub const DOCKER_DEFAULT_CPU_LIMIT: &str = "DOCKER_DEFAULT_CPU_LIMIT";
/// Process limit of every container.
pub const DOCKER_PIDS_LIMIT: &str = "DOCKER_PIDS_LIMIT";
/// Directory `dockerfile_path` is relative to (builds read nothing outside it).
pub const DOCKER_BUILD_DIR: &str = "DOCKER_BUILD_DIR";

/// How service containers reach the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Docker's bridge network; `port_configs` are published on the host.
    Bridge,
    /// The host's network; the container binds its allocated port itself.
    Host,
}

/// Everything the Docker service manager needs from the environment.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// `unix:///path` or `tcp://host:port` / `http://host:port`.
    pub host: String,
    /// `(major, minor)` of the API version spoken first.
    pub api_version: (usize, usize),
    /// Network mode of every service container.
    pub network_mode: NetworkMode,
    /// Image globs (`*` matches any run of characters); empty allows any image.
    pub image_allowlist: Vec<String>,
    /// Default memory limit in bytes.
    pub default_memory_bytes: i64,
    /// Default CPU limit in cores.
    pub default_cpus: f64,
    /// Process limit.
    pub pids_limit: i64,
    /// Where Dockerfiles live.
    pub build_dir: std::path::PathBuf,
}

/// Parses a Docker memory size (`512m`, `1g`, `65536`, `100k`) into bytes.
pub fn memory_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: i64 = num.parse().ok()?;
    (n > 0).then(|| n.checked_mul(mult)).flatten()
}

fn bad(var: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError {
        var,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Reads and checks the Docker variables.
pub(super) fn docker_config() -> Result<DockerConfig, ConfigError> {
    let host = raw(DOCKER_HOST).unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    if !["unix://", "tcp://", "http://"].iter().any(|p| host.starts_with(p)) {
        return Err(bad(
            DOCKER_HOST,
            &host,
            "expected unix:///path, tcp://host:port or http://host:port",
        ));
    }
    let version = raw(DOCKER_API_VERSION).unwrap_or_else(|| "1.41".into());
    let api_version = version
        .trim()
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| bad(DOCKER_API_VERSION, &version, "expected MAJOR.MINOR, e.g. 1.41"))?;
    let network_mode = match raw(DOCKER_NETWORK_MODE).map(|m| m.trim().to_ascii_lowercase()).as_deref() {
        None | Some("bridge") => NetworkMode::Bridge,
        Some("host") => NetworkMode::Host,
        Some(other) => return Err(bad(DOCKER_NETWORK_MODE, other, "expected bridge or host")),
    };
    let image_allowlist = raw(DOCKER_IMAGE_ALLOWLIST)
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let memory = raw(DOCKER_DEFAULT_MEMORY_LIMIT).unwrap_or_else(|| "512m".into());
    let default_memory_bytes = memory_bytes(&memory).filter(|b| *b >= 6 << 20).ok_or_else(|| {
        bad(
            DOCKER_DEFAULT_MEMORY_LIMIT,
            &memory,
            "expected a size of at least 6m, e.g. 512m or 1g",
        )
    })?;
    let default_cpus: f64 = parse(DOCKER_DEFAULT_CPU_LIMIT, 1.0, "a number of CPU cores, e.g. 0.5")?;
    if !(default_cpus > 0.0 && default_cpus <= 1024.0) {
        return Err(bad(DOCKER_DEFAULT_CPU_LIMIT, &default_cpus.to_string(), "must be above 0"));
    }
    let pids_limit: i64 = parse(DOCKER_PIDS_LIMIT, 256, "a process count")?;
    if pids_limit < 1 {
        return Err(bad(DOCKER_PIDS_LIMIT, &pids_limit.to_string(), "must be at least 1"));
    }
    Ok(DockerConfig {
        host,
        api_version,
        network_mode,
        image_allowlist,
        default_memory_bytes,
        default_cpus,
        pids_limit,
        build_dir: raw(DOCKER_BUILD_DIR).unwrap_or_else(|| "./dockerfiles".into()).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::memory_bytes;

    #[test]
    fn memory_sizes_parse_like_docker() {
        assert_eq!(memory_bytes("512m"), Some(512 << 20));
        assert_eq!(memory_bytes("1G"), Some(1 << 30));
        assert_eq!(memory_bytes("64mb"), Some(64 << 20));
        assert_eq!(memory_bytes("4096"), Some(4096));
        for bad in ["", "m", "-1m", "0", "1t", "x"] {
            assert_eq!(memory_bytes(bad), None, "{bad}");
        }
    }
}
