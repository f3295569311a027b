//! Builds a [`Snapshot`] from the store: resolves targets, compiles routes,
//! loads certificates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderName, HeaderValue};

use super::{CompiledRoute, Matcher, ProxyEntry, Snapshot, Upstream};
use crate::model::{Proxy, Route, RouteMode, RouteScope, TargetType};
use crate::secrets::Sealer;
use crate::store::{Store, StoreError};
use crate::tls::{CertKey, CertTable};

/// Resolves host names once per build (no DNS on the request path).
#[derive(Default)]
struct Resolver {
    cache: HashMap<(String, u16), Result<SocketAddr, String>>,
}

impl Resolver {
    async fn resolve(&mut self, host: &str, port: u16) -> Result<SocketAddr, String> {
        let key = (host.to_string(), port);
        if let Some(r) = self.cache.get(&key) {
            return r.clone();
        }
        let host_only = host.trim_start_matches('[').trim_end_matches(']');
        let r = match tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::lookup_host((host_only, port))).await {
            Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| format!("{host} has no address")),
            Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
            Err(_) => Err(format!("resolving {host} timed out")),
        };
        self.cache.insert(key, r.clone());
        r
    }

    async fn upstream(&mut self, url: &str) -> Result<Arc<Upstream>, String> {
        let u = url::Url::parse(url).map_err(|e| format!("bad URL {url}: {e}"))?;
        let tls = u.scheme() == "https";
        let host = u.host_str().ok_or_else(|| format!("{url} has no host"))?.to_string();
        let port = u.port_or_known_default().ok_or_else(|| format!("{url} has no port"))?;
        let addr = self.resolve(&host, port).await?;
        let authority = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let authority_value = HeaderValue::from_str(&authority).map_err(|e| format!("{url}: {e}"))?;
        Ok(Arc::new(Upstream {
            addr,
            tls,
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            authority_value,
            base_path: u.path().trim_end_matches('/').to_string(),
        }))
    }
}

/// Custom headers: the valid entries of a stored header map, parsed once
/// per snapshot (names lower case, as the header maps hold them).
fn parse_headers(h: &std::collections::BTreeMap<String, String>) -> Vec<(HeaderName, HeaderValue)> {
    h.iter()
        .filter_map(|(k, v)| Some((HeaderName::from_bytes(k.as_bytes()).ok()?, HeaderValue::from_str(v).ok()?)))
        .collect()
}

fn applies(route: &Route, proxy: &Proxy) -> bool {
    let scoped = match route.scope {
        RouteScope::Global => true,
        RouteScope::Proxy => route.proxy_hostnames.iter().any(|h| h == &proxy.hostname),
    };
    let mode = match proxy.route_mode {
        RouteMode::All => !proxy.disabled_routes.contains(&route.route_id),
        RouteMode::Selective => proxy.enabled_routes.contains(&route.route_id),
        RouteMode::None => false,
    };
    route.enabled && scoped && mode
}

async fn compile_route(
    route: Route,
    res: &mut Resolver,
    targets: &HashMap<String, Result<Arc<Upstream>, String>>,
    services: &HashMap<String, String>,
) -> Option<CompiledRoute> {
    let matcher = if route.is_regex {
        match regex::Regex::new(&route.path_pattern) {
            Ok(r) => Matcher::regex(r),
            Err(e) => {
                tracing::warn!(route = %route.route_id, error = %e, "skipping route with invalid regex");
                return None;
            }
        }
    } else {
        Matcher::Prefix(route.path_pattern.clone())
    };
    let upstream = match route.target_type {
        TargetType::Port => res.upstream(&format!("http://127.0.0.1:{}", route.target_value)).await,
        TargetType::Url => res.upstream(&route.target_value).await,
        TargetType::Service => match services.get(&route.target_value) {
            Some(url) => res.upstream(url).await,
            None => Err(format!("service {} is not registered", route.target_value)),
        },
        TargetType::Hostname => targets
            .get(&route.target_value)
            .cloned()
            .unwrap_or_else(|| Err(format!("no proxy for hostname {}", route.target_value))),
    };
    Some(CompiledRoute { route, matcher, upstream })
}

/// Reads everything from the store and builds a new snapshot.
pub async fn build(
    store: &dyn Store,
    sealer: &Sealer,
    fallback: Arc<CertKey>,
    cfg: &crate::config::Config,
) -> Result<Snapshot, StoreError> {
    let proxies = store.list_proxies().await?;
    let mut routes = store.list_routes().await?;
    let services = store.list_service_urls().await?;
    let certs = store.list_certs().await?;
    let challenges = store.list_challenges().await?;
    let auth = crate::auth::AuthKeys::load(store, sealer, &cfg.oauth).await?;

    let mut res = Resolver::default();
    let control = res.upstream(&cfg.api_base_url()).await;
    let mut targets = HashMap::new();
    for p in &proxies {
        targets.insert(p.hostname.clone(), res.upstream(&p.target_url).await);
    }
    routes.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.route_id.cmp(&b.route_id)));
    let mut compiled = Vec::with_capacity(routes.len());
    for r in routes {
        if let Some(c) = compile_route(r, &mut res, &targets, &services).await {
            compiled.push(Arc::new(c));
        }
    }

    let mut table = CertTable::new(fallback);
    let mut by_name = HashMap::new();
    for c in &certs {
        match CertKey::from_record(c, sealer) {
            Ok(ck) => {
                let ck = Arc::new(ck);
                table.insert_domains(&c.domains, ck.clone());
                by_name.insert(c.cert_name.clone(), ck);
            }
            Err(e) => tracing::warn!(cert = %c.cert_name, error = %e, "certificate not loaded"),
        }
    }

    let mut entries = super::FastMap::with_capacity_and_hasher(proxies.len(), Default::default());
    for p in proxies {
        if let Some(ck) = p.cert_name.as_ref().and_then(|n| by_name.get(n)) {
            table.insert_exact_if_absent(&p.hostname, ck.clone());
        }
        let routes: Vec<Arc<CompiledRoute>> = compiled.iter().filter(|r| applies(&r.route, &p)).cloned().collect();
        let entry = ProxyEntry {
            target: targets.remove(&p.hostname).unwrap_or_else(|| Err("unresolved".into())),
            route_leads: routes.iter().map(|r| r.matcher.lead()).collect(),
            routes,
            request_headers: parse_headers(&p.custom_headers),
            response_headers: parse_headers(&p.custom_response_headers),
            auth_prefix_lower: p.auth_header_prefix.to_ascii_lowercase(),
            requests_by_class: crate::metrics::STATUS_CLASSES
                .map(|c| crate::metrics::PROXY_REQUESTS.with_label_values(&[p.hostname.as_str(), c])),
            upstream_seconds: crate::metrics::UPSTREAM_SECONDS.with_label_values(&[p.hostname.as_str()]),
            proxy: p,
        };
        entries.insert(entry.proxy.hostname.clone(), Arc::new(entry));
    }
    Ok(Snapshot {
        proxies: entries,
        certs: table,
        challenges,
        auth,
        control,
        built_at: SystemTime::now(),
    })
}
