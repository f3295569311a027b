//! [`Store`] on Redis: JSON records under the reference keys, every write one
//! Lua script (checks, writes, PUBLISH) so it is atomic and publishes once.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::keys;
use super::{route_conflict, CascadeReport, ChangeEvent, EventKind, Store, StoreError, StoreResult};
use crate::model::{Certificate, Proxy, Route, Token};

/// How often an optimistic write is retried when a concurrent write got there first.
const WRITE_ATTEMPTS: usize = 8;

/// Keys examined per SCAN round trip.
const SCAN_COUNT: usize = 1000;

/// Redis-backed store; cheap to clone (one multiplexed, self-healing connection).
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    script: std::sync::Arc<redis::Script>,
}

#[derive(Serialize)]
struct Check {
    key: String,
    cond: &'static str,
    value: String,
}

#[derive(Serialize, Default)]
struct WriteOp {
    checks: Vec<Check>,
    del: Vec<String>,
    set: Vec<(String, String)>,
    sadd: Vec<(String, String)>,
    srem: Vec<(String, String)>,
    setex: Vec<(String, String, u64)>,
    channel: String,
    event: String,
}

impl WriteOp {
    fn new(kind: EventKind, id: &str, op: &str) -> Self {
        let event = serde_json::to_string(&ChangeEvent {
            kind,
            id: id.to_string(),
            op: op.to_string(),
        })
        .unwrap_or_default();
        Self {
            channel: keys::EVENTS_CHANNEL.to_string(),
            event,
            ..Default::default()
        }
    }
    fn check(&mut self, key: String, cond: &'static str, value: impl Into<String>) -> &mut Self {
        self.checks.push(Check {
            key,
            cond,
            value: value.into(),
        });
        self
    }
    /// `equals` when we read a value, `absent` when we read none.
    fn unchanged(&mut self, key: String, seen: &Option<String>) -> &mut Self {
        match seen {
            Some(v) => self.check(key, "equals", v.clone()),
            None => self.check(key, "absent", ""),
        }
    }
}

/// Outcome of one script run.
enum Applied {
    Ok,
    Conflict(String),
    Missing(String),
    Changed,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn decode<T: DeserializeOwned>(key: &str, raw: &str) -> StoreResult<T> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
}

