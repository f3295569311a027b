//! Minting and checking tokens: RS256 JWT access tokens (`typ` at+jwt, `kid`
//! in every header), opaque refresh tokens stored by hash in families that
//! are revoked together on reuse, and revocation that reaches every
//! instance's data plane through change events.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::model::{AccessClaims, LEEWAY_SECS};

use super::model::{now, AccessRecord, Client, RefreshGrant, User};
use super::token::TokenResponse;
use super::{random_token, scopes, OAuth, OAuthError, OAuthResult};
use crate::store::OAuthStore;

/// How long a rotated refresh token may be retried (concurrent retry) with
/// the same result. Only a confidential client, authenticated again with its
/// secret, gets that result: a public client has no authentication that
/// tells its own retry from a thief's replay, so any reuse revokes the family.
const REFRESH_GRACE_SECS: i64 = 10;

/// How long one rotation of a refresh token holds its lock at most.
const REFRESH_LOCK_SECS: u64 = 30;

/// How long a revocation is kept: until the token's expiry plus the leeway.
fn revocation_ttl(exp: i64) -> u64 {
    u64::try_from((exp - now()).max(1) + i64::try_from(LEEWAY_SECS).unwrap_or(30)).unwrap_or(60)
}

/// What a refresh token carries: the grant, which an access token minted
/// from it may narrow without narrowing the grant (RFC 6749 §6).
pub struct GrantBase {
    /// Scopes of the grant.
    pub scope: Vec<String>,
    /// Resources of the grant.
    pub resources: Vec<String>,
    /// Proxy whose lists applied at login.
    pub proxy_hostname: Option<String>,
    /// The server picked that proxy.
    pub server_chose_proxy: bool,
}

/// A token answer as the JSON value that is both sent and kept (a rotated
/// refresh grant replays it).
fn token_value(body: &TokenResponse) -> OAuthResult<Value> {
    serde_json::to_value(body).map_err(|e| OAuthError::server(e.to_string()))
}

