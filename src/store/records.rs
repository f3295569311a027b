//! The record rules, written once over any [`Backend`]: which keys a record
//! writes (indexes, owner sets), what it must not collide with and the
//! message when it does, what a token's deletion takes with it. Every write
//! is one [`Batch`] (checks, writes, event), retried from a fresh read when a
//! concurrent write changed what it read.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::backend::{Applied, Backend, Batch, Check, Depth, Expiry};
use super::{keys, CascadeReport, EventKind, StoreError, StoreResult};
use crate::model::{Certificate, Proxy, Route, Token};

/// How often a write is rebuilt when a concurrent write changed what it read.
const WRITE_ATTEMPTS: usize = 8;

/// Counters see many concurrent increments (rate limits): more attempts.
const INCR_ATTEMPTS: usize = 64;

pub(super) fn decode<T: DeserializeOwned>(key: &str, raw: &str) -> StoreResult<T> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
}

pub(super) fn encode<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The error when writes kept racing: the caller may try again.
pub(super) fn contended() -> StoreError {
    StoreError::Conflict("too many concurrent writes, try again".into())
}

/// Another route already has `r`'s path and priority.
fn route_conflict(r: &Route) -> StoreError {
    StoreError::Conflict(format!(
        "a route for path {} at priority {} already exists",
        r.path_pattern, r.priority
    ))
}

/// The message for a failed check when the write has no better one.
fn generic_failure(a: Applied) -> StoreError {
    match a {
        Applied::Missing(k) => StoreError::NotFound(k),
        Applied::Conflict(k) | Applied::Changed(k) => StoreError::Conflict(format!("{k} already exists")),
        Applied::Ok => StoreError::Unavailable("write reported success as a failure".into()),
    }
}

async fn get_json<T: DeserializeOwned, B: Backend + ?Sized>(b: &B, key: &str) -> StoreResult<Option<T>> {
    b.get(key).await?.map(|r| decode(key, &r)).transpose()
}

/// Every record of a family (`proxy`, `route`, ...): keys `{prefix}:{id}` whose id has no ':'.
async fn family<T: DeserializeOwned, B: Backend + ?Sized>(b: &B, prefix: &str) -> StoreResult<Vec<T>> {
    b.scan(&format!("{prefix}:"), Depth::Direct)
        .await?
        .iter()
        .map(|(k, v)| decode(k, v))
        .collect()
}

/// `(id, value)` of every key `{prefix}{id}`.
async fn ids<B: Backend + ?Sized>(b: &B, prefix: &str) -> StoreResult<Vec<(String, String)>> {
    Ok(b.scan(prefix, Depth::All)
        .await?
        .into_iter()
        .map(|(k, v)| (k[prefix.len()..].to_string(), v))
        .collect())
}

/// Builds a batch from a fresh read and applies it until nothing it read
/// changed in between; a failed check other than a change becomes `fail(..)`.
pub(super) async fn retry<B, F, Fut, T>(b: &B, mut build: F, fail: impl Fn(Applied) -> StoreError) -> StoreResult<T>
where
    B: Backend + ?Sized,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<(Batch, T)>>,
{
    for _ in 0..WRITE_ATTEMPTS {
        let (batch, out) = build().await?;
        match b.apply(&batch).await? {
            Applied::Ok => return Ok(out),
            Applied::Changed(_) => continue,
            other => return Err(fail(other)),
        }
    }
    Err(contended())
}

/// Applies a batch that reads nothing first; a failed check becomes `fail(..)`.
async fn once<B: Backend + ?Sized>(b: &B, batch: &Batch, fail: impl Fn(Applied) -> StoreError) -> StoreResult<()> {
    match b.apply(batch).await? {
        Applied::Ok => Ok(()),
        other => Err(fail(other)),
    }
}

/// Deletes the domain index entries of certificate `name` (except `keep`) that still name it.
async fn cert_domain_cleanup<B: Backend + ?Sized>(
    b: &B,
    batch: &mut Batch,
    name: &str,
    domains: &[String],
    keep: &[String],
) -> StoreResult<()> {
    for d in domains.iter().filter(|d| !keep.contains(d)) {
        let k = keys::cert_domain(d);
        if b.get(&k).await?.as_deref() == Some(name) {
            batch.check(Check::Equals(k.clone(), name.to_string())).del(k);
        }
    }
    Ok(())
}

