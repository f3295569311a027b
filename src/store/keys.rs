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
/// `oauth:revoked:{jti}`
pub fn oauth_revoked(jti: &str) -> String {
    format!("oauth:revoked:{jti}")
}
