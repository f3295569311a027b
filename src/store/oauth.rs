//! The OAuth server's persistence, as typed operations over any [`Backend`]:
//! each names what it does (issue an access token, redeem a code, revoke a
//! family), builds its keys in [`keys`], and makes every multi-key write one
//! atomic batch. Records are the OAuth module's own types, stored as JSON.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::backend::{Applied, Backend, Batch, Check, Depth, Expiry};
use super::records::{contended, decode, encode, incr, retry, set_nx, take};
use super::{keys, EventKind, StoreError, StoreResult};

/// How often a read-then-write is rebuilt when a concurrent write got in between.
const ATTEMPTS: usize = 8;

/// A short-lived, single-use value of a login flow, by what it is.
#[derive(Clone, Copy, Debug)]
pub enum Parked<'a> {
    /// A login waiting for the upstream provider's callback, by its state id.
    Login(&'a str),
    /// A consent or device approval page waiting for its answer, by its id.
    Decision(&'a str),
    /// A proxy's browser login in progress, by its state.
    ProxyLogin(&'a str),
}

impl Parked<'_> {
    fn key(self) -> String {
        match self {
            Parked::Login(sid) => keys::oauth_state(sid),
            Parked::Decision(id) => keys::oauth_decision(id),
            Parked::ProxyLogin(state) => keys::oauth_proxy_login(state),
        }
    }
}

/// What presenting an authorization code found.
#[derive(Debug)]
pub enum Redemption<T> {
    /// The code's grant; the code is gone and its replay marker set.
    Fresh(T),
    /// The code was redeemed before: the family its tokens belong to.
    Replayed(String),
    /// No such code (never issued, or expired).
    Unknown,
}

fn failed(a: Applied) -> StoreError {
    match a {
        Applied::Missing(k) => StoreError::NotFound(k),
        Applied::Conflict(k) | Applied::Changed(k) => StoreError::Conflict(format!("{k} changed concurrently")),
        Applied::Ok => StoreError::Unavailable("write reported success as a failure".into()),
    }
}

async fn json<T: DeserializeOwned, B: Backend + ?Sized>(b: &B, key: &str) -> StoreResult<Option<T>> {
    b.get(key).await?.map(|raw| decode(key, &raw)).transpose()
}

/// Every decodable record under `prefix` (one undecodable record does not hide the rest).
async fn all<T: DeserializeOwned, B: Backend + ?Sized>(b: &B, prefix: &str) -> StoreResult<Vec<T>> {
    Ok(b.scan(prefix, Depth::All)
        .await?
        .into_iter()
        .filter_map(|(k, raw)| {
            decode(&k, &raw)
                .map_err(|e| tracing::warn!(error = %e, "skipped an undecodable OAuth record"))
                .ok()
        })
        .collect())
}

async fn write<B: Backend + ?Sized>(b: &B, batch: &Batch) -> StoreResult<()> {
    match b.apply(batch).await? {
        Applied::Ok => Ok(()),
        other => Err(failed(other)),
    }
}

/// The OAuth server's store operations. Implemented once, for every backend.
#[async_trait]
pub trait OAuthStore: Backend {
    /// Parks a single-use value for `ttl_secs`.
    async fn park<T: Serialize + Sync>(&self, what: Parked<'_>, value: &T, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(what.key(), encode(value), ttl_secs);
        write(self, &b).await
    }
    /// Takes a parked value: of concurrent takers exactly one gets it.
    async fn unpark<T: DeserializeOwned + Send>(&self, what: Parked<'_>) -> StoreResult<Option<T>> {
        let key = what.key();
        take(self, &key, Batch::default()).await?.map(|raw| decode(&key, &raw)).transpose()
    }

    /// Stores an authorization code's grant under the code's digest.
    async fn put_code<T: Serialize + Sync>(&self, code_digest: &str, grant: &T, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(keys::oauth_code(code_digest), encode(grant), ttl_secs);
        write(self, &b).await
    }
    /// Redeems a code: in one step the code is removed and the replay marker
    /// (`family(grant)`, kept `used_ttl_secs`) is set, so of two concurrent
    /// redemptions exactly one gets the grant and the other sees a replay.
    async fn redeem_code<T, F>(&self, code_digest: &str, family: F, used_ttl_secs: u64) -> StoreResult<Redemption<T>>
    where
        T: DeserializeOwned + Send,
        F: Fn(&T) -> String + Send + Sync,
    {
        let key = keys::oauth_code(code_digest);
        let used = keys::oauth_code_used(code_digest);
        for _ in 0..ATTEMPTS {
            let Some(raw) = self.get(&key).await? else {
                return Ok(match self.get(&used).await? {
                    Some(f) => Redemption::Replayed(f),
                    None => Redemption::Unknown,
                });
            };
            let grant: T = decode(&key, &raw)?;
            let mut b = Batch::default();
            b.check(Check::Equals(key.clone(), raw))
                .del(key.clone())
                .put_ex(used.clone(), family(&grant), used_ttl_secs);
            match self.apply(&b).await? {
                Applied::Ok => return Ok(Redemption::Fresh(grant)),
                Applied::Changed(_) => continue,
                other => return Err(failed(other)),
            }
        }
        Err(contended())
    }

    /// A registered client.
    async fn get_client<T: DeserializeOwned + Send>(&self, client_id: &str) -> StoreResult<Option<T>> {
        json(self, &keys::oauth_client(client_id)).await
    }
    /// Every registered client.
    async fn list_clients<T: DeserializeOwned + Send>(&self) -> StoreResult<Vec<T>> {
        all(self, &keys::oauth_client("")).await
    }
    /// Creates or replaces a client, expiring after `ttl_secs` when given.
    async fn put_client<T: Serialize + Sync>(&self, client_id: &str, client: &T, ttl_secs: Option<u64>) -> StoreResult<()> {
        let mut b = Batch::default();
        let key = keys::oauth_client(client_id);
        match ttl_secs {
            Some(t) => b.put_ex(key, encode(client), t),
            None => b.put(key, encode(client)),
        };
        write(self, &b).await
    }
    /// Deletes a client; true when it existed.
    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        Ok(take(self, &keys::oauth_client(client_id), Batch::default()).await?.is_some())
    }
    /// Counts one registration from `who` in `hour`; the count so far.
    async fn count_registration(&self, who: &str, hour: i64) -> StoreResult<i64> {
        incr(self, &keys::oauth_reg_rate(who, hour), 3600).await
    }
    /// A cached client metadata document's client.
    async fn cached_metadata_client<T: DeserializeOwned + Send>(&self, url_digest: &str) -> StoreResult<Option<T>> {
        json(self, &keys::oauth_cimd(url_digest)).await
    }
    /// Caches a client metadata document's client for `ttl_secs`.
    async fn cache_metadata_client<T: Serialize + Sync>(&self, url_digest: &str, client: &T, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(keys::oauth_cimd(url_digest), encode(client), ttl_secs);
        write(self, &b).await
    }
    /// True when `uri` is a registered protected resource.
    async fn resource_registered(&self, uri: &str) -> StoreResult<bool> {
        Ok(self.get(&keys::resource(uri)).await?.is_some())
    }

    /// A remembered consent (by the digests of client and user id).
    async fn get_consent<T: DeserializeOwned + Send>(&self, client_digest: &str, user_digest: &str) -> StoreResult<Option<T>> {
        json(self, &keys::oauth_consent(client_digest, user_digest)).await
    }
    /// Remembers a consent for `ttl_secs`.
    async fn put_consent<T: Serialize + Sync>(
        &self,
        client_digest: &str,
        user_digest: &str,
        consent: &T,
        ttl_secs: u64,
    ) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(keys::oauth_consent(client_digest, user_digest), encode(consent), ttl_secs);
        write(self, &b).await
    }
    /// Every remembered consent.
    async fn list_consents<T: DeserializeOwned + Send>(&self) -> StoreResult<Vec<T>> {
        all(self, &keys::oauth_consents(None)).await
    }
    /// Forgets one user's consent to a client; true when there was one.
    async fn forget_consent(&self, client_digest: &str, user_digest: &str) -> StoreResult<bool> {
        Ok(take(self, &keys::oauth_consent(client_digest, user_digest), Batch::default())
            .await?
            .is_some())
    }
    /// Forgets every consent given to a client, in one step; how many.
    async fn forget_client_consents(&self, client_digest: &str) -> StoreResult<usize> {
        let prefix = keys::oauth_consents(Some(client_digest));
        let build = || async {
            let found = self.scan(&prefix, Depth::All).await?;
            let mut b = Batch::default();
            for (k, v) in &found {
                b.check(Check::Equals(k.clone(), v.clone())).del(k.clone());
            }
            Ok((b, found.len()))
        };
        retry(self, build, failed).await
    }

    /// Starts a device grant: the grant under its device code's digest and
    /// the user code pointing at it, together.
    async fn start_device<T: Serialize + Sync>(&self, device_digest: &str, user_code: &str, grant: &T, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(keys::oauth_device(device_digest), encode(grant), ttl_secs).put_ex(
            keys::oauth_user_code(user_code),
            device_digest,
            ttl_secs,
        );
        write(self, &b).await
    }
    /// A device grant by its device code's digest.
    async fn get_device<T: DeserializeOwned + Send>(&self, device_digest: &str) -> StoreResult<Option<T>> {
        json(self, &keys::oauth_device(device_digest)).await
    }
    /// A device grant by its user code: (device code digest, grant).
    async fn device_by_user_code<T: DeserializeOwned + Send>(&self, user_code: &str) -> StoreResult<Option<(String, T)>> {
        let Some(h) = self.get(&keys::oauth_user_code(user_code)).await? else {
            return Ok(None);
        };
        Ok(self.get_device(&h).await?.map(|g| (h, g)))
    }
    /// Replaces a device grant (a poll's time, a failure), for `ttl_secs`.
    async fn put_device<T: Serialize + Sync>(&self, device_digest: &str, grant: &T, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(keys::oauth_device(device_digest), encode(grant), ttl_secs);
        write(self, &b).await
    }
    /// Records the answer to a device grant unless one was recorded: the
    /// answerer and the answered grant in one step. True when this answer counts.
    async fn decide_device<T: Serialize + Sync>(&self, device_digest: &str, user_id: &str, grant: &T, ttl_secs: u64) -> StoreResult<bool> {
        let decided = keys::oauth_device_decided(device_digest);
        let mut b = Batch::default();
        b.check(Check::Absent(decided.clone())).put_ex(decided, user_id, ttl_secs).put_ex(
            keys::oauth_device(device_digest),
            encode(grant),
            ttl_secs,
        );
        match self.apply(&b).await? {
            Applied::Ok => Ok(true),
            Applied::Conflict(_) => Ok(false),
            other => Err(failed(other)),
        }
    }
    /// Ends a device grant: the grant and its user code go together; true
    /// for exactly one of concurrent callers.
    async fn finish_device(&self, device_digest: &str, user_code: &str) -> StoreResult<bool> {
        let mut also = Batch::default();
        also.del(keys::oauth_user_code(user_code));
        Ok(take(self, &keys::oauth_device(device_digest), also).await?.is_some())
    }
    /// Wrong user codes so far: (from this source, for this code).
    async fn device_failures(&self, source: &str, code_digest: &str) -> StoreResult<(i64, i64)> {
        let count = |v: Option<String>| v.and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
        Ok((
            count(self.get(&keys::oauth_device_fail_source(source)).await?),
            count(self.get(&keys::oauth_device_fail_code(code_digest)).await?),
        ))
    }
    /// Counts a wrong user code against the source and the code, each in a window of `window_secs`.
    async fn count_device_failure(&self, source: &str, code_digest: &str, window_secs: u64) -> StoreResult<()> {
        incr(self, &keys::oauth_device_fail_source(source), window_secs).await?;
        incr(self, &keys::oauth_device_fail_code(code_digest), window_secs).await?;
        Ok(())
    }

    /// Records an issued access token: its record (`ttl_secs`), its place in
    /// its family (kept `family_ttl_secs`) and among the user's tokens, together.
    async fn put_access<T: Serialize + Sync>(
        &self,
        jti: &str,
        family: &str,
        user_id: &str,
        record: &T,
        ttl_secs: u64,
        family_ttl_secs: u64,
    ) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(keys::oauth_token(jti), encode(record), ttl_secs)
            .sadd(keys::oauth_family_jtis(family), jti, Some(family_ttl_secs))
            .sadd(keys::oauth_user_tokens(user_id), jti, Some(ttl_secs));
        write(self, &b).await
    }
    /// A live access token's record.
    async fn get_access<T: DeserializeOwned + Send>(&self, jti: &str) -> StoreResult<Option<T>> {
        json(self, &keys::oauth_token(jti)).await
    }
    /// Every live access token's record.
    async fn list_access<T: DeserializeOwned + Send>(&self) -> StoreResult<Vec<T>> {
        all(self, &keys::oauth_token("")).await
    }
    /// True when the access token id is revoked.
    async fn access_revoked(&self, jti: &str) -> StoreResult<bool> {
        Ok(self.get(&keys::oauth_revoked(jti)).await?.is_some())
    }
    /// Revokes one access token until `ttl_secs` (past its expiry): the
    /// revocation (announced to every data plane) and the record's removal together.
    async fn revoke_access(&self, jti: &str, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::with_event(EventKind::Revocation, jti, "create");
        b.put_ex(keys::oauth_revoked(jti), "1", ttl_secs).del(keys::oauth_token(jti));
        write(self, &b).await
    }

    /// Records that `family` was issued to `client_id` and, with `refresh`,
    /// stores the refresh token's grant (by digest) in that family; together,
    /// all kept `ttl_secs`.
    async fn issue_grant<T: Serialize + Sync>(
        &self,
        client_id: &str,
        family: &str,
        refresh: Option<(&str, &T)>,
        ttl_secs: u64,
    ) -> StoreResult<()> {
        let mut b = Batch::default();
        b.sadd(keys::oauth_client_families(client_id), family, Some(ttl_secs));
        if let Some((digest, grant)) = refresh {
            b.put_ex(keys::oauth_refresh(digest), encode(grant), ttl_secs)
                .sadd(keys::oauth_family_refresh(family), digest, Some(ttl_secs));
        }
        write(self, &b).await
    }
    /// A refresh token's grant, by digest.
    async fn get_refresh<T: DeserializeOwned + Send>(&self, digest: &str) -> StoreResult<Option<T>> {
        json(self, &keys::oauth_refresh(digest)).await
    }
    /// Replaces a refresh token's grant (marked rotated), for `ttl_secs`.
    async fn put_refresh<T: Serialize + Sync>(&self, digest: &str, grant: &T, ttl_secs: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put_ex(keys::oauth_refresh(digest), encode(grant), ttl_secs);
        write(self, &b).await
    }
    /// Takes the rotation lock of a refresh token for `ttl_secs`; true when taken.
    async fn lock_refresh(&self, digest: &str, ttl_secs: u64) -> StoreResult<bool> {
        set_nx(self, &keys::oauth_refresh_lock(digest), "1", Expiry::Secs(ttl_secs.max(1))).await
    }
    /// Releases the rotation lock of a refresh token.
    async fn unlock_refresh(&self, digest: &str) -> StoreResult<()> {
        let mut b = Batch::default();
        b.del(keys::oauth_refresh_lock(digest));
        write(self, &b).await
    }
    /// True when `family` was revoked.
    async fn family_revoked(&self, family: &str) -> StoreResult<bool> {
        Ok(self.get(&keys::oauth_family_revoked(family)).await?.is_some())
    }
    /// Revokes a token family in one step: marks it revoked (`flag_ttl_secs`),
    /// revokes each of its access tokens (for `access_ttl(record)` seconds,
    /// from its stored record if still there) and removes its refresh tokens.
    /// One event announces the family's revocations to the data planes.
    async fn revoke_family<F>(&self, family: &str, flag_ttl_secs: u64, access_ttl: F) -> StoreResult<usize>
    where
        F: Fn(Option<&str>) -> u64 + Send + Sync,
    {
        let jtis_key = keys::oauth_family_jtis(family);
        let refresh_key = keys::oauth_family_refresh(family);
        let build = || async {
            let jtis = self.members(&jtis_key).await?;
            let refresh = self.members(&refresh_key).await?;
            let mut b = Batch::with_event(EventKind::Revocation, family, "create");
            b.check(Check::Members(jtis_key.clone(), jtis.clone()))
                .check(Check::Members(refresh_key.clone(), refresh.clone()))
                .put_ex(keys::oauth_family_revoked(family), "1", flag_ttl_secs);
            for jti in &jtis {
                let record = self.get(&keys::oauth_token(jti)).await?;
                b.unchanged(&keys::oauth_token(jti), &record);
                b.put_ex(keys::oauth_revoked(jti), "1", access_ttl(record.as_deref()))
                    .del(keys::oauth_token(jti));
            }
            for h in &refresh {
                b.del(keys::oauth_refresh(h));
            }
            Ok((b, jtis.len()))
        };
        retry(self, build, failed).await
    }
    /// Takes the families issued to a client (they are forgotten with it).
    async fn take_client_families(&self, client_id: &str) -> StoreResult<Vec<String>> {
        let key = keys::oauth_client_families(client_id);
        let build = || async {
            let families = self.members(&key).await?;
            let mut b = Batch::default();
            b.check(Check::Members(key.clone(), families.clone())).del(key.clone());
            Ok((b, families))
        };
        retry(self, build, failed).await
    }

    /// The stored signing key ring (sealed keys, JSON).
    async fn key_ring(&self) -> StoreResult<Option<String>> {
        self.get(&keys::internal(keys::OAUTH_KEY_RING)).await
    }
    /// Stores the first key ring unless one exists; true when this call stored it.
    async fn create_key_ring(&self, ring_json: &str) -> StoreResult<bool> {
        set_nx(self, &keys::internal(keys::OAUTH_KEY_RING), ring_json, Expiry::Never).await
    }
    /// Stores a rotated key ring and announces the rotation, together.
    async fn store_rotated_key_ring(&self, ring_json: &str) -> StoreResult<()> {
        let mut b = Batch::with_event(EventKind::Keys, "ring", "rotate");
        b.put(keys::internal(keys::OAUTH_KEY_RING), ring_json);
        write(self, &b).await
    }
    /// Takes the key rotation lock for `ttl_secs` as `holder`; true when taken.
    async fn lock_key_rotation(&self, holder: &str, ttl_secs: u64) -> StoreResult<bool> {
        set_nx(self, keys::OAUTH_ROTATE_LOCK, holder, Expiry::Secs(ttl_secs.max(1))).await
    }
    /// Releases the key rotation lock if `holder` still holds it (one that
    /// expired meanwhile may be another's).
    async fn unlock_key_rotation(&self, holder: &str) -> StoreResult<()> {
        let mut b = Batch::default();
        b.check(Check::Equals(keys::OAUTH_ROTATE_LOCK.into(), holder.into()))
            .del(keys::OAUTH_ROTATE_LOCK);
        self.apply(&b).await.map(|_| ())
    }
}

impl<B: Backend + ?Sized> OAuthStore for B {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_values_keep_their_reference_keys() {
        assert_eq!(Parked::Login("s").key(), "oauth:state:s");
        assert_eq!(Parked::Decision("d").key(), "oauth:decision:d");
        assert_eq!(Parked::ProxyLogin("p").key(), "oauth:proxy_login:p");
    }
}
