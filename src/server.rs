//! `portcullis serve`: start-up checks, bootstrap of default state, and the
//! pingora server with the data plane listeners and background services.

mod self_signed;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::v1::server::HeadLimits;
use pingora::protocols::http::v2::server::default_h2_options;
use pingora::proxy::{http_proxy, HttpProxy};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::service::ControlPlane;
use crate::config::Config;
use crate::manage::Manager;
use crate::proxy::proxy_protocol::{Gate, PerIpLimit, ProxyHeaderBeforeTls};
use crate::proxy::{Edge, SniSelector};
use crate::secrets::Sealer;
use crate::snapshot::sync::{KeyRefresh, SyncService};
use crate::snapshot::{build, SnapshotHandle};
use crate::store::Store;
use self_signed::ensure_self_signed;

/// Redis URL with any password hidden, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Fails with a one-line reason if a port cannot be bound. Skipped on an
/// upgrade: the running process holds the ports and hands them over.
fn preflight(cfg: &Config) -> anyhow::Result<()> {
    let mut ports = vec![
        ("HTTP_PORT", SocketAddr::new(cfg.server_host, cfg.http_port)),
        ("HTTPS_PORT", SocketAddr::new(cfg.server_host, cfg.https_port)),
    ];
    if cfg.proxy_protocol_port != 0 {
        ports.push(("PROXY_PROTOCOL_PORT", SocketAddr::new(cfg.server_host, cfg.proxy_protocol_port)));
    }
    ports.push(("API_PORT", SocketAddr::new(cfg.api_host, cfg.api_port)));
    for (var, addr) in ports {
        TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({var}): {e}"))?;
    }
    Ok(())
}

/// Opens the store: the embedded file at once, Redis with retries and
/// backoff up to `REDIS_STARTUP_TIMEOUT`.
async fn connect(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if let crate::config::StoreBackend::Embedded(path) = &cfg.store {
        return crate::store::open(cfg)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the embedded store at {}: {e}", path.display()));
    }
    let deadline = Instant::now() + cfg.redis_startup_timeout;
    let mut delay = Duration::from_millis(250);
    loop {
        match crate::store::open(cfg).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() + delay < deadline => {
                tracing::warn!(redis = %redacted(&cfg.redis_url), error = %e, retry_in_ms = delay.as_millis() as u64, "Redis is not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                anyhow::bail!(
                    "cannot reach Redis at {} after {}s: {e} (set STORE=embedded to run one instance without Redis)",
                    redacted(&cfg.redis_url),
                    cfg.redis_startup_timeout.as_secs()
                )
            }
        }
    }
}

/// The data plane app of one listener, with the client deadlines and limits
/// of `cfg` (pingora's HTTP/2 options, and the vendored pingora-core's HTTP/1
/// head limits: see vendor/pingora-core/PATCHED.md).
fn edge_app(pconf: &Arc<ServerConf>, edge: Edge, cfg: &Config) -> Arc<HttpProxy<Edge>> {
    let limits = &cfg.limits;
    let mut options = HttpServerOptions::default();
    options.h2_idle_timeout = Some(limits.http2_idle_timeout);
    options.h1_head_limits = Some(HeadLimits {
        head_timeout: limits.header_timeout,
        idle_timeout: limits.keepalive_timeout,
        max_bytes: limits.max_header_bytes,
    });
    options.h1_body_timeout = Some(limits.body_timeout);
    let mut h2 = default_h2_options();
    h2.max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let mut app = http_proxy(pconf, edge);
    app.server_options = Some(options);
    app.h2_options = Some(h2);
    Arc::new(app)
}

/// Ends the process as soon as a graceful stop (SIGTERM, or SIGQUIT after the
/// listeners went to an upgraded process) has no request left in flight.
/// Pingora alone would always wait the whole grace period; it stays the upper
/// bound (pingora ends the process after it even if requests remain).
struct Drain;

/// How often, and how many times in a row, the drain sees no request in
/// flight before it ends the process (a request between reading its head and
/// being counted is not lost).
const DRAIN_POLL: Duration = Duration::from_millis(50);
const DRAIN_IDLE_POLLS: u32 = 3;

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Drain {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
        let started = Instant::now();
        let mut idle = 0;
        loop {
            tokio::time::sleep(DRAIN_POLL).await;
            idle = if crate::metrics::ACTIVE_REQUESTS.get() <= 0 { idle + 1 } else { 0 };
            if idle >= DRAIN_IDLE_POLLS {
                tracing::info!(drained_ms = started.elapsed().as_millis() as u64, "no request in flight; exiting");
                std::process::exit(0);
            }
        }
    }
}

