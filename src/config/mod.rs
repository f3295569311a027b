//! Typed configuration read once from the environment (and `.env`), validated
//! before anything starts, so a bad value stops start-up with one clear line.

use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

mod docker;
mod networks;
mod oauth;
mod request_log;
pub use docker::{memory_bytes, DockerConfig, NetworkMode};
pub use oauth::{is_loopback_host, GithubConfig, LoginProvider, OAuthConfig, OidcConfig, UserList};
pub use request_log::RequestLogConfig;

/// Every environment variable the program reads, named once.
pub mod vars {
    /// Bind address of the data plane listeners.
    pub const SERVER_HOST: &str = "SERVER_HOST";
    /// Plain HTTP listener port.
    pub const HTTP_PORT: &str = "HTTP_PORT";
    /// HTTPS listener port.
    pub const HTTPS_PORT: &str = "HTTPS_PORT";
    /// PROXY protocol listener port (0 disables it).
    pub const PROXY_PROTOCOL_PORT: &str = "PROXY_PROTOCOL_PORT";
    /// Bind address of the control plane.
    pub const API_HOST: &str = "API_HOST";
    /// Control plane port.
    pub const API_PORT: &str = "API_PORT";
    /// Store backend: `redis` (default) or `embedded` (single node, no Redis).
    pub const STORE: &str = "STORE";
    /// File of the embedded store.
    pub const STORE_PATH: &str = "STORE_PATH";
    /// Redis connection URL.
    pub const REDIS_URL: &str = "REDIS_URL";
    /// Redis password, used when the URL carries none.
    pub const REDIS_PASSWORD: &str = "REDIS_PASSWORD";
    /// Bootstrap admin token.
    pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
    /// Certificate e-mail of the bootstrap admin.
    pub const ADMIN_EMAIL: &str = "ADMIN_EMAIL";
    /// Base domain for the authorization server and service proxies.
    pub const BASE_DOMAIN: &str = "BASE_DOMAIN";
    /// Log level.
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
    /// Common name of the fallback self-signed certificate.
    pub const SELF_SIGNED_CN: &str = "SELF_SIGNED_CN";
    /// Validity of the self-signed certificate in days.
    pub const SELF_SIGNED_DAYS: &str = "SELF_SIGNED_DAYS";
    /// Upstream connect timeout in seconds.
    pub const PROXY_CONNECT_TIMEOUT: &str = "PROXY_CONNECT_TIMEOUT";
    /// Upstream response timeout in seconds.
    pub const PROXY_REQUEST_TIMEOUT: &str = "PROXY_REQUEST_TIMEOUT";
    /// Key that encrypts secrets at rest (token values, private keys).
    pub const SECRET_KEY: &str = "SECRET_KEY";
    /// Seconds between full snapshot reconciles.
    pub const RECONCILE_INTERVAL: &str = "RECONCILE_INTERVAL";
    /// Seconds to wait for Redis at start-up before giving up.
    pub const REDIS_STARTUP_TIMEOUT: &str = "REDIS_STARTUP_TIMEOUT";
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub const SHUTDOWN_GRACE_PERIOD: &str = "SHUTDOWN_GRACE_PERIOD";
    /// Worker threads of the data plane.
    pub const PROXY_THREADS: &str = "PROXY_THREADS";
    /// Production ACME directory.
    pub const ACME_DIRECTORY_URL: &str = "ACME_DIRECTORY_URL";
    /// Staging ACME directory.
    pub const ACME_STAGING_URL: &str = "ACME_STAGING_URL";
    /// PEM file of a CA that signs the ACME directory's own HTTPS certificate.
    pub const ACME_CA_BUNDLE: &str = "ACME_CA_BUNDLE";
    /// Order polls before giving up.
    pub const ACME_POLL_MAX_ATTEMPTS: &str = "ACME_POLL_MAX_ATTEMPTS";
    /// Seconds between order polls.
    pub const ACME_POLL_INTERVAL_SECONDS: &str = "ACME_POLL_INTERVAL_SECONDS";
    /// Seconds to wait before the first poll.
    pub const ACME_POLL_INITIAL_WAIT: &str = "ACME_POLL_INITIAL_WAIT";
    /// Seconds between renewal checks.
    pub const RENEWAL_CHECK_INTERVAL: &str = "RENEWAL_CHECK_INTERVAL";
    /// Renew certificates expiring within this many days.
    pub const RENEWAL_THRESHOLD_DAYS: &str = "RENEWAL_THRESHOLD_DAYS";
    /// Seconds a finished generation status is kept.
    pub const CERT_STATUS_RETENTION_SECONDS: &str = "CERT_STATUS_RETENTION_SECONDS";
    /// Concurrent ACME orders per instance.
    pub const CERT_GEN_MAX_WORKERS: &str = "CERT_GEN_MAX_WORKERS";
    /// RSA key size of issued certificates.
    pub const RSA_KEY_SIZE: &str = "RSA_KEY_SIZE";
    /// Base URL of the admin API for the CLI.
    pub const API_URL: &str = "API_URL";
    /// Seconds a client has for a whole HTTP/1 request head.
    pub const CLIENT_HEADER_TIMEOUT: &str = "CLIENT_HEADER_TIMEOUT";
    /// Seconds an HTTP/1.1 connection may idle between requests.
    pub const KEEPALIVE_TIMEOUT: &str = "KEEPALIVE_TIMEOUT";
    /// Seconds an HTTP/2 connection may idle with no open stream.
    pub const HTTP2_IDLE_TIMEOUT: &str = "HTTP2_IDLE_TIMEOUT";
    /// Seconds a read of a request body may wait for data.
    pub const CLIENT_BODY_TIMEOUT: &str = "CLIENT_BODY_TIMEOUT";
    /// Largest request head in bytes (larger: 431).
    pub const MAX_REQUEST_HEADER_BYTES: &str = "MAX_REQUEST_HEADER_BYTES";
    /// Open connections allowed per client address (0: no limit).
    pub const MAX_CONNECTIONS_PER_IP: &str = "MAX_CONNECTIONS_PER_IP";
    /// CIDRs of the load balancers whose PROXY headers and forwarding headers are believed.
    pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
    /// Expect a PROXY header on the HTTPS listener too.
    pub const HTTPS_PROXY_PROTOCOL: &str = "HTTPS_PROXY_PROTOCOL";
    /// Registers the MCP conformance suite's fixture tools, prompts and resources on `/mcp`.
    pub const MCP_CONFORMANCE_FIXTURES: &str = "MCP_CONFORMANCE_FIXTURES";
    /// Unix socket over which `serve --upgrade` takes the listeners over.
    pub const UPGRADE_SOCKET: &str = "UPGRADE_SOCKET";
    /// `false` turns off the automatic certificate order when a proxy is created.
    pub const ACME_AUTO: &str = "ACME_AUTO";
    /// Networks (CIDR list) that targets of non-admin owners may reach even
    /// though they are loopback, link-local or unspecified.
    pub const USER_TARGET_ALLOW_NETWORKS: &str = "USER_TARGET_ALLOW_NETWORKS";
    pub use super::request_log::{ACCESS_LOG, LOG_FORMAT, LOG_RETENTION_HOURS, REQUEST_LOG};
}