/// Adds a route's index keys to `batch`: its uniqueness and priority keys.
fn index_route(batch: &mut Batch, r: &Route) {
    for k in keys::route_unique_keys(r) {
        batch.put(k, r.route_id.clone());
    }
    batch.put(keys::route_priority(r.priority, &r.route_id), r.route_id.clone());
}

/// Adds the deletion of a route's index keys to `batch`, including a
/// pre-upgrade global uniqueness key that still names it.
async fn unindex_route<B: Backend + ?Sized>(b: &B, batch: &mut Batch, r: &Route) -> StoreResult<()> {
    for k in keys::route_unique_keys(r) {
        batch.del(k);
    }
    batch.del(keys::route_priority(r.priority, &r.route_id));
    if let Some(legacy) = keys::route_unique_legacy(r) {
        if b.get(&legacy).await?.as_deref() == Some(r.route_id.as_str()) {
            batch.check(Check::Equals(legacy.clone(), r.route_id.clone())).del(legacy);
        }
    }
    Ok(())
}

/// Adds the deletion of one record a token owns (and its indexes) to `batch`.
async fn cascade_member<B: Backend + ?Sized>(b: &B, batch: &mut Batch, member: &str, report: &mut CascadeReport) -> StoreResult<()> {
    let raw = b.get(member).await?;
    batch.unchanged(member, &raw);
    let Some(raw) = raw else { return Ok(()) };
    batch.del(member);
    if let Some(h) = member.strip_prefix("proxy:") {
        report.proxies.push(h.to_string());
    } else if let Some(id) = member.strip_prefix("route:") {
        let r: Route = decode(member, &raw)?;
        unindex_route(b, batch, &r).await?;
        report.routes.push(id.to_string());
    } else if let Some(name) = member.strip_prefix("cert:") {
        let c: Certificate = decode(member, &raw)?;
        cert_domain_cleanup(b, batch, name, &c.domains, &[]).await?;
        report.certificates.push(name.to_string());
    }
    Ok(())
}

