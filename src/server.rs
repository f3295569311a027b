//! `portcullis serve`: start-up checks, bootstrap of default state, and the
//! pingora server with the data plane listeners and background services.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::proxy::{http_proxy, http_proxy_service_with_name};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::service::ControlPlane;
use crate::config::Config;
use crate::manage::BOOTSTRAP_ADMIN;
use crate::model::{now_rfc3339, Proxy};
use crate::proxy::proxy_protocol::ProxyProtocolApp;
use crate::proxy::Edge;
use crate::secrets::{token_hash, Sealer};
use crate::snapshot::sync::SyncService;
use crate::snapshot::{build, SnapshotHandle};
use crate::store::{Store, StoreError};
use crate::tls::{ensure_self_signed, SniSelector};

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

/// Fails with a one-line reason if a port cannot be bound.
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

/// Creates the default `localhost` proxy to the control plane when missing (never overwrites).
async fn ensure_localhost_proxy(store: &dyn Store, cfg: &Config) -> anyhow::Result<()> {
    if store.get_proxy("localhost").await?.is_some() {
        return Ok(());
    }
    let mut p: Proxy = serde_json::from_value(serde_json::json!({
        "hostname": "localhost",
        "target_url": cfg.api_base_url(),
        "enable_http": true,
        "enable_https": false,
        "auth_enabled": false,
        "resource_scopes": ["admin", "user", "mcp"],
    }))?;
    p.validate()?;
    p.owner_token_hash = cfg.admin_token.as_deref().map(token_hash).unwrap_or_else(|| "system".into());
    p.created_by = if cfg.admin_token.is_some() {
        BOOTSTRAP_ADMIN.into()
    } else {
        "system".into()
    };
    p.created_at = now_rfc3339();
    match store.create_proxy(&p).await {
        Ok(()) => tracing::info!(target = %p.target_url, "created the default localhost proxy"),
        Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The OAuth endpoints every proxy forwards to the control plane (priority 95).
const OAUTH_ROUTES: [(&str, &str); 10] = [
    ("oauth-authorize", "^/authorize$"),
    ("oauth-token", "^/token$"),
    ("oauth-callback", "^/callback$"),
    ("oauth-verify", "^/verify$"),
    ("oauth-revoke", "^/revoke$"),
    ("oauth-introspect", "^/introspect$"),
    ("oauth-register", "^/register(/[^/]+)?$"),
    ("oauth-jwks", "^/jwks$"),
    (
        "oauth-metadata",
        "^/\\.well-known/(oauth-authorization-server|openid-configuration)(/.*)?$",
    ),
    ("oauth-device", "^/device(/code|/token)?$"),
];

/// Creates the default OAuth routes and the `auth.{BASE_DOMAIN}` proxy when missing (never overwrites).
async fn ensure_oauth_entry_points(store: &dyn Store, cfg: &Config) -> anyhow::Result<()> {
    let (owner, by) = match cfg.admin_token.as_deref() {
        Some(t) => (token_hash(t), BOOTSTRAP_ADMIN.to_string()),
        None => ("system".to_string(), "system".to_string()),
    };
    for (id, pattern) in OAUTH_ROUTES {
        if store.get_route(id).await?.is_some() {
            continue;
        }
        let mut r: crate::model::Route = serde_json::from_value(serde_json::json!({
            "route_id": id, "path_pattern": pattern, "is_regex": true, "target_type": "url",
            "target_value": cfg.api_base_url(), "priority": 95, "description": "OAuth endpoint (default route)",
        }))?;
        r.validate()?;
        r.owner_token_hash = owner.clone();
        r.created_by = by.clone();
        r.created_at = now_rfc3339();
        match store.create_route(&r).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let auth_host = format!("auth.{}", cfg.base_domain);
    if crate::model::valid_hostname(&auth_host) && store.get_proxy(&auth_host).await?.is_none() {
        let mut p: Proxy = serde_json::from_value(serde_json::json!({"hostname": auth_host, "target_url": cfg.api_base_url()}))?;
        p.validate()?;
        p.owner_token_hash = owner;
        p.created_by = by;
        p.created_at = now_rfc3339();
        match store.create_proxy(&p).await {
            Ok(()) => tracing::info!(hostname = %p.hostname, "created the authorization server proxy"),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Runs the whole process until SIGTERM/SIGINT.
pub fn serve(cfg: Config) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    crate::metrics::init();
    preflight(&cfg)?;
    let sealer = Sealer::new(cfg.secret_key);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start-up runtime")?;
    let (fallback, snapshot) = rt.block_on(async {
        let store = connect(&cfg).await?;
        ensure_localhost_proxy(&*store, &cfg).await?;
        ensure_oauth_entry_points(&*store, &cfg).await?;
        let fallback = Arc::new(ensure_self_signed(&*store, &sealer, &cfg.self_signed_cn, cfg.self_signed_days).await?);
        let snapshot = build(&*store, &sealer, fallback.clone(), &cfg).await?;
        anyhow::Ok((fallback, snapshot))
    })?;
    drop(rt);
    let handle: SnapshotHandle = Arc::new(ArcSwap::from_pointee(snapshot));
    let wake = Arc::new(tokio::sync::Notify::new());

    let conf = ServerConf {
        threads: cfg.proxy_threads,
        grace_period_seconds: Some(cfg.shutdown_grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        max_retries: 1,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let pconf = server.configuration.clone();

    let mut edge = http_proxy_service_with_name(
        &pconf,
        Edge {
            handle: handle.clone(),
            config: cfg.clone(),
            wake: wake.clone(),
        },
        "portcullis data plane",
    );
    edge.add_tcp(&SocketAddr::new(cfg.server_host, cfg.http_port).to_string());
    let mut tls = TlsSettings::with_callbacks(Box::new(SniSelector { handle: handle.clone() })).context("TLS settings")?;
    tls.enable_h2();
    edge.add_tls_with_settings(&SocketAddr::new(cfg.server_host, cfg.https_port).to_string(), None, tls);
    server.add_service(edge);

    if cfg.proxy_protocol_port != 0 {
        let app = ProxyProtocolApp {
            inner: Arc::new(http_proxy(
                &pconf,
                Edge {
                    handle: handle.clone(),
                    config: cfg.clone(),
                    wake: wake.clone(),
                },
            )),
        };
        let mut pp = Service::new("portcullis PROXY protocol".into(), app);
        pp.add_tcp(&SocketAddr::new(cfg.server_host, cfg.proxy_protocol_port).to_string());
        server.add_service(pp);
    }

    server.add_service(background_service(
        "snapshot sync",
        SyncService {
            config: cfg.clone(),
            handle,
            fallback,
            wake,
        },
    ));
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
    server.run_forever()
}