/// A configuration value that cannot be used; the message names the variable.
#[derive(Debug, Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// The value it had.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The whole runtime configuration of `portcullis serve`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Data plane bind address.
    pub server_host: IpAddr,
    /// HTTP port.
    pub http_port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// PROXY protocol port; 0 disables the listener.
    pub proxy_protocol_port: u16,
    /// Control plane bind address.
    pub api_host: IpAddr,
    /// Control plane port.
    pub api_port: u16,
    /// Where state lives.
    pub store: StoreBackend,
    /// Redis URL with the password filled in.
    pub redis_url: String,
    /// Bootstrap admin token, if any.
    pub admin_token: Option<String>,
    /// E-mail of the bootstrap admin.
    pub admin_email: Option<String>,
    /// Base domain.
    pub base_domain: String,
    /// tracing filter directive derived from `LOG_LEVEL`.
    pub log_filter: String,
    /// CN of the self-signed fallback certificate.
    pub self_signed_cn: String,
    /// Self-signed validity in days.
    pub self_signed_days: u32,
    /// Upstream connect timeout.
    pub proxy_connect_timeout: Duration,
    /// Upstream response timeout.
    pub proxy_request_timeout: Duration,
    /// 32-byte key for secrets at rest.
    pub secret_key: [u8; 32],
    /// Interval of the full snapshot reconcile.
    pub reconcile_interval: Duration,
    /// How long start-up waits for Redis.
    pub redis_startup_timeout: Duration,
    /// Grace period for in-flight requests on SIGTERM.
    pub shutdown_grace_period: Duration,
    /// Data plane worker threads.
    pub proxy_threads: usize,
    /// Client deadlines and limits of the data plane.
    pub limits: ClientLimits,
    /// Load balancers whose PROXY headers and forwarding headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The HTTPS listener expects a PROXY header before the TLS handshake.
    pub https_proxy_protocol: bool,
    /// Unix socket path of the zero-downtime upgrade hand-over.
    pub upgrade_socket: String,
    /// ACME settings.
    pub acme: AcmeConfig,
    /// OAuth authorization server settings.
    pub oauth: OAuthConfig,
    /// `USER_TARGET_ALLOW_NETWORKS`: local networks non-admin targets may reach.
    pub user_target_allow_networks: Vec<Cidr>,
    /// Access log, request-log store, retention and process log format.
    pub request_log: RequestLogConfig,
    /// Docker services: engine, network mode, image allowlist, default limits.
    pub docker: DockerConfig,
    /// `/mcp` also serves the official conformance suite's fixtures (the
    /// `test_*` tools and prompts, the task tools `greet`, `slow_compute`,
    /// `failing_job`, `protocol_error_job`, `confirm_delete`, `multi_input`,
    /// `json_schema_2020_12_tool`, and `test://` resources): for running
    /// the suite only, never in production.
    pub mcp_conformance_fixtures: bool,
}