/// SHA-256 hex of a secret, the form secrets are stored under.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl OAuth {
    fn access_ttl(&self) -> i64 {
        i64::try_from(self.config.oauth.access_token_lifetime.as_secs()).unwrap_or(1800)
    }

    fn refresh_ttl(&self) -> u64 {
        self.config.oauth.refresh_token_lifetime.as_secs()
    }

    /// Signs an access token.
    pub async fn sign_access(
        &self,
        client_id: &str,
        user: &User,
        scope: &[String],
        aud: &[String],
        family: &str,
    ) -> OAuthResult<(String, AccessClaims)> {
        self.sign_access_ttl(client_id, user, scope, aud, family, self.access_ttl()).await
    }

    /// Signs an access token living `ttl` seconds (negative: already expired, for tests of expiry).
    pub async fn sign_access_ttl(
        &self,
        client_id: &str,
        user: &User,
        scope: &[String],
        aud: &[String],
        family: &str,
        ttl: i64,
    ) -> OAuthResult<(String, AccessClaims)> {
        let ring = self.keys().await?;
        let iat = now().min(now() + ttl - 1);
        let aud = if aud.is_empty() {
            vec![self.no_resource_audience(client_id)]
        } else {
            aud.to_vec()
        };
        let claims = AccessClaims {
            iss: self.issuer().to_string(),
            sub: user.id.clone(),
            aud,
            azp: client_id.to_string(),
            client_id: client_id.to_string(),
            exp: now() + ttl,
            iat,
            nbf: iat,
            jti: random_token(16),
            scope: scope.join(" "),
            preferred_username: user.username.clone(),
            email: user.email.clone(),
            groups: user.groups.clone(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(ring.current.kid.clone());
        let jwt = jsonwebtoken::encode(&header, &claims, &ring.current.encoding).map_err(|e| OAuthError::server(e.to_string()))?;
        let rec = AccessRecord {
            jti: claims.jti.clone(),
            client_id: client_id.into(),
            sub: user.id.clone(),
            username: user.username.clone(),
            scope: claims.scope.clone(),
            aud: claims.aud.clone(),
            iat,
            exp: claims.exp,
            family: family.into(),
        };
        let ttl = u64::try_from(ttl.max(1)).unwrap_or(1800);
        self.store
            .put_access(&rec.jti, family, &user.id, &rec, ttl, self.refresh_ttl())
            .await?;
        Ok((jwt, claims))
    }

    /// The audience of a token asked for without `resource`: a URN no
    /// protected resource, `/verify` or the admin API accepts (RFC 8707
    /// leaves it to the server; the admin API needs its own resource named).
    pub fn no_resource_audience(&self, client_id: &str) -> String {
        format!("urn:portcullis:client:{client_id}")
    }

    /// The admin API's resource indicator: the issuer itself. Only a client
    /// that names it explicitly, for a user whose configured scopes include
    /// `admin` or `user`, gets a token the admin API accepts.
    pub fn admin_resource(&self) -> String {
        self.issuer().trim_end_matches('/').to_string()
    }

    /// Mints an access token (scope and audience as given; no audience: the
    /// no-resource URN) and, with `grant`, a refresh token in `family`; the
    /// token response body.
    pub async fn mint(
        &self,
        client_id: &str,
        user: &User,
        scope: &[String],
        aud: &[String],
        family: &str,
        grant: Option<GrantBase>,
    ) -> OAuthResult<Value> {
        let aud: Vec<String> = if aud.is_empty() {
            vec![self.no_resource_audience(client_id)]
        } else {
            aud.to_vec()
        };
        let (jwt, claims) = self.sign_access(client_id, user, scope, &aud, family).await?;
        let mut body = TokenResponse {
            access_token: jwt,
            token_type: "Bearer",
            expires_in: self.access_ttl(),
            scope: claims.scope,
            resource: aud.iter().any(|a| !a.starts_with("urn:portcullis:")).then_some(aud),
            refresh_token: None,
        };
        let Some(base) = grant else {
            self.store
                .issue_grant::<RefreshGrant>(client_id, family, None, self.refresh_ttl())
                .await?;
            return token_value(&body);
        };
        let refresh = format!("prt_{}", random_token(32));
        let grant = RefreshGrant {
            family: family.into(),
            client_id: client_id.into(),
            user: user.clone(),
            scope: base.scope,
            resources: base.resources,
            proxy_hostname: base.proxy_hostname,
            server_chose_proxy: base.server_chose_proxy,
            expires_at: now() + i64::try_from(self.refresh_ttl()).unwrap_or(i64::MAX / 2),
            rotated_at: None,
            rotated_response: None,
        };
        let hash = digest(&refresh);
        self.store
            .issue_grant(client_id, family, Some((&hash, &grant)), self.refresh_ttl())
            .await?;
        body.refresh_token = Some(refresh);
        token_value(&body)
    }

    /// Verifies an access token: signature by a ring key, `iss`, `exp`/`nbf`, not revoked.
    pub async fn verify_access(&self, token: &str) -> OAuthResult<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| OAuthError::invalid_token("malformed token"))?;
        let kid = header.kid.ok_or_else(|| OAuthError::invalid_token("token has no kid"))?;
        let ring = self.keys().await?;
        let key = ring.find(&kid).ok_or_else(|| OAuthError::invalid_token("unknown signing key"))?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[self.issuer()]);
        v.validate_aud = false;
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECS;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v)
            .map_err(|e| OAuthError::invalid_token(format!("token rejected: {e}")))?;
        if self.store.access_revoked(&data.claims.jti).await? {
            return Err(OAuthError::invalid_token("token revoked"));
        }
        Ok(data.claims)
    }

    /// Revokes one access token everywhere (data planes learn it by event).
    pub async fn revoke_jti(&self, jti: &str, exp: i64) -> OAuthResult<()> {
        self.store.revoke_access(jti, revocation_ttl(exp)).await?;
        Ok(())
    }

    /// Revokes every token of a family (code replay, refresh reuse, refresh
    /// revocation), in one atomic store write.
    pub async fn revoke_family(&self, family: &str) -> OAuthResult<()> {
        let unknown_exp = now() + self.access_ttl();
        let access_ttl = |record: Option<&str>| {
            let exp = record
                .and_then(|r| serde_json::from_str::<AccessRecord>(r).ok())
                .map_or(unknown_exp, |r| r.exp);
            revocation_ttl(exp)
        };
        let tokens = self.store.revoke_family(family, self.refresh_ttl(), access_ttl).await?;
        tracing::info!(family, tokens, "token family revoked");
        Ok(())
    }

    /// A refresh token's record if it is live (not expired, family not revoked).
    pub async fn refresh_record(&self, refresh: &str) -> OAuthResult<Option<RefreshGrant>> {
        let Some(g) = self.store.get_refresh::<RefreshGrant>(&digest(refresh)).await? else {
            return Ok(None);
        };
        if g.expires_at < now() || self.store.family_revoked(&g.family).await? {
            return Ok(None);
        }
        Ok(Some(g))
    }

    /// Re-evaluates a grant at refresh time: the proxy it was for still
    /// exists, the user may still log in, and only scopes the user is still
    /// entitled to (and the client still registered for) remain. A user who
    /// holds none of the granted scopes any more gets `invalid_grant`.
    async fn reevaluate(&self, client: &Client, g: &RefreshGrant) -> OAuthResult<GrantBase> {
        let proxy = match &g.proxy_hostname {
            Some(h) => Some(
                self.store
                    .get_proxy(h)
                    .await?
                    .ok_or_else(|| OAuthError::invalid_grant("the proxy this grant was for no longer exists"))?,
            ),
            None => None,
        };
        scopes::may_log_in(self.config.oauth.allowed_users.as_deref(), proxy.as_ref(), &g.user).map_err(OAuthError::invalid_grant)?;
        let entitled = scopes::entitled(&self.config.oauth, proxy.as_ref(), g.server_chose_proxy, &g.user);
        let scope: Vec<String> = g
            .scope
            .iter()
            .filter(|s| entitled.contains(s) && client_may_ask(client, s))
            .cloned()
            .collect();
        if !g.scope.is_empty() && scope.is_empty() {
            return Err(OAuthError::invalid_grant("the user no longer holds any of the granted scopes"));
        }
        let admin = self.admin_resource();
        if g.resources.contains(&admin) && !scopes::admin_api_scope(&scope) {
            return Err(OAuthError::invalid_grant("the user is no longer entitled to the admin API"));
        }
        Ok(GrantBase {
            scope,
            resources: g.resources.clone(),
            proxy_hostname: g.proxy_hostname.clone(),
            server_chose_proxy: g.server_chose_proxy,
        })
    }

    /// A rotated token's stored response, for a confidential client's retry;
    /// any other reuse revokes the family.
    async fn replay(&self, client: &Client, g: &RefreshGrant, sealed: Option<&str>) -> OAuthResult<Value> {
        if client.client_secret_hash.is_some() {
            if let Some(sealed) = sealed {
                let body = self.sealer.open(sealed).map_err(|e| OAuthError::server(e.to_string()))?;
                return serde_json::from_str(&body).map_err(|e| OAuthError::server(e.to_string()));
            }
        }
        self.revoke_family(&g.family).await?;
        tracing::warn!(family = %g.family, client = %client.client_id, "refresh token replay: family revoked");
        Err(OAuthError::invalid_grant(
            "refresh token reuse detected; every token of this grant is revoked",
        ))
    }

    /// The refresh grant: rotation on every use, entitlements and the
    /// client's registration re-evaluated (scopes only shrink); reuse of a
    /// rotated token revokes its family, except a confidential client's
    /// retry within the grace window, which gets the same response. The new
    /// refresh token keeps the grant's scope and resources when the access
    /// token is narrowed.
    pub async fn refresh(&self, client: &Client, refresh: &str, scope: Option<Vec<String>>, resources: Vec<String>) -> OAuthResult<Value> {
        let hash = digest(refresh);
        let g = self
            .refresh_record(refresh)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("refresh token is invalid, expired or revoked"))?;
        if g.client_id != client.client_id {
            return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
        }
        if let Some(rotated) = g.rotated_at {
            let sealed = (now() - rotated <= REFRESH_GRACE_SECS)
                .then_some(g.rotated_response.as_deref())
                .flatten();
            return self.replay(client, &g, sealed).await;
        }
        let base = self.reevaluate(client, &g).await?;
        let scope = match scope {
            None => base.scope.clone(),
            Some(s) if s.iter().all(|x| g.scope.contains(x)) => s.into_iter().filter(|x| base.scope.contains(x)).collect(),
            Some(_) => return Err(OAuthError::invalid_scope("a refresh may only narrow the granted scopes")),
        };
        let aud = if resources.is_empty() {
            g.resources.clone()
        } else if resources.iter().all(|r| g.resources.contains(r)) {
            resources
        } else {
            return Err(OAuthError::invalid_target("a refresh may only narrow the granted resources"));
        };
        if !self.store.lock_refresh(&hash, REFRESH_LOCK_SECS).await? {
            for _ in 0..40 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                if let Some(done) = self.refresh_record(refresh).await?.filter(|r| r.rotated_response.is_some()) {
                    return self.replay(client, &done, done.rotated_response.as_deref()).await;
                }
            }
            return Err(OAuthError::invalid_grant("refresh token is being used concurrently"));
        }
        let body = match self.mint(&client.client_id, &g.user, &scope, &aud, &g.family, Some(base)).await {
            Ok(b) => b,
            Err(e) => {
                self.store.unlock_refresh(&hash).await?;
                return Err(e);
            }
        };
        let mut used = g.clone();
        used.rotated_at = Some(now());
        used.rotated_response = Some(self.sealer.seal(&body.to_string()).map_err(|e| OAuthError::server(e.to_string()))?);
        let ttl = u64::try_from((g.expires_at - now()).max(REFRESH_GRACE_SECS * 2)).unwrap_or(60);
        self.store.put_refresh(&hash, &used, ttl).await?;
        Ok(body)
    }
}

/// True when the client may ask for `scope` (its registered `scope`, if any).
pub fn client_may_ask(client: &Client, scope: &str) -> bool {
    client
        .scope
        .as_deref()
        .is_none_or(|list| list.split_whitespace().any(|s| s == scope))
}
