//! Every store key and channel, built in one place (the reference schema).

/// Channel carrying [`super::ChangeEvent`]s.
pub const EVENTS_CHANNEL: &str = "portcullis:changes";
/// Redis only: a sorted set (all scores 0, so ordered by name) of every
/// string key written through a batch. A prefix scan reads a range of it
/// instead of SCANning the whole database, which the request log fills with
/// millions of `req:*` hashes.
pub const KEY_DIRECTORY: &str = "portcullis:keys";
/// Redis only: set once the directory holds every store key written before it existed.
pub const KEY_DIRECTORY_READY: &str = "portcullis:keys:ready";

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

/// `resource:{uri}`: a registered protected resource (RFC 8707 indicator).
pub fn resource(uri: &str) -> String {
    format!("resource:{uri}")
}

/// `internal:oauth:keys` holds the OAuth signing key ring (sealed keys).
pub const OAUTH_KEY_RING: &str = "oauth:keys";
/// `oauth:keys:rotate-lock`: serializes key rotations across instances.
pub const OAUTH_ROTATE_LOCK: &str = "oauth:keys:rotate-lock";

/// `oauth:client:{id}`: a registered (dynamic) client.
pub fn oauth_client(id: &str) -> String {
    format!("oauth:client:{id}")
}
/// `oauth:reg_rate:{who}:{hour}`: registrations from one address in one hour.
pub fn oauth_reg_rate(who: &str, hour: i64) -> String {
    format!("oauth:reg_rate:{who}:{hour}")
}
/// `oauth:cimd:{url_digest}`: a fetched client metadata document, cached.
pub fn oauth_cimd(url_digest: &str) -> String {
    format!("oauth:cimd:{url_digest}")
}
/// `oauth:state:{sid}`: a login waiting for the upstream provider's callback.
pub fn oauth_state(sid: &str) -> String {
    format!("oauth:state:{sid}")
}
/// `oauth:decision:{id}`: a consent or device approval page waiting for its answer.
pub fn oauth_decision(id: &str) -> String {
    format!("oauth:decision:{id}")
}
/// `oauth:proxy_login:{state}`: a proxy's browser login in progress.
pub fn oauth_proxy_login(state: &str) -> String {
    format!("oauth:proxy_login:{state}")
}
/// `oauth:code:{code_digest}`: an authorization code not yet redeemed.
pub fn oauth_code(code_digest: &str) -> String {
    format!("oauth:code:{code_digest}")
}
/// `oauth:code_used:{code_digest}`: the family a redeemed code minted (replay detection).
pub fn oauth_code_used(code_digest: &str) -> String {
    format!("oauth:code_used:{code_digest}")
}
/// `oauth:consent:{client_digest}:{user_digest}`: a remembered consent.
pub fn oauth_consent(client_digest: &str, user_digest: &str) -> String {
    format!("oauth:consent:{client_digest}:{user_digest}")
}
/// `oauth:consent:{client_digest}:`, or `oauth:consent:` for every client: consents by prefix.
pub fn oauth_consents(client_digest: Option<&str>) -> String {
    match client_digest {
        Some(c) => format!("oauth:consent:{c}:"),
        None => "oauth:consent:".into(),
    }
}
/// `oauth:device:{device_code_digest}`: a device grant.
pub fn oauth_device(device_digest: &str) -> String {
    format!("oauth:device:{device_digest}")
}
/// `oauth:device:{device_code_digest}:decided`: who answered a device grant (first answer wins).
pub fn oauth_device_decided(device_digest: &str) -> String {
    format!("oauth:device:{device_digest}:decided")
}
/// `oauth:user_code:{user_code}`: the device grant a user code names.
pub fn oauth_user_code(user_code: &str) -> String {
    format!("oauth:user_code:{user_code}")
}
/// `oauth:device_fail:src:{source}`: wrong user codes entered from one address.
pub fn oauth_device_fail_source(source: &str) -> String {
    format!("oauth:device_fail:src:{source}")
}
/// `oauth:device_fail:code:{code_digest}`: wrong entries of one user code.
pub fn oauth_device_fail_code(code_digest: &str) -> String {
    format!("oauth:device_fail:code:{code_digest}")
}
/// `oauth:token:{jti}`: a live access token's record.
pub fn oauth_token(jti: &str) -> String {
    format!("oauth:token:{jti}")
}
/// `oauth:family:{family}:jtis`: the access tokens of a token family.
pub fn oauth_family_jtis(family: &str) -> String {
    format!("oauth:family:{family}:jtis")
}
/// `oauth:family:{family}:refresh`: the refresh token digests of a family.
pub fn oauth_family_refresh(family: &str) -> String {
    format!("oauth:family:{family}:refresh")
}
/// `oauth:family:{family}:revoked`: set when a family is revoked.
pub fn oauth_family_revoked(family: &str) -> String {
    format!("oauth:family:{family}:revoked")
}
/// `oauth:user_tokens:{user_id}`: the access tokens issued to a user.
pub fn oauth_user_tokens(user_id: &str) -> String {
    format!("oauth:user_tokens:{user_id}")
}
/// `oauth:client_families:{client_id}`: the token families issued to a client.
pub fn oauth_client_families(client_id: &str) -> String {
    format!("oauth:client_families:{client_id}")
}
/// `oauth:refresh:{refresh_digest}`: a refresh token's grant.
pub fn oauth_refresh(refresh_digest: &str) -> String {
    format!("oauth:refresh:{refresh_digest}")
}
/// `oauth:refresh_lock:{refresh_digest}`: one rotation of a refresh token at a time.
pub fn oauth_refresh_lock(refresh_digest: &str) -> String {
    format!("oauth:refresh_lock:{refresh_digest}")
}