/// Deadlines and limits for data plane clients (defaults close to nginx's).
#[derive(Clone, Copy, Debug)]
pub struct ClientLimits {
    /// A whole HTTP/1 request head, from the connection's start or from the
    /// first byte of a next request (nginx `client_header_timeout`, 60 s).
    pub header_timeout: Duration,
    /// Idle HTTP/1.1 connection between requests (nginx `keepalive_timeout`, 75 s).
    pub keepalive_timeout: Duration,
    /// Idle HTTP/2 connection with no open stream (nginx uses `keepalive_timeout`, 75 s).
    pub http2_idle_timeout: Duration,
    /// Silence while reading a request body (nginx `client_body_timeout`, 60 s).
    pub body_timeout: Duration,
    /// Largest request head in bytes, HTTP/1 head or HTTP/2 header list (64 KiB).
    pub max_header_bytes: usize,
    /// Open connections per client address; 0 is no limit.
    pub max_connections_per_ip: usize,
}

/// Largest `MAX_REQUEST_HEADER_BYTES`: pingora's own fixed bound.
const MAX_HEADER_BYTES_CEILING: usize = 1024 * 1024;

fn client_limits() -> Result<ClientLimits, ConfigError> {
    let max_header_bytes: usize = parse(vars::MAX_REQUEST_HEADER_BYTES, 64 * 1024, "a number of bytes")?;
    if !(1024..=MAX_HEADER_BYTES_CEILING).contains(&max_header_bytes) {
        return Err(ConfigError {
            var: vars::MAX_REQUEST_HEADER_BYTES,
            value: max_header_bytes.to_string(),
            reason: format!("must be between 1024 and {MAX_HEADER_BYTES_CEILING}"),
        });
    }
    Ok(ClientLimits {
        header_timeout: seconds(vars::CLIENT_HEADER_TIMEOUT, 60)?,
        keepalive_timeout: seconds(vars::KEEPALIVE_TIMEOUT, 75)?,
        http2_idle_timeout: seconds(vars::HTTP2_IDLE_TIMEOUT, 75)?,
        body_timeout: seconds(vars::CLIENT_BODY_TIMEOUT, 60)?,
        max_header_bytes,
        max_connections_per_ip: parse(vars::MAX_CONNECTIONS_PER_IP, 0, "a connection count (0: no limit)")?,
    })
}

/// An address block (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net: addr, prefix })
    }

    /// True when `ip` (IPv4-mapped IPv6 counts as IPv4) lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `TRUSTED_PROXIES`: CIDRs separated by commas or spaces (default none).
fn trusted_proxies() -> Result<Vec<Cidr>, ConfigError> {
    let Some(v) = raw(vars::TRUSTED_PROXIES) else {
        return Ok(Vec::new());
    };
    v.split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| {
            Cidr::parse(p).ok_or_else(|| ConfigError {
                var: vars::TRUSTED_PROXIES,
                value: v.clone(),
                reason: format!("{p:?} is not an address or CIDR block"),
            })
        })
        .collect()
}

fn boolean(var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match raw(var).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError {
            var,
            value: other.to_string(),
            reason: "expected true or false".into(),
        }),
    }
}