/// Every persistent operation on records and small values, over any
/// [`Backend`]. Each write is atomic and publishes at most one
/// [`ChangeEvent`], only when it succeeds. Implemented once, for every backend.
#[async_trait]
pub trait Store: Backend {
    /// One proxy by hostname.
    async fn get_proxy(&self, hostname: &str) -> StoreResult<Option<Proxy>> {
        get_json(self, &keys::proxy(hostname)).await
    }
    /// Every proxy.
    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>> {
        family(self, "proxy").await
    }
    /// Creates a proxy; `Conflict` if the hostname exists.
    async fn create_proxy(&self, proxy: &Proxy) -> StoreResult<()> {
        let key = keys::proxy(&proxy.hostname);
        let mut b = Batch::with_event(EventKind::Proxy, &proxy.hostname, "create");
        b.check(Check::Absent(key.clone()))
            .put(key.clone(), encode(proxy))
            .sadd(keys::owner(&proxy.owner_token_hash), key, None);
        once(self, &b, |_| {
            StoreError::Conflict(format!("proxy {} already exists", proxy.hostname))
        })
        .await
    }
    /// Replaces a proxy; `NotFound` if it is gone.
    async fn update_proxy(&self, proxy: &Proxy) -> StoreResult<()> {
        let key = keys::proxy(&proxy.hostname);
        let mut b = Batch::with_event(EventKind::Proxy, &proxy.hostname, "update");
        b.check(Check::Present(key.clone())).put(key, encode(proxy));
        once(self, &b, |_| StoreError::NotFound(format!("proxy {}", proxy.hostname))).await
    }
    /// Deletes a proxy; `NotFound` if it is gone.
    async fn delete_proxy(&self, hostname: &str) -> StoreResult<()> {
        let key = keys::proxy(hostname);
        let build = || async {
            let raw = self
                .get(&key)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("proxy {hostname}")))?;
            let p: Proxy = decode(&key, &raw)?;
            let mut b = Batch::with_event(EventKind::Proxy, hostname, "delete");
            b.check(Check::Equals(key.clone(), raw))
                .del(key.clone())
                .srem(keys::owner(&p.owner_token_hash), key.clone());
            Ok((b, ()))
        };
        retry(self, build, generic_failure).await
    }

    /// One route by id.
    async fn get_route(&self, id: &str) -> StoreResult<Option<Route>> {
        get_json(self, &keys::route(id)).await
    }
    /// Every route.
    async fn list_routes(&self) -> StoreResult<Vec<Route>> {
        family(self, "route").await
    }
    /// Creates a route; `Conflict` on a taken id or path+priority.
    async fn create_route(&self, route: &Route) -> StoreResult<()> {
        let key = keys::route(&route.route_id);
        let mut b = Batch::with_event(EventKind::Route, &route.route_id, "create");
        b.check(Check::Absent(key.clone()));
        for unique in keys::route_unique_keys(route) {
            b.check(Check::Absent(unique));
        }
        b.put(key.clone(), encode(route))
            .sadd(keys::owner(&route.owner_token_hash), key.clone(), None);
        index_route(&mut b, route);
        once(self, &b, |a| match a {
            Applied::Conflict(k) if k == key => StoreError::Conflict(format!("route id {} already exists", route.route_id)),
            _ => route_conflict(route),
        })
        .await
    }
    /// Replaces a route (same id), moving its indexes.
    async fn update_route(&self, route: &Route) -> StoreResult<()> {
        let key = keys::route(&route.route_id);
        let build = || async {
            let raw = self
                .get(&key)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("route {}", route.route_id)))?;
            let old: Route = decode(&key, &raw)?;
            let mut b = Batch::with_event(EventKind::Route, &route.route_id, "update");
            b.check(Check::Equals(key.clone(), raw));
            let old_u = keys::route_unique_keys(&old);
            for k in keys::route_unique_keys(route).into_iter().filter(|k| !old_u.contains(k)) {
                b.check(Check::Absent(k));
            }
            unindex_route(self, &mut b, &old).await?;
            b.put(key.clone(), encode(route));
            index_route(&mut b, route);
            Ok((b, ()))
        };
        retry(self, build, |a| match a {
            Applied::Conflict(_) => route_conflict(route),
            other => generic_failure(other),
        })
        .await
    }
    /// Deletes a route and its indexes.
    async fn delete_route(&self, id: &str) -> StoreResult<()> {
        let key = keys::route(id);
        let build = || async {
            let raw = self.get(&key).await?.ok_or_else(|| StoreError::NotFound(format!("route {id}")))?;
            let r: Route = decode(&key, &raw)?;
            let mut b = Batch::with_event(EventKind::Route, id, "delete");
            b.check(Check::Equals(key.clone(), raw)).del(key.clone());
            unindex_route(self, &mut b, &r).await?;
            b.srem(keys::owner(&r.owner_token_hash), key.clone());
            Ok((b, ()))
        };
        retry(self, build, generic_failure).await
    }

    /// One token by name.
    async fn get_token(&self, name: &str) -> StoreResult<Option<Token>> {
        get_json(self, &keys::token(name)).await
    }
    /// One token by `sha256:` hash.
    async fn get_token_by_hash(&self, hash: &str) -> StoreResult<Option<Token>> {
        match self.get(&keys::token_hash(hash)).await? {
            Some(name) => Ok(self.get_token(&name).await?.filter(|t| t.hash == hash)),
            None => Ok(None),
        }
    }
    /// Every token.
    async fn list_tokens(&self) -> StoreResult<Vec<Token>> {
        family(self, "token").await
    }
    /// Creates a token; `Conflict` on a taken name or hash.
    async fn create_token(&self, token: &Token) -> StoreResult<()> {
        let key = keys::token(&token.name);
        let by_hash = keys::token_hash(&token.hash);
        let mut b = Batch::with_event(EventKind::Token, &token.name, "create");
        b.check(Check::Absent(key.clone()))
            .check(Check::Absent(by_hash.clone()))
            .put(key, encode(token))
            .put(by_hash, token.name.clone());
        once(self, &b, |_| StoreError::Conflict(format!("token {} already exists", token.name))).await
    }
    /// Replaces a token's record (same name and hash).
    async fn update_token(&self, token: &Token) -> StoreResult<()> {
        let key = keys::token(&token.name);
        let mut b = Batch::with_event(EventKind::Token, &token.name, "update");
        b.check(Check::Present(key.clone())).put(key, encode(token));
        once(self, &b, |_| StoreError::NotFound(format!("token {}", token.name))).await
    }
    /// Deletes a token and everything it owns, in one atomic step.
    async fn delete_token_cascade(&self, name: &str) -> StoreResult<CascadeReport> {
        let key = keys::token(name);
        let build = || async {
            let raw = self.get(&key).await?.ok_or_else(|| StoreError::NotFound(format!("token {name}")))?;
            let token: Token = decode(&key, &raw)?;
            let owner = keys::owner(&token.hash);
            let members = self.members(&owner).await?;
            let mut b = Batch::with_event(EventKind::Token, name, "delete");
            b.check(Check::Equals(key.clone(), raw))
                .check(Check::Members(owner.clone(), members.clone()));
            let mut report = CascadeReport::default();
            for m in &members {
                cascade_member(self, &mut b, m, &mut report).await?;
            }
            b.del(key.clone()).del(keys::token_hash(&token.hash)).del(owner);
            Ok((b, report))
        };
        retry(self, build, generic_failure).await
    }

    /// One certificate by name.
    async fn get_cert(&self, name: &str) -> StoreResult<Option<Certificate>> {
        get_json(self, &keys::cert(name)).await
    }
    /// Every certificate.
    async fn list_certs(&self) -> StoreResult<Vec<Certificate>> {
        family(self, "cert").await
    }
    /// Creates or replaces a certificate and its domain index.
    async fn put_cert(&self, cert: &Certificate) -> StoreResult<()> {
        let key = keys::cert(&cert.cert_name);
        let build = || async {
            let raw = self.get(&key).await?;
            let op = if raw.is_some() { "update" } else { "create" };
            let mut b = Batch::with_event(EventKind::Cert, &cert.cert_name, op);
            b.unchanged(&key, &raw);
            if let Some(r) = &raw {
                let old: Certificate = decode(&key, r)?;
                cert_domain_cleanup(self, &mut b, &cert.cert_name, &old.domains, &cert.domains).await?;
                if old.owner_token_hash != cert.owner_token_hash {
                    b.srem(keys::owner(&old.owner_token_hash), key.clone());
                }
            }
            b.put(key.clone(), encode(cert));
            for d in &cert.domains {
                b.put(keys::cert_domain(d), cert.cert_name.clone());
            }
            b.sadd(keys::owner(&cert.owner_token_hash), key.clone(), None);
            Ok((b, ()))
        };
        retry(self, build, generic_failure).await
    }
    /// Deletes a certificate and its domain index.
    async fn delete_cert(&self, name: &str) -> StoreResult<()> {
        let key = keys::cert(name);
        let build = || async {
            let raw = self
                .get(&key)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("certificate {name}")))?;
            let c: Certificate = decode(&key, &raw)?;
            let mut b = Batch::with_event(EventKind::Cert, name, "delete");
            b.check(Check::Equals(key.clone(), raw)).del(key.clone());
            cert_domain_cleanup(self, &mut b, name, &c.domains, &[]).await?;
            b.srem(keys::owner(&c.owner_token_hash), key.clone());
            Ok((b, ()))
        };
        retry(self, build, generic_failure).await
    }

    /// Named service URLs (`service` route targets).
    async fn list_service_urls(&self) -> StoreResult<HashMap<String, String>> {
        Ok(ids(self, &keys::service_url("")).await?.into_iter().collect())
    }
    /// Sets a named service URL.
    async fn put_service_url(&self, name: &str, url: &str) -> StoreResult<()> {
        let mut b = Batch::with_event(EventKind::Service, name, "update");
        b.put(keys::service_url(name), url);
        once(self, &b, generic_failure).await
    }
    /// Removes a named service URL; `NotFound` if it is not set.
    async fn delete_service_url(&self, name: &str) -> StoreResult<()> {
        let key = keys::service_url(name);
        let mut b = Batch::with_event(EventKind::Service, name, "delete");
        b.check(Check::Present(key.clone())).del(key);
        once(self, &b, |_| StoreError::NotFound(format!("service {name}"))).await
    }

    /// Reads a small internal value (self-signed certificate, the key ring).
    async fn get_value(&self, key: &str) -> StoreResult<Option<String>> {
        self.get(&keys::internal(key)).await
    }
    /// Sets a small internal value unless present; true when this call set it.
    async fn set_value_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        set_nx(self, &keys::internal(key), value, Expiry::Never).await
    }
    /// Sets a small internal value (overwriting).
    async fn set_value(&self, key: &str, value: &str) -> StoreResult<()> {
        self.kv_set(&keys::internal(key), value, None).await
    }

    /// Stores an HTTP-01 answer for `token` (expires after `ttl_secs`); publishes an event.
    async fn put_challenge(&self, token: &str, key_authorization: &str, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::with_event(EventKind::Challenge, token, "create");
        b.put_ex(keys::acme_challenge(token), key_authorization, ttl_secs);
        once(self, &b, generic_failure).await
    }
    /// Removes an HTTP-01 answer; publishes an event.
    async fn delete_challenge(&self, token: &str) -> StoreResult<()> {
        let mut b = Batch::with_event(EventKind::Challenge, token, "delete");
        b.del(keys::acme_challenge(token));
        once(self, &b, generic_failure).await
    }
    /// Every live HTTP-01 answer, by token.
    async fn list_challenges(&self) -> StoreResult<HashMap<String, String>> {
        Ok(ids(self, &keys::acme_challenge("")).await?.into_iter().collect())
    }

    /// Certificate generation status (operational state: no change event).
    async fn get_cert_status(&self, name: &str) -> StoreResult<Option<String>> {
        self.get(&keys::cert_status(name)).await
    }
    /// Sets the generation status, expiring after `ttl_secs` when given.
    async fn put_cert_status(&self, name: &str, status_json: &str, ttl_secs: Option<u64>) -> StoreResult<()> {
        self.kv_set(&keys::cert_status(name), status_json, ttl_secs).await
    }

    /// Takes the named lock for `ttl_secs` unless someone holds it; true when taken.
    async fn acquire_lock(&self, name: &str, owner: &str, ttl_secs: u64) -> StoreResult<bool> {
        set_nx(self, &keys::lock(name), owner, Expiry::Secs(ttl_secs.max(1))).await
    }
    /// Releases the lock if `owner` still holds it.
    async fn release_lock(&self, name: &str, owner: &str) -> StoreResult<()> {
        let key = keys::lock(name);
        if self.get(&key).await?.as_deref() != Some(owner) {
            return Ok(());
        }
        let mut b = Batch::default();
        b.check(Check::Equals(key.clone(), owner.to_string())).del(key);
        // Changed: it expired and someone else holds it now, which is theirs to release.
        self.apply(&b).await.map(|_| ())
    }

    /// Marks an access token id revoked until `ttl_secs` (its expiry); publishes an event.
    async fn put_revocation(&self, jti: &str, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::with_event(EventKind::Revocation, jti, "create");
        b.put_ex(keys::oauth_revoked(jti), "1", ttl_secs);
        once(self, &b, generic_failure).await
    }
    /// Every revoked, unexpired access token id.
    async fn list_revocations(&self) -> StoreResult<Vec<String>> {
        Ok(ids(self, &keys::oauth_revoked("")).await?.into_iter().map(|(id, _)| id).collect())
    }
    /// Publishes a change event without writing a record (e.g. key rotation).
    async fn publish(&self, kind: EventKind, id: &str, op: &str) -> StoreResult<()> {
        once(self, &Batch::with_event(kind, id, op), generic_failure).await
    }

    /// Small state outside the record families (resources, rate counters): reads a value.
    async fn kv_get(&self, key: &str) -> StoreResult<Option<String>> {
        self.get(key).await
    }
    /// Sets a value, expiring after `ttl_secs` when given.
    async fn kv_set(&self, key: &str, value: &str, ttl_secs: Option<u64>) -> StoreResult<()> {
        let mut b = Batch::default();
        match ttl_secs {
            Some(t) => b.put_ex(key, value, t),
            None => b.put(key, value),
        };
        once(self, &b, generic_failure).await
    }
    /// Sets unless present; true when this call set it.
    async fn kv_set_nx(&self, key: &str, value: &str, ttl_secs: u64) -> StoreResult<bool> {
        set_nx(self, key, value, Expiry::Secs(ttl_secs.max(1))).await
    }
    /// Reads and deletes in one step (single-use values).
    async fn kv_take(&self, key: &str) -> StoreResult<Option<String>> {
        take(self, key, Batch::default()).await
    }
    /// Deletes.
    async fn kv_del(&self, key: &str) -> StoreResult<()> {
        let mut b = Batch::default();
        b.del(key);
        once(self, &b, generic_failure).await
    }
    /// Increments a counter that expires `ttl_secs` after its first increment.
    async fn kv_incr(&self, key: &str, ttl_secs: u64) -> StoreResult<i64> {
        incr(self, key, ttl_secs).await
    }
    /// Every `(key, value)` under `prefix`.
    async fn kv_scan(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        self.scan(prefix, Depth::All).await
    }
    /// Adds to a set that expires after `ttl_secs`.
    async fn kv_sadd(&self, key: &str, member: &str, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.sadd(key, member, Some(ttl_secs));
        once(self, &b, generic_failure).await
    }
    /// Members of a set.
    async fn kv_smembers(&self, key: &str) -> StoreResult<Vec<String>> {
        self.members(key).await
    }
}

