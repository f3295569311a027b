//! Builds a [`Snapshot`] from the store: resolves targets, compiles routes,
//! loads certificates and the token verification keys. With `sync`, the only
//! place the data plane reads the store.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderName, HeaderValue};

use super::{CompiledRoute, Matcher, ProxyEntry, Snapshot, Upstream};
use crate::auth::AuthKeys;
use crate::config::OAuthConfig;
use crate::model::{cert_covers, Certificate, Proxy, Route, RouteMode, RouteScope, TargetType, TokenScope};
use crate::secrets::Sealer;
use crate::store::{Store, StoreError};
use crate::tls::{CertKey, CertTable};

/// Loads the signing keys and revocations; without keys (a broken key
/// ring) tokens cannot be verified, but the rest of the snapshot still builds.
pub(super) async fn auth_keys(store: &dyn Store, sealer: &Sealer, oauth: &OAuthConfig) -> Result<AuthKeys, StoreError> {
    let keys = match crate::oauth::keys::ring(store, sealer, oauth.jwt_private_key_pem.as_deref()).await {
        Ok(r) => r.all.into_iter().map(|k| (k.kid, k.decoding)).collect(),
        Err(e) => {
            tracing::warn!(error = %e.description, "signing keys unavailable; tokens cannot be verified");
            HashMap::new()
        }
    };
    let revoked = store.list_revocations().await?.into_iter().collect();
    Ok(AuthKeys::new(oauth.issuer.clone(), keys, revoked, oauth.allowed_users.clone()))
}

/// Loads a stored certificate, decrypting its key.
fn cert_key(c: &Certificate, sealer: &Sealer) -> Result<CertKey, String> {
    let key = sealer.open(&c.private_key_encrypted).map_err(|e| e.to_string())?;
    CertKey::from_pem(&c.fullchain_pem, &key)
}

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
/// per snapshot (names lower case, as the header maps hold them). Names the
/// API refuses (framing, hop-by-hop, trust and identity headers) are skipped
/// here too, so a record stored before that rule cannot inject them.
fn parse_headers(h: &std::collections::BTreeMap<String, String>, auth_prefix: &str) -> Vec<(HeaderName, HeaderValue)> {
    h.iter()
        .filter(|(k, _)| !crate::model::reserved_header(k, auth_prefix))
        .filter_map(|(k, v)| Some((HeaderName::from_bytes(k.as_bytes()).ok()?, HeaderValue::from_str(v).ok()?)))
        .collect()
}

/// The owners whose records get the user-scope rules again at every build
/// (README, "Authorization model"): hashes of stored `user` tokens. Every
/// other owner is an admin (the bootstrap token, admin tokens, OAuth admins;
/// OAuth `user` callers cannot write) or the start-up defaults.
struct Owners {
    users: HashSet<String>,
}

impl Owners {
    fn restricted(&self, owner: &str) -> bool {
        self.users.contains(owner)
    }

    /// True when `cert` may serve `proxy`'s hostname: the admin's
    /// certificates serve any host, a user's only hosts of its own proxies.
    fn cert_may_serve(&self, cert: &Certificate, proxy: &Proxy) -> bool {
        !self.restricted(&cert.owner_token_hash) || cert.owner_token_hash == proxy.owner_token_hash
    }
}

/// Applies the user target rules to a resolved upstream of a restricted owner.
fn allowed_for(restricted: bool, cfg: &crate::config::Config, up: Result<Arc<Upstream>, String>) -> Result<Arc<Upstream>, String> {
    match up {
        Ok(u) if restricted => match cfg.user_target_refusal(u.addr) {
            Some(why) => Err(format!("target refused: {why}")),
            None => Ok(u),
        },
        other => other,
    }
}

fn applies(route: &Route, proxy: &Proxy, owners: &Owners) -> bool {
    let scoped = match route.scope {
        // a global route of a user (stored before only the admin could make them) applies nowhere
        RouteScope::Global => !owners.restricted(&route.owner_token_hash),
        RouteScope::Proxy => {
            route.proxy_hostnames.iter().any(|h| h == &proxy.hostname)
                && (!owners.restricted(&route.owner_token_hash) || route.owner_token_hash == proxy.owner_token_hash)
        }
    };
    let mode = match proxy.route_mode {
        RouteMode::All => !proxy.disabled_routes.contains(&route.route_id),
        RouteMode::Selective => proxy.enabled_routes.contains(&route.route_id),
        RouteMode::None => false,
    };
    route.enabled && scoped && mode
}

/// What compiling routes needs besides the resolver.
struct RouteInputs<'a> {
    targets: &'a HashMap<String, Result<Arc<Upstream>, String>>,
    proxies: &'a HashMap<String, Proxy>,
    services: &'a HashMap<String, String>,
    owners: &'a Owners,
    cfg: &'a crate::config::Config,
}