/// ACME issuance and renewal settings.
#[derive(Clone, Debug)]
pub struct AcmeConfig {
    /// Production directory URL.
    pub directory_url: String,
    /// Staging directory URL.
    pub staging_url: String,
    /// Extra root for the directory's HTTPS (private CAs, tests).
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Order polls before giving up.
    pub poll_max_attempts: u32,
    /// Time between polls.
    pub poll_interval: Duration,
    /// Wait before the first poll.
    pub poll_initial_wait: Duration,
    /// Time between renewal checks.
    pub renewal_check_interval: Duration,
    /// Renew when expiring within this many days.
    pub renewal_threshold_days: i64,
    /// How long a finished status is kept.
    pub status_retention: Duration,
    /// Concurrent orders per instance.
    pub max_workers: usize,
    /// RSA key size.
    pub rsa_key_size: u32,
    /// Order a certificate automatically when an HTTPS proxy is created (`ACME_AUTO`).
    pub auto: bool,
}

/// An http(s) URL from `var` (or `default`), checked.
fn http_url(var: &'static str, default: &str) -> Result<String, ConfigError> {
    let v = raw(var).unwrap_or_else(|| default.to_string());
    crate::model::validate_http_url(var, &v).map_err(|e| ConfigError {
        var,
        value: v.clone(),
        reason: e.message,
    })?;
    Ok(v)
}

/// A path from `var` that must name an existing file, if set.
fn existing_file(var: &'static str) -> Result<Option<std::path::PathBuf>, ConfigError> {
    match raw(var).map(std::path::PathBuf::from) {
        Some(p) if !p.is_file() => Err(ConfigError {
            var,
            value: p.display().to_string(),
            reason: "file does not exist".into(),
        }),
        other => Ok(other),
    }
}

fn acme_config() -> Result<AcmeConfig, ConfigError> {
    let ca_bundle = existing_file(vars::ACME_CA_BUNDLE)?;
    let rsa_key_size: u32 = parse(vars::RSA_KEY_SIZE, 2048, "2048, 3072 or 4096")?;
    if ![2048, 3072, 4096].contains(&rsa_key_size) {
        return Err(ConfigError {
            var: vars::RSA_KEY_SIZE,
            value: rsa_key_size.to_string(),
            reason: "expected 2048, 3072 or 4096".into(),
        });
    }
    let max_workers: usize = parse(vars::CERT_GEN_MAX_WORKERS, 5, "a worker count")?;
    if max_workers == 0 {
        return Err(ConfigError {
            var: vars::CERT_GEN_MAX_WORKERS,
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(AcmeConfig {
        directory_url: http_url(vars::ACME_DIRECTORY_URL, "https://acme-v02.api.letsencrypt.org/directory")?,
        staging_url: http_url(vars::ACME_STAGING_URL, "https://acme-staging-v02.api.letsencrypt.org/directory")?,
        ca_bundle,
        poll_max_attempts: parse(vars::ACME_POLL_MAX_ATTEMPTS, 60, "a number of attempts")?,
        poll_interval: seconds(vars::ACME_POLL_INTERVAL_SECONDS, 2)?,
        poll_initial_wait: Duration::from_secs(parse(vars::ACME_POLL_INITIAL_WAIT, 0, "a whole number of seconds")?),
        renewal_check_interval: seconds(vars::RENEWAL_CHECK_INTERVAL, 86_400)?,
        renewal_threshold_days: parse(vars::RENEWAL_THRESHOLD_DAYS, 30, "a number of days")?,
        status_retention: seconds(vars::CERT_STATUS_RETENTION_SECONDS, 300)?,
        max_workers,
        rsa_key_size,
        auto: boolean(vars::ACME_AUTO, true)?,
    })
}

/// Reads a variable, treating an empty value as unset.
fn raw(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(var: &'static str, default: T, what: &str) -> Result<T, ConfigError> {
    match raw(var) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            var,
            value: v.clone(),
            reason: format!("expected {what}"),
        }),
    }
}

fn port(var: &'static str, default: u16, allow_zero: bool) -> Result<u16, ConfigError> {
    let p: u16 = parse(var, default, "a port number 1-65535")?;
    if p == 0 && !allow_zero {
        return Err(ConfigError {
            var,
            value: "0".into(),
            reason: "expected a port number 1-65535".into(),
        });
    }
    Ok(p)
}

fn seconds(var: &'static str, default: u64) -> Result<Duration, ConfigError> {
    let s: u64 = parse(var, default, "a whole number of seconds")?;
    if s == 0 {
        return Err(ConfigError {
            var,
            value: "0".into(),
            reason: "must be at least 1 second".into(),
        });
    }
    Ok(Duration::from_secs(s))
}

/// Maps the reference's level names (DEBUG, INFO, WARNING, ERROR, CRITICAL) to a tracing filter.
fn log_filter() -> Result<String, ConfigError> {
    let v = raw(vars::LOG_LEVEL).unwrap_or_else(|| "INFO".into());
    let level = match v.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => {
            return Err(ConfigError {
                var: vars::LOG_LEVEL,
                value: v,
                reason: "expected DEBUG, INFO, WARNING, ERROR or CRITICAL".into(),
            })
        }
    };
    Ok(format!("{level},pingora_core=warn,pingora_proxy=warn"))
}