impl<B: Backend> Store for B {}

/// Writes `key` unless it exists; true when this call wrote it.
pub(super) async fn set_nx<B: Backend + ?Sized>(b: &B, key: &str, value: &str, expiry: Expiry) -> StoreResult<bool> {
    let mut batch = Batch::default();
    batch.check(Check::Absent(key.to_string()));
    batch.set.push((key.to_string(), value.to_string(), expiry));
    match b.apply(&batch).await? {
        Applied::Ok => Ok(true),
        Applied::Conflict(_) => Ok(false),
        other => Err(generic_failure(other)),
    }
}

/// Reads and deletes `key` together with `extra` writes, in one step: of
/// concurrent takers exactly one gets the value.
pub(super) async fn take<B: Backend + ?Sized>(b: &B, key: &str, extra: Batch) -> StoreResult<Option<String>> {
    for _ in 0..WRITE_ATTEMPTS {
        let Some(v) = b.get(key).await? else { return Ok(None) };
        let mut batch = extra.clone();
        batch.checks.insert(0, Check::Equals(key.to_string(), v.clone()));
        batch.del(key);
        match b.apply(&batch).await? {
            Applied::Ok => return Ok(Some(v)),
            Applied::Changed(k) if k == key => continue,
            other => return Err(generic_failure(other)),
        }
    }
    Err(contended())
}

/// Increments the counter `key`, which expires `ttl_secs` after its first increment.
pub(super) async fn incr<B: Backend + ?Sized>(b: &B, key: &str, ttl_secs: u64) -> StoreResult<i64> {
    for _ in 0..INCR_ATTEMPTS {
        let seen = b.get(key).await?;
        let n = match &seen {
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| StoreError::Corrupt(format!("{key}: not a counter")))?
                .saturating_add(1),
            None => 1,
        };
        let mut batch = Batch::default();
        batch.unchanged(key, &seen);
        let expiry = if seen.is_some() {
            Expiry::Keep
        } else {
            Expiry::Secs(ttl_secs.max(1))
        };
        batch.set.push((key.to_string(), n.to_string(), expiry));
        if b.apply(&batch).await? == Applied::Ok {
            return Ok(n);
        }
    }
    Err(contended())
}