fn encode<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl RedisStore {
    /// Connects to `url` (fails fast if Redis does not answer).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(std::time::Duration::from_secs(3))
            .set_response_timeout(std::time::Duration::from_secs(5))
            // No internal retries: redis-rs backs off 1 s then up to 60 s
            // (factor 100), which made this "fail fast" connect hang past
            // REDIS_STARTUP_TIMEOUT and stalled reconnects. Callers retry.
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_with_config(client.clone(), cfg).await.map_err(unavailable)?;
        let store = Self {
            client,
            conn,
            script: std::sync::Arc::new(redis::Script::new(include_str!("apply.lua"))),
        };
        store.ping().await?;
        Ok(store)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn apply(&self, op: &WriteOp) -> StoreResult<Applied> {
        let out: Vec<String> = self
            .script
            .arg(encode(op))
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let key = out.get(1).cloned().unwrap_or_default();
        Ok(match out.first().map(String::as_str) {
            Some("ok") => Applied::Ok,
            Some("conflict") => Applied::Conflict(key),
            Some("missing") => Applied::Missing(key),
            _ => Applied::Changed,
        })
    }

    async fn raw(&self, key: &str) -> StoreResult<Option<String>> {
        self.conn().get(key).await.map_err(unavailable)
    }

    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        self.raw(key).await?.map(|r| decode(key, &r)).transpose()
    }

    /// Every key matching `pattern`.
    async fn scan_keys(&self, pattern: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        let mut found = Vec::new();
        // COUNT 1000 instead of Redis's default 10: a snapshot rebuild scans several
        // families, and with the default each scan was one round trip per 10 keys.
        let opts = redis::ScanOptions::default().with_pattern(pattern).with_count(SCAN_COUNT);
        let mut iter: redis::AsyncIter<String> = conn.scan_options(opts).await.map_err(unavailable)?;
        while let Some(k) = iter.next_item().await {
            found.push(k.map_err(unavailable)?);
        }
        Ok(found)
    }

    /// Values of `keys` (missing ones skipped), fetched in chunks.
    async fn values(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>> {
        let mut conn = self.conn();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let vals: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query_async(&mut conn).await.map_err(unavailable)?;
            out.extend(chunk.iter().zip(vals).filter_map(|(k, v)| Some((k.clone(), v?))));
        }
        Ok(out)
    }

    /// `(id, value)` of every key `{prefix}{id}`.
    async fn scan_ids(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .kv_scan(prefix)
            .await?
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_string(), v))
            .collect())
    }

    /// Every record of a family (`proxy`, `route`, ...): keys `prefix:{id}` whose id has no ':'.
    async fn list_family<T: DeserializeOwned>(&self, prefix: &str) -> StoreResult<Vec<T>> {
        let (pattern, skip) = keys::family(prefix);
        let mut found: Vec<String> = self
            .scan_keys(&pattern)
            .await?
            .into_iter()
            .filter(|k| !k[skip..].contains(':'))
            .collect();
        found.sort();
        self.values(&found).await?.iter().map(|(k, v)| decode(k, v)).collect()
    }

    /// Runs `build` (which reads current state and returns the write) until
    /// it applies without a concurrent change in between.
    async fn write_with_retry<F, Fut>(&self, mut build: F) -> StoreResult<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<WriteOp>>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let op = build().await?;
            match self.apply(&op).await? {
                Applied::Ok => return Ok(()),
                Applied::Conflict(k) => return Err(StoreError::Conflict(format!("{k} already exists"))),
                Applied::Missing(k) => return Err(StoreError::NotFound(k)),
                Applied::Changed => continue,
            }
        }
        Err(StoreError::Conflict("too many concurrent writes, try again".into()))
    }

    /// Delete keys for a certificate's domain index entries that still point at it.
    async fn cert_domain_cleanup(&self, op: &mut WriteOp, name: &str, domains: &[String], keep: &[String]) -> StoreResult<()> {
        for d in domains.iter().filter(|d| !keep.contains(d)) {
            let k = keys::cert_domain(d);
            let cur = self.raw(&k).await?;
            if cur.as_deref() == Some(name) {
                op.check(k.clone(), "equals", name);
                op.del.push(k);
            }
        }
        Ok(())
    }

    /// Adds the deletion of a route's index keys to `op`: its uniqueness and
    /// priority keys, and a pre-upgrade global uniqueness key still naming it.
    async fn drop_route_indexes(&self, op: &mut WriteOp, r: &Route) -> StoreResult<()> {
        op.del.extend(keys::route_unique_keys(r));
        op.del.push(keys::route_priority(r.priority, &r.route_id));
        if let Some(legacy) = keys::route_unique_legacy(r) {
            if self.raw(&legacy).await?.as_deref() == Some(r.route_id.as_str()) {
                op.check(legacy.clone(), "equals", r.route_id.clone());
                op.del.push(legacy);
            }
        }
        Ok(())
    }

    /// Adds the deletion of one owned record (and its indexes) to `op`.
    async fn cascade_member(&self, op: &mut WriteOp, member: &str, report: &mut CascadeReport) -> StoreResult<()> {
        let raw = self.raw(member).await?;
        op.unchanged(member.to_string(), &raw);
        let Some(raw) = raw else { return Ok(()) };
        op.del.push(member.to_string());
        if let Some(h) = member.strip_prefix("proxy:") {
            report.proxies.push(h.to_string());
        } else if let Some(id) = member.strip_prefix("route:") {
            let r: Route = decode(member, &raw)?;
            self.drop_route_indexes(op, &r).await?;
            report.routes.push(id.to_string());
        } else if let Some(name) = member.strip_prefix("cert:") {
            let c: Certificate = decode(member, &raw)?;
            self.cert_domain_cleanup(op, name, &c.domains, &[]).await?;
            report.certificates.push(name.to_string());
        }
        Ok(())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await.map_err(unavailable)?;
        Ok(())
    }

    async fn get_proxy(&self, hostname: &str) -> StoreResult<Option<Proxy>> {
        self.get_json(&keys::proxy(hostname)).await
    }

    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>> {
        self.list_family("proxy").await
    }

    async fn create_proxy(&self, proxy: &Proxy) -> StoreResult<()> {
        let key = keys::proxy(&proxy.hostname);
        let mut op = WriteOp::new(EventKind::Proxy, &proxy.hostname, "create");
        op.check(key.clone(), "absent", "");
        op.set.push((key.clone(), encode(proxy)));
        op.sadd.push((keys::owner(&proxy.owner_token_hash), key));
        match self.apply(&op).await? {
            Applied::Ok => Ok(()),
            _ => Err(StoreError::Conflict(format!("proxy {} already exists", proxy.hostname))),
        }
    }

    async fn update_proxy(&self, proxy: &Proxy) -> StoreResult<()> {
        let key = keys::proxy(&proxy.hostname);
        let mut op = WriteOp::new(EventKind::Proxy, &proxy.hostname, "update");
        op.check(key.clone(), "present", "");
        op.set.push((key, encode(proxy)));
        match self.apply(&op).await? {
            Applied::Ok => Ok(()),
            _ => Err(StoreError::NotFound(format!("proxy {}", proxy.hostname))),
        }
    }

    async fn delete_proxy(&self, hostname: &str) -> StoreResult<()> {
        let key = keys::proxy(hostname);
        self.write_with_retry(|| async {
            let raw = self
                .raw(&key)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("proxy {hostname}")))?;
            let p: Proxy = decode(&key, &raw)?;
            let mut op = WriteOp::new(EventKind::Proxy, hostname, "delete");
            op.check(key.clone(), "equals", raw);
            op.del.push(key.clone());
            op.srem.push((keys::owner(&p.owner_token_hash), key.clone()));
            Ok(op)
        })
        .await
    }

    async fn get_route(&self, id: &str) -> StoreResult<Option<Route>> {
        self.get_json(&keys::route(id)).await
    }

    async fn list_routes(&self) -> StoreResult<Vec<Route>> {
        self.list_family("route").await
    }

    async fn create_route(&self, route: &Route) -> StoreResult<()> {
        let key = keys::route(&route.route_id);
        let mut op = WriteOp::new(EventKind::Route, &route.route_id, "create");
        op.check(key.clone(), "absent", "");
        for unique in keys::route_unique_keys(route) {
            op.check(unique.clone(), "absent", "");
            op.set.push((unique, route.route_id.clone()));
        }
        op.set.push((key.clone(), encode(route)));
        op.set
            .push((keys::route_priority(route.priority, &route.route_id), route.route_id.clone()));
        op.sadd.push((keys::owner(&route.owner_token_hash), key.clone()));
        match self.apply(&op).await? {
            Applied::Ok => Ok(()),
            Applied::Conflict(k) if k == key => Err(StoreError::Conflict(format!("route id {} already exists", route.route_id))),
            _ => Err(route_conflict(route)),
        }
    }

    async fn update_route(&self, route: &Route) -> StoreResult<()> {
        let key = keys::route(&route.route_id);
        let conflict = std::sync::atomic::AtomicBool::new(false);
        let res = self
            .write_with_retry(|| async {
                let raw = self
                    .raw(&key)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("route {}", route.route_id)))?;
                let old: Route = decode(&key, &raw)?;
                let mut op = WriteOp::new(EventKind::Route, &route.route_id, "update");
                op.check(key.clone(), "equals", raw);
                let (old_u, new_u) = (keys::route_unique_keys(&old), keys::route_unique_keys(route));
                for k in new_u.iter().filter(|k| !old_u.contains(k)) {
                    op.check(k.clone(), "absent", "");
                    conflict.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                self.drop_route_indexes(&mut op, &old).await?;
                op.set.push((key.clone(), encode(route)));
                for k in new_u {
                    op.set.push((k, route.route_id.clone()));
                }
                op.set
                    .push((keys::route_priority(route.priority, &route.route_id), route.route_id.clone()));
                Ok(op)
            })
            .await;
        match res {
            Err(StoreError::Conflict(_)) if conflict.load(std::sync::atomic::Ordering::Relaxed) => Err(route_conflict(route)),
            other => other,
        }
    }

    async fn delete_route(&self, id: &str) -> StoreResult<()> {
        let key = keys::route(id);
        self.write_with_retry(|| async {
            let raw = self.raw(&key).await?.ok_or_else(|| StoreError::NotFound(format!("route {id}")))?;
            let r: Route = decode(&key, &raw)?;
            let mut op = WriteOp::new(EventKind::Route, id, "delete");
            op.check(key.clone(), "equals", raw);
            op.del.push(key.clone());
            self.drop_route_indexes(&mut op, &r).await?;
            op.srem.push((keys::owner(&r.owner_token_hash), key.clone()));
            Ok(op)
        })
        .await
    }

    async fn get_token(&self, name: &str) -> StoreResult<Option<Token>> {
        self.get_json(&keys::token(name)).await
    }

    async fn get_token_by_hash(&self, hash: &str) -> StoreResult<Option<Token>> {
        match self.raw(&keys::token_hash(hash)).await? {
            Some(name) => Ok(self.get_token(&name).await?.filter(|t| t.hash == hash)),
            None => Ok(None),
        }
    }

    async fn list_tokens(&self) -> StoreResult<Vec<Token>> {
        self.list_family("token").await
    }

    async fn create_token(&self, token: &Token) -> StoreResult<()> {
        let key = keys::token(&token.name);
        let mut op = WriteOp::new(EventKind::Token, &token.name, "create");
        op.check(key.clone(), "absent", "")
            .check(keys::token_hash(&token.hash), "absent", "");
        op.set.push((key, encode(token)));
        op.set.push((keys::token_hash(&token.hash), token.name.clone()));
        match self.apply(&op).await? {
            Applied::Ok => Ok(()),
            _ => Err(StoreError::Conflict(format!("token {} already exists", token.name))),
        }
    }

    async fn update_token(&self, token: &Token) -> StoreResult<()> {
        let key = keys::token(&token.name);
        let mut op = WriteOp::new(EventKind::Token, &token.name, "update");
        op.check(key.clone(), "present", "");
        op.set.push((key, encode(token)));
        match self.apply(&op).await? {
            Applied::Ok => Ok(()),
            _ => Err(StoreError::NotFound(format!("token {}", token.name))),
        }
    }

    async fn delete_token_cascade(&self, name: &str) -> StoreResult<CascadeReport> {
        let key = keys::token(name);
        for _ in 0..WRITE_ATTEMPTS {
            let raw = self.raw(&key).await?.ok_or_else(|| StoreError::NotFound(format!("token {name}")))?;
            let token: Token = decode(&key, &raw)?;
            let owner = keys::owner(&token.hash);
            let mut members: Vec<String> = self.conn().smembers(&owner).await.map_err(unavailable)?;
            members.sort();
            let mut op = WriteOp::new(EventKind::Token, name, "delete");
            op.check(key.clone(), "equals", raw);
            op.check(owner.clone(), "members", members.join("\n"));
            let mut report = CascadeReport::default();
            for m in &members {
                self.cascade_member(&mut op, m, &mut report).await?;
            }
            op.del.extend([key.clone(), keys::token_hash(&token.hash), owner]);
            if let Applied::Ok = self.apply(&op).await? {
                return Ok(report);
            }
        }
        Err(StoreError::Conflict("too many concurrent writes, try again".into()))
    }

    async fn get_cert(&self, name: &str) -> StoreResult<Option<Certificate>> {
        self.get_json(&keys::cert(name)).await
    }

    async fn list_certs(&self) -> StoreResult<Vec<Certificate>> {
        self.list_family("cert").await
    }

    async fn put_cert(&self, cert: &Certificate) -> StoreResult<()> {
        let key = keys::cert(&cert.cert_name);
        self.write_with_retry(|| async {
            let raw = self.raw(&key).await?;
            let mut op = WriteOp::new(EventKind::Cert, &cert.cert_name, if raw.is_some() { "update" } else { "create" });
            op.unchanged(key.clone(), &raw);
            if let Some(r) = &raw {
                let old: Certificate = decode(&key, r)?;
                self.cert_domain_cleanup(&mut op, &cert.cert_name, &old.domains, &cert.domains)
                    .await?;
                if old.owner_token_hash != cert.owner_token_hash {
                    op.srem.push((keys::owner(&old.owner_token_hash), key.clone()));
                }
            }
            op.set.push((key.clone(), encode(cert)));
            for d in &cert.domains {
                op.set.push((keys::cert_domain(d), cert.cert_name.clone()));
            }
            op.sadd.push((keys::owner(&cert.owner_token_hash), key.clone()));
            Ok(op)
        })
        .await
    }

    async fn delete_cert(&self, name: &str) -> StoreResult<()> {
        let key = keys::cert(name);
        self.write_with_retry(|| async {
            let raw = self
                .raw(&key)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("certificate {name}")))?;
            let c: Certificate = decode(&key, &raw)?;
            let mut op = WriteOp::new(EventKind::Cert, name, "delete");
            op.check(key.clone(), "equals", raw);
            op.del.push(key.clone());
            self.cert_domain_cleanup(&mut op, name, &c.domains, &[]).await?;
            op.srem.push((keys::owner(&c.owner_token_hash), key.clone()));
            Ok(op)
        })
        .await
    }

    async fn list_service_urls(&self) -> StoreResult<HashMap<String, String>> {
        Ok(self.scan_ids(&keys::service_url("")).await?.into_iter().collect())
    }

    async fn put_service_url(&self, name: &str, url: &str) -> StoreResult<()> {
        let mut op = WriteOp::new(EventKind::Service, name, "update");
        op.set.push((keys::service_url(name), url.to_string()));
        self.apply(&op).await.map(|_| ())
    }

    async fn delete_service_url(&self, name: &str) -> StoreResult<()> {
        let key = keys::service_url(name);
        let mut op = WriteOp::new(EventKind::Service, name, "delete");
        op.check(key.clone(), "present", "");
        op.del.push(key);
        match self.apply(&op).await? {
            Applied::Ok => Ok(()),
            _ => Err(StoreError::NotFound(format!("service {name}"))),
        }
    }

    async fn get_value(&self, key: &str) -> StoreResult<Option<String>> {
        self.raw(&keys::internal(key)).await
    }

    async fn set_value_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        self.conn().set_nx(keys::internal(key), value).await.map_err(unavailable)
    }

    async fn put_challenge(&self, token: &str, key_authorization: &str, ttl_secs: u64) -> StoreResult<()> {
        let mut op = WriteOp::new(EventKind::Challenge, token, "create");
        op.setex
            .push((keys::acme_challenge(token), key_authorization.to_string(), ttl_secs));
        self.apply(&op).await.map(|_| ())
    }

    async fn delete_challenge(&self, token: &str) -> StoreResult<()> {
        let mut op = WriteOp::new(EventKind::Challenge, token, "delete");
        op.del.push(keys::acme_challenge(token));
        self.apply(&op).await.map(|_| ())
    }

    async fn list_challenges(&self) -> StoreResult<HashMap<String, String>> {
        Ok(self.scan_ids(&keys::acme_challenge("")).await?.into_iter().collect())
    }

    async fn get_cert_status(&self, name: &str) -> StoreResult<Option<String>> {
        self.raw(&keys::cert_status(name)).await
    }

    async fn put_cert_status(&self, name: &str, status_json: &str, ttl_secs: Option<u64>) -> StoreResult<()> {
        self.kv_set(&keys::cert_status(name), status_json, ttl_secs).await
    }

    async fn acquire_lock(&self, name: &str, owner: &str, ttl_secs: u64) -> StoreResult<bool> {
        self.kv_set_nx(&keys::lock(name), owner, ttl_secs).await
    }

    async fn release_lock(&self, name: &str, owner: &str) -> StoreResult<()> {
        let script =
            redis::Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end");
        let _: i64 = script
            .key(keys::lock(name))
            .arg(owner)
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn set_value(&self, key: &str, value: &str) -> StoreResult<()> {
        self.kv_set(&keys::internal(key), value, None).await
    }

    async fn put_revocation(&self, jti: &str, ttl_secs: u64) -> StoreResult<()> {
        let mut op = WriteOp::new(EventKind::Revocation, jti, "create");
        op.setex.push((keys::oauth_revoked(jti), "1".into(), ttl_secs.max(1)));
        self.apply(&op).await.map(|_| ())
    }

    async fn list_revocations(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .scan_ids(&keys::oauth_revoked(""))
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    async fn publish(&self, kind: EventKind, id: &str, op: &str) -> StoreResult<()> {
        let op = WriteOp::new(kind, id, op);
        self.apply(&op).await.map(|_| ())
    }

    async fn kv_get(&self, key: &str) -> StoreResult<Option<String>> {
        self.raw(key).await
    }

    async fn kv_set(&self, key: &str, value: &str, ttl_secs: Option<u64>) -> StoreResult<()> {
        let mut conn = self.conn();
        match ttl_secs {
            Some(t) => conn.set_ex::<_, _, ()>(key, value, t.max(1)).await,
            None => conn.set::<_, _, ()>(key, value).await,
        }
        .map_err(unavailable)
    }

    async fn kv_set_nx(&self, key: &str, value: &str, ttl_secs: u64) -> StoreResult<bool> {
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(ttl_secs.max(1)));
        let r: Option<String> = self.conn().set_options(key, value, opts).await.map_err(unavailable)?;
        Ok(r.is_some())
    }

    async fn kv_take(&self, key: &str) -> StoreResult<Option<String>> {
        redis::cmd("GETDEL")
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    async fn kv_del(&self, key: &str) -> StoreResult<()> {
        self.conn().del::<_, ()>(key).await.map_err(unavailable)
    }

    async fn kv_incr(&self, key: &str, ttl_secs: u64) -> StoreResult<i64> {
        let mut conn = self.conn();
        let n: i64 = conn.incr(key, 1).await.map_err(unavailable)?;
        if n == 1 {
            conn.expire::<_, ()>(key, i64::try_from(ttl_secs).unwrap_or(i64::MAX))
                .await
                .map_err(unavailable)?;
        }
        Ok(n)
    }

    async fn kv_scan(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        let found = self.scan_keys(&format!("{prefix}*")).await?;
        self.values(&found).await
    }

    async fn kv_sadd(&self, key: &str, member: &str, ttl_secs: u64) -> StoreResult<()> {
        let mut conn = self.conn();
        conn.sadd::<_, _, ()>(key, member).await.map_err(unavailable)?;
        conn.expire::<_, ()>(key, i64::try_from(ttl_secs).unwrap_or(i64::MAX))
            .await
            .map_err(unavailable)
    }

    async fn kv_smembers(&self, key: &str) -> StoreResult<Vec<String>> {
        self.conn().smembers(key).await.map_err(unavailable)
    }

    async fn subscribe(&self) -> StoreResult<BoxStream<'static, ChangeEvent>> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub.subscribe(keys::EVENTS_CHANNEL).await.map_err(unavailable)?;
        let stream = pubsub.into_on_message().filter_map(|msg| async move {
            let payload: String = msg.get_payload().ok()?;
            serde_json::from_str::<ChangeEvent>(&payload).ok()
        });
        Ok(Box::pin(stream))
    }
}