/// Where Portcullis keeps its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// Redis at `REDIS_URL`: production, and several instances on one store.
    Redis,
    /// One redb database file (`STORE_PATH`), for a single instance without Redis.
    Embedded(std::path::PathBuf),
}

/// Reads `STORE` (`redis` or `embedded`) and, for the embedded store, `STORE_PATH`.
fn store_backend() -> Result<StoreBackend, ConfigError> {
    match raw(vars::STORE).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("redis") => Ok(StoreBackend::Redis),
        Some("embedded") => Ok(StoreBackend::Embedded(
            raw(vars::STORE_PATH).unwrap_or_else(|| ".data/portcullis-store.redb".into()).into(),
        )),
        Some(other) => Err(ConfigError {
            var: vars::STORE,
            value: other.to_string(),
            reason: "must be redis or embedded".into(),
        }),
    }
}

/// Builds the Redis URL from `REDIS_URL`, inserting `REDIS_PASSWORD` when the URL has none.
fn redis_url() -> Result<String, ConfigError> {
    let base = raw(vars::REDIS_URL).unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
    let mut url = url::Url::parse(&base).map_err(|e| ConfigError {
        var: vars::REDIS_URL,
        value: base.clone(),
        reason: format!("not a URL ({e})"),
    })?;
    if url.scheme() != "redis" && url.scheme() != "rediss" {
        return Err(ConfigError {
            var: vars::REDIS_URL,
            value: base,
            reason: "scheme must be redis:// or rediss://".into(),
        });
    }
    if url.password().is_none() {
        if let Some(pw) = raw(vars::REDIS_PASSWORD) {
            url.set_password(Some(&pw)).map_err(|_| ConfigError {
                var: vars::REDIS_URL,
                value: base.clone(),
                reason: "cannot carry a password".into(),
            })?;
        }
    }
    Ok(url.to_string())
}

/// The secrets `.env.example` ships with placeholder values: a copy used
/// as it is would run with publicly known credentials, so start-up stops.
const PLACEHOLDER_SECRETS: [&str; 3] = [vars::ADMIN_TOKEN, vars::SECRET_KEY, vars::REDIS_PASSWORD];

fn refuse_placeholders() -> Result<(), ConfigError> {
    for var in PLACEHOLDER_SECRETS {
        if raw(var).is_some_and(|v| v.starts_with("change-me")) {
            return Err(ConfigError {
                var,
                value: "<placeholder>".into(),
                reason: "is the placeholder from .env.example: set a random value (`openssl rand -hex 32`)".into(),
            });
        }
    }
    Ok(())
}

/// Derives the secrets key: `SECRET_KEY` if set, else from `ADMIN_TOKEN`.
fn secret_key(admin_token: Option<&str>) -> Result<[u8; 32], ConfigError> {
    use sha2::{Digest, Sha256};
    let material = match (raw(vars::SECRET_KEY), admin_token) {
        (Some(k), _) if k.len() < 16 => {
            return Err(ConfigError {
                var: vars::SECRET_KEY,
                value: "<hidden>".into(),
                reason: "must be at least 16 characters".into(),
            })
        }
        (Some(k), _) => k,
        (None, Some(t)) => format!("portcullis-secret-from-admin-token:{t}"),
        (None, None) => {
            return Err(ConfigError {
                var: vars::SECRET_KEY,
                value: String::new(),
                reason: "set SECRET_KEY (or ADMIN_TOKEN, from which it is derived)".into(),
            })
        }
    };
    Ok(Sha256::digest(material.as_bytes()).into())
}