async fn compile_route(route: Route, res: &mut Resolver, inp: &RouteInputs<'_>) -> Option<CompiledRoute> {
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
    let restricted = inp.owners.restricted(&route.owner_token_hash);
    let upstream = match route.target_type {
        TargetType::Port => res.upstream(&format!("http://127.0.0.1:{}", route.target_value)).await,
        TargetType::Url => res.upstream(&route.target_value).await,
        TargetType::Service if restricted => Err("service targets are the admin's; this route's owner is not".to_string()),
        TargetType::Service => match inp.services.get(&route.target_value) {
            Some(url) => res.upstream(url).await,
            None => Err(format!("service {} is not registered", route.target_value)),
        },
        TargetType::Hostname => match inp.proxies.get(&route.target_value) {
            // The request is checked against the auth of the proxy it arrived
            // at, never the target's: so a user's route may lead only to its
            // own proxies, and an admin's route to a user's proxy only when
            // that proxy has no auth (admins' proxies are one trust domain).
            Some(t)
                if t.owner_token_hash != route.owner_token_hash
                    && (restricted || (t.auth_enabled && inp.owners.restricted(&t.owner_token_hash))) =>
            {
                Err(format!(
                    "{} belongs to another owner{}",
                    t.hostname,
                    if t.auth_enabled { " and requires auth" } else { "" }
                ))
            }
            _ => inp
                .targets
                .get(&route.target_value)
                .cloned()
                .unwrap_or_else(|| Err(format!("no proxy for hostname {}", route.target_value))),
        },
    };
    let upstream = allowed_for(restricted, inp.cfg, upstream);
    if let Err(e) = &upstream {
        tracing::debug!(route = %route.route_id, reason = %e, "route target unavailable");
    }
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
    let services = crate::services::targets(store, cfg.api_base_url()).await?;
    let certs = store.list_certs().await?;
    let challenges = store.list_challenges().await?;
    let owners = Owners {
        users: store
            .list_tokens()
            .await?
            .into_iter()
            .filter(|t| t.scope == TokenScope::User)
            .map(|t| t.hash)
            .collect(),
    };
    let auth = auth_keys(store, sealer, &cfg.oauth).await?;

    let mut res = Resolver::default();
    let control = res.upstream(&cfg.api_base_url()).await;
    let mut targets = HashMap::new();
    for p in &proxies {
        let up = res.upstream(&p.target_url).await;
        // A user's proxy to its own service's port is allowed though the port is local.
        let own_service = services.owners.get(&p.target_url) == Some(&p.owner_token_hash);
        let restricted = owners.restricted(&p.owner_token_hash) && !own_service;
        targets.insert(p.hostname.clone(), allowed_for(restricted, cfg, up));
    }
    // Highest priority first; at equal priority a proxy's own routes before global ones.
    routes.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| (a.scope == RouteScope::Global).cmp(&(b.scope == RouteScope::Global)))
            .then_with(|| a.route_id.cmp(&b.route_id))
    });
    let by_host: HashMap<String, Proxy> = proxies.iter().map(|p| (p.hostname.clone(), p.clone())).collect();
    let inputs = RouteInputs {
        targets: &targets,
        proxies: &by_host,
        services: &services.urls,
        owners: &owners,
        cfg,
    };
    let mut compiled = Vec::with_capacity(routes.len());
    for r in routes {
        if let Some(c) = compile_route(r, &mut res, &inputs).await {
            compiled.push(Arc::new(c));
        }
    }

    let mut table = CertTable::new(fallback);
    let mut by_name = HashMap::new();
    for c in &certs {
        match cert_key(c, sealer) {
            Ok(ck) => {
                let ck = Arc::new(ck);
                if owners.restricted(&c.owner_token_hash) {
                    // A user's certificate serves only hostnames of its own proxies, never a wildcard.
                    let own: Vec<String> = proxies
                        .iter()
                        .filter(|p| owners.cert_may_serve(c, p) && c.domains.iter().any(|d| cert_covers(d, &p.hostname)))
                        .map(|p| p.hostname.clone())
                        .collect();
                    table.insert_domains(&own, ck.clone());
                } else {
                    table.insert_domains(&c.domains, ck.clone());
                }
                by_name.insert(c.cert_name.clone(), (c, ck));
            }
            Err(e) => tracing::warn!(cert = %c.cert_name, error = %e, "certificate not loaded"),
        }
    }

    let mut entries = super::FastMap::with_capacity_and_hasher(proxies.len(), Default::default());
    for p in proxies {
        if let Some((c, ck)) = p.cert_name.as_ref().and_then(|n| by_name.get(n)) {
            if owners.cert_may_serve(c, &p) {
                table.insert_exact_if_absent(&p.hostname, ck.clone());
            }
        }
        let routes: Vec<Arc<CompiledRoute>> = compiled.iter().filter(|r| applies(&r.route, &p, &owners)).cloned().collect();
        let entry = ProxyEntry {
            target: targets.remove(&p.hostname).unwrap_or_else(|| Err("unresolved".into())),
            route_leads: routes.iter().map(|r| r.matcher.lead()).collect(),
            routes,
            request_headers: parse_headers(&p.custom_headers, &p.auth_header_prefix),
            response_headers: parse_headers(&p.custom_response_headers, &p.auth_header_prefix),
            auth_prefix_lower: p.auth_header_prefix.to_ascii_lowercase(),
            unavailable: services.down.get(&p.target_url).cloned(),
            source_token: services.tokens.get(&p.target_url).cloned(),
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
