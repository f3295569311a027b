//! Every store key and channel, built in one place (the reference schema).

/// Channel carrying [`super::ChangeEvent`]s.
pub const EVENTS_CHANNEL: &str = "portcullis:changes";

/// `proxy:{hostname}`
pub fn proxy(hostname: &str) -> String {
    format!("proxy:{hostname}")
}
/// `route:{id}`
pub fn route(id: &str) -> String {
    format!("route:{id}")
}
/// `route:priority:{prio}:{id}`
pub fn route_priority(priority: i64, id: &str) -> String {
    format!("route:priority:{priority}:{id}")
}
/// `route:unique:{path}:{prio}`
pub fn route_unique(path: &str, priority: i64) -> String {
    format!("route:unique:{path}:{priority}")
}
/// `route:unique-host:{hostname}:{path}:{prio}`: the per-hostname
/// uniqueness key of a proxy-scoped route.
pub fn route_unique_host(hostname: &str, path: &str, priority: i64) -> String {
    format!("route:unique-host:{hostname}:{path}:{priority}")
}
/// The path+priority uniqueness keys of a route. A global route holds
/// `route:unique:{path}:{prio}` (global routes conflict with global routes);
/// a proxy-scoped route holds one [`route_unique_host`] key per hostname, so
/// it conflicts only with routes of the same proxies and nobody can block a
/// path and priority for every proxy by creating a route on their own.
pub fn route_unique_keys(r: &crate::model::Route) -> Vec<String> {
    match r.scope {
        crate::model::RouteScope::Global => vec![route_unique(&r.path_pattern, r.priority)],
        crate::model::RouteScope::Proxy => {
            let mut hosts: Vec<&String> = r.proxy_hostnames.iter().collect();
            hosts.sort();
            hosts.dedup();
            hosts
                .into_iter()
                .map(|h| route_unique_host(h, &r.path_pattern, r.priority))
                .collect()
        }
    }
}
/// For a proxy-scoped route, the global uniqueness key it held before
/// uniqueness became per hostname; removed with the route when it still
/// names the route.
pub fn route_unique_legacy(r: &crate::model::Route) -> Option<String> {
    (r.scope == crate::model::RouteScope::Proxy).then(|| route_unique(&r.path_pattern, r.priority))
}
/// `token:{name}`
pub fn token(name: &str) -> String {
    format!("token:{name}")
}
/// `token:hash:{hash}`
pub fn token_hash(hash: &str) -> String {
    format!("token:hash:{hash}")
}
/// `cert:{name}`
pub fn cert(name: &str) -> String {
    format!("cert:{name}")
}
/// `cert:domain:{domain}`
pub fn cert_domain(domain: &str) -> String {
    format!("cert:domain:{domain}")
}
/// `service:url:{name}`
pub fn service_url(name: &str) -> String {
    format!("service:url:{name}")
}
/// `owner:{hash}`: set of primary keys a token owns (for cascade delete).
pub fn owner(hash: &str) -> String {
    format!("owner:{hash}")
}
/// `internal:{name}`: small internal values.
pub fn internal(name: &str) -> String {
    format!("internal:{name}")
}

/// The `*` pattern and the record prefix of a record family, for listing.
pub fn family(prefix: &str) -> (String, usize) {
    (format!("{prefix}:*"), prefix.len() + 1)
}
/// `cert:status:{name}`
pub fn cert_status(name: &str) -> String {
    format!("cert:status:{name}")
}
/// `acme:challenge:{token}`
pub fn acme_challenge(token: &str) -> String {
    format!("acme:challenge:{token}")
}
/// `lock:{name}`
pub fn lock(name: &str) -> String {
    format!("lock:{name}")
}
/// `mcp:session:{id}`: an MCP `Mcp-Session-Id` session (`mcp::session`).
pub fn mcp_session(id: &str) -> String {
    format!("mcp:session:{id}")
}
/// `oauth:revoked:{jti}`
pub fn oauth_revoked(jti: &str) -> String {
    format!("oauth:revoked:{jti}")
}
/// `service:docker:{name}`, an internal value (under [`internal`]): one
/// Docker service record.
pub fn docker_service(name: &str) -> String {
    format!("service:docker:{name}")
}
/// `service:state:{name}`, an internal value: the container state of a
/// Docker service, kept apart from its record so the event watcher never
/// writes back a record the API changed meanwhile.
pub fn docker_service_state(name: &str) -> String {
    format!("service:state:{name}")
}
/// `service:external:{name}`, an internal value: the description and owner
/// of an external service whose URL is at [`service_url`].
pub fn external_service(name: &str) -> String {
    format!("service:external:{name}")
}
/// `port:{port}`, an internal value: who holds a host port. Claimed with
/// set-if-absent, so two instances sharing a store never hand out one port twice.
pub fn port_claim(port: u16) -> String {
    format!("{PORT_CLAIMS}{port}")
}
/// The prefix of every [`port_claim`], for listing them.
pub const PORT_CLAIMS: &str = "port:";
/// `service:store-id`, an internal value: a random id of this store, put on
/// every container as the `portcullis.store` label, so deployments sharing a
/// Docker engine never take each other's containers for their own orphans.
pub const SERVICES_STORE_ID: &str = "service:store-id";