impl Config {
    /// Loads `.env` (if present) and then the environment, validating every value.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        refuse_placeholders()?;
        let admin_token = raw(vars::ADMIN_TOKEN);
        if let Some(t) = &admin_token {
            if t.len() < 16 {
                return Err(ConfigError {
                    var: vars::ADMIN_TOKEN,
                    value: "<hidden>".into(),
                    reason: "must be at least 16 characters".into(),
                });
            }
        }
        let threads_default = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let cfg = Config {
            server_host: parse(vars::SERVER_HOST, IpAddr::from([0, 0, 0, 0]), "an IP address")?,
            http_port: port(vars::HTTP_PORT, 80, false)?,
            https_port: port(vars::HTTPS_PORT, 443, false)?,
            proxy_protocol_port: port(vars::PROXY_PROTOCOL_PORT, 10001, true)?,
            api_host: parse(vars::API_HOST, IpAddr::from([127, 0, 0, 1]), "an IP address")?,
            api_port: port(vars::API_PORT, 9000, false)?,
            store: store_backend()?,
            redis_url: redis_url()?,
            secret_key: secret_key(admin_token.as_deref())?,
            admin_token,
            admin_email: raw(vars::ADMIN_EMAIL),
            base_domain: raw(vars::BASE_DOMAIN).unwrap_or_else(|| "localhost".into()).to_ascii_lowercase(),
            log_filter: log_filter()?,
            self_signed_cn: raw(vars::SELF_SIGNED_CN).unwrap_or_else(|| "localhost".into()).to_ascii_lowercase(),
            self_signed_days: parse(vars::SELF_SIGNED_DAYS, 365, "a number of days")?,
            proxy_connect_timeout: seconds(vars::PROXY_CONNECT_TIMEOUT, 30)?,
            proxy_request_timeout: seconds(vars::PROXY_REQUEST_TIMEOUT, 120)?,
            reconcile_interval: seconds(vars::RECONCILE_INTERVAL, 30)?,
            redis_startup_timeout: seconds(vars::REDIS_STARTUP_TIMEOUT, 30)?,
            shutdown_grace_period: seconds(vars::SHUTDOWN_GRACE_PERIOD, 10)?,
            proxy_threads: parse(vars::PROXY_THREADS, threads_default, "a thread count")?,
            limits: client_limits()?,
            trusted_proxies: trusted_proxies()?,
            https_proxy_protocol: boolean(vars::HTTPS_PROXY_PROTOCOL, false)?,
            upgrade_socket: raw(vars::UPGRADE_SOCKET).unwrap_or_else(|| "/tmp/portcullis-upgrade.sock".into()),
            acme: acme_config()?,
            oauth: oauth::oauth_config(&raw(vars::BASE_DOMAIN).unwrap_or_else(|| "localhost".into()).to_ascii_lowercase())?,
            user_target_allow_networks: networks::parse_networks(vars::USER_TARGET_ALLOW_NETWORKS, raw(vars::USER_TARGET_ALLOW_NETWORKS))?,
            request_log: request_log::request_log_config()?,
            docker: docker::docker_config()?,
            mcp_conformance_fixtures: boolean(vars::MCP_CONFORMANCE_FIXTURES, false)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let ports = [
            (vars::HTTP_PORT, self.http_port),
            (vars::HTTPS_PORT, self.https_port),
            (vars::PROXY_PROTOCOL_PORT, self.proxy_protocol_port),
        ];
        for (i, (var, p)) in ports.iter().enumerate() {
            if *p == 0 {
                continue;
            }
            if let Some((other, _)) = ports[..i].iter().find(|(_, q)| q == p) {
                return Err(ConfigError {
                    var,
                    value: p.to_string(),
                    reason: format!("same port as {other}"),
                });
            }
        }
        if !crate::model::valid_hostname(&self.self_signed_cn) {
            return Err(ConfigError {
                var: vars::SELF_SIGNED_CN,
                value: self.self_signed_cn.clone(),
                reason: "not a hostname".into(),
            });
        }
        if self.proxy_threads == 0 {
            return Err(ConfigError {
                var: vars::PROXY_THREADS,
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// True when `ip` is a trusted load balancer (`TRUSTED_PROXIES`): only
    /// those may send PROXY headers, and only theirs `X-Forwarded-*` count.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }

    /// URL at which this instance's control plane is reachable from the data plane.
    pub fn api_base_url(&self) -> String {
        let host = if self.api_host.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            self.api_host
        };
        match host {
            IpAddr::V6(h) => format!("http://[{h}]:{}", self.api_port),
            IpAddr::V4(h) => format!("http://{h}:{}", self.api_port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_match_their_addresses_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(c.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(!c.contains(ip("::1")));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        for bad in ["10.0.0.0/33", "::/129", "x", "10.0.0.0/", "/8"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }
}