/// Runs the whole process until SIGTERM/SIGINT, or until an upgraded process
/// took the listeners over (SIGQUIT). With `upgrade`, takes the listening
/// sockets from the running process over `UPGRADE_SOCKET` first.
pub fn serve(cfg: Config, upgrade: bool) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    crate::metrics::init();
    if !upgrade {
        preflight(&cfg)?;
    }
    let sealer = Sealer::new(cfg.secret_key);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start-up runtime")?;
    let (fallback, snapshot) = rt.block_on(async {
        let store = connect(&cfg).await?;
        crate::manage::bootstrap::run(&Manager::new(store.clone(), cfg.clone()))
            .await
            .context("writing the default proxies")?;
        let fallback = Arc::new(ensure_self_signed(&*store, &sealer, &cfg.self_signed_cn, cfg.self_signed_days).await?);
        let snapshot = build(&*store, &sealer, fallback.clone(), &cfg).await?;
        anyhow::Ok((fallback, snapshot))
    })?;
    drop(rt);
    let handle: SnapshotHandle = Arc::new(ArcSwap::from_pointee(snapshot));
    let keys = Arc::new(KeyRefresh::default());

    let conf = ServerConf {
        threads: cfg.proxy_threads,
        grace_period_seconds: Some(cfg.shutdown_grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        max_retries: 1,
        upgrade_sock: cfg.upgrade_socket.clone(),
        ..ServerConf::default()
    };
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();
    let pconf = server.configuration.clone();

    let per_ip = PerIpLimit::new(cfg.limits.max_connections_per_ip);
    // A stalled TLS handshake is cut like a stalled request head (vendored pingora-core).
    pingora::services::listening::DOWNSTREAM_HANDSHAKE_TIMEOUT_MS.store(
        u64::try_from(cfg.limits.header_timeout.as_millis()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    let new_edge = || Edge {
        handle: handle.clone(),
        config: cfg.clone(),
        wake: keys.clone(),
    };
    let gate = Gate {
        inner: edge_app(&pconf, new_edge(), &cfg),
        proxy_protocol: false,
        config: cfg.clone(),
        per_ip: per_ip.clone(),
    };
    let mut edge = Service::new("portcullis data plane".into(), gate);
    edge.add_tcp(&SocketAddr::new(cfg.server_host, cfg.http_port).to_string());
    let mut tls = TlsSettings::with_callbacks(Box::new(SniSelector { handle: handle.clone() })).context("TLS settings")?;
    tls.enable_h2();
    edge.add_tls_with_settings(&SocketAddr::new(cfg.server_host, cfg.https_port).to_string(), None, tls);
    if cfg.https_proxy_protocol {
        edge.endpoints()
            .set_pre_tls_callback(Arc::new(ProxyHeaderBeforeTls { config: cfg.clone() }));
    }
    server.add_service(edge);

    if cfg.proxy_protocol_port != 0 {
        if cfg.trusted_proxies.is_empty() {
            tracing::warn!(
                port = cfg.proxy_protocol_port,
                "TRUSTED_PROXIES is empty: the PROXY protocol listener closes every connection"
            );
        }
        let gate = Gate {
            inner: edge_app(&pconf, new_edge(), &cfg),
            proxy_protocol: true,
            config: cfg.clone(),
            per_ip,
        };
        let mut pp = Service::new("portcullis PROXY protocol".into(), gate);
        pp.add_tcp(&SocketAddr::new(cfg.server_host, cfg.proxy_protocol_port).to_string());
        server.add_service(pp);
    }

    server.add_service(background_service(
        "snapshot sync",
        SyncService {
            config: cfg.clone(),
            handle,
            fallback,
            keys,
        },
    ));
    server.add_service(background_service("drain", Drain));
    if let Some(log) = crate::reqlog::RequestLogService::new(cfg.clone()) {
        server.add_service(background_service("request log", log));
    }
    let mut control = background_service("control plane", ControlPlane { config: cfg.clone() });
    control.threads = Some(2);
    server.add_service(control);
    tracing::info!(
        http = cfg.http_port,
        https = cfg.https_port,
        proxy_protocol = cfg.proxy_protocol_port,
        api = cfg.api_port,
        "portcullis starting"
    );
    if cfg.mcp_conformance_fixtures {
        tracing::warn!(
            "MCP_CONFORMANCE_FIXTURES=true: /mcp serves the conformance suite's fixture tools, \
             for the conformance suite only; never in production"
        );
    }
    server.run_forever()
}
