//! Introspection (RFC 7662, authenticated callers only: a client learns
//! about its own tokens, a client the admin marked as resource server about
//! any), revocation (RFC 7009, a client revokes only its own tokens) and
//! `/verify` (ForwardAuth for nginx `auth_request`, Traefik, Caddy), which
//! checks the token's audience against the host it is asked about.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::OAuthErrorBody;
use super::model::RefreshGrant;
use super::params::{bearer, client_credentials, Params};
use super::tokens::AccessClaims;
use super::{OAuth, OAuthError, OAuthResult};
use crate::store::{OAuthStore, StoreError};

/// The form `POST /introspect` reads (RFC 7662 section 2.1); parsed by
/// hand (`Params`), this type is its schema.
#[derive(ToSchema)]
pub struct IntrospectionRequest {
    /// The access or refresh token asked about.
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only, both are tried.
    pub token_type_hint: Option<String>,
    /// The asking client, unless it authenticates with HTTP Basic (or an
    /// admin API token is sent as bearer).
    pub client_id: Option<String>,
    /// The asking client's secret (`client_secret_post`).
    pub client_secret: Option<String>,
}

/// The form `POST /revoke` reads (RFC 7009 section 2.1); parsed by hand
/// (`Params`), this type is its schema.
#[derive(ToSchema)]
pub struct RevocationRequest {
    /// The access or refresh token to revoke (a refresh token revokes its
    /// whole family).
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only.
    pub token_type_hint: Option<String>,
    /// The client the token was issued to, unless it uses HTTP Basic.
    pub client_id: Option<String>,
    /// That client's secret (`client_secret_post`).
    pub client_secret: Option<String>,
}

/// An introspection answer (RFC 7662 section 2.2): `{"active": false}`
/// alone for a token that is unknown, expired, revoked or not the caller's
/// to see; the token's facts otherwise. `Default` is that inactive answer.
#[derive(Default, Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// `Bearer` (access token) or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Granted scope, space separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user's stable id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The token id (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Introspection {
    /// What a caller learns about a token it may not see or that is not valid.
    fn inactive() -> Self {
        Self::default()
    }

    /// A valid access token's claims.
    fn access(c: AccessClaims) -> Self {
        Self {
            active: true,
            token_type: Some("Bearer".into()),
            scope: Some(c.scope),
            client_id: Some(c.client_id),
            username: Some(c.preferred_username),
            sub: Some(c.sub),
            aud: Some(c.aud),
            iss: Some(c.iss),
            exp: Some(c.exp),
            iat: Some(c.iat),
            nbf: Some(c.nbf),
            jti: Some(c.jti),
        }
    }

    /// A live refresh token's grant.
    fn refresh(g: RefreshGrant, issuer: &str) -> Self {
        Self {
            active: true,
            token_type: Some("refresh_token".into()),
            scope: Some(g.scope.join(" ")),
            client_id: Some(g.client_id),
            username: Some(g.user.username),
            sub: Some(g.user.id),
            exp: Some(g.expires_at),
            iss: Some(issuer.to_string()),
            ..Self::inactive()
        }
    }
}

/// The `/verify` answer for a token that fits the host asked about; the
/// same facts travel as `X-Auth-*` headers.
#[derive(Serialize, ToSchema)]
pub struct VerifyAnswer {
    /// Always `true` (a token that does not fit gets a 401).
    pub valid: bool,
    /// The user's stable id.
    pub sub: String,
    /// The user's name.
    pub username: String,
    /// The user's e-mail, when known.
    pub email: Option<String>,
    /// Granted scope, space separated.
    pub scope: String,
    /// The token's audiences.
    pub aud: Vec<String>,
    /// The client the token was issued to.
    pub client_id: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

fn looks_like_jwt(t: &str) -> bool {
    t.split('.').count() == 3
}

/// Session cookie names `/verify` reads.
const SESSION_COOKIES: [&str; 2] = ["__Host-unified_auth_token", "unified_auth_token"];

/// The token from `Authorization: Bearer` or a session cookie.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    if let Some(b) = bearer(headers) {
        return Some(b.to_string());
    }
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim);
    for c in cookies {
        if let Some((k, v)) = c.split_once('=') {
            if SESSION_COOKIES.contains(&k) {
                return Some(v.to_string());
            }
        }
    }
    None
}

impl OAuth {
    /// The caller of introspection: an authenticated confidential client
    /// (`Some((id, resource_server))`), or `None` for an admin API token.
    async fn introspection_caller(&self, headers: &HeaderMap, p: &Params, admin_ok: bool) -> OAuthResult<Option<(String, bool)>> {
        if admin_ok {
            return Ok(None);
        }
        if headers.get(header::AUTHORIZATION).is_none() && p.get("client_id")?.is_none() {
            return Err(OAuthError::invalid_client("introspection requires client authentication"));
        }
        let (id, secret) = client_credentials(headers, p)?;
        let c = self.authenticate_client(&id, secret.as_deref()).await?;
        if c.client_secret_hash.is_none() {
            return Err(OAuthError::invalid_client("introspection requires a confidential client"));
        }
        Ok(Some((id, c.resource_server)))
    }

    /// `POST /introspect`; `admin_ok` when the caller presented an admin API token.
    pub async fn introspect(&self, headers: &HeaderMap, body: &[u8], admin_ok: bool) -> Response {
        let p = Params::parse(body);
        let caller = match self.introspection_caller(headers, &p, admin_ok).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
        // A client that is not a resource server sees only its own tokens;
        // others' are inactive to it (RFC 7662 §4: answer inactive rather than reveal).
        let may_see = |owner: &str| match &caller {
            None | Some((_, true)) => true,
            Some((id, false)) => id == owner,
        };
        let Ok(token) = p.require("token") else {
            return OAuthError::invalid_request("missing parameter token").into_response();
        };
        let answer = if looks_like_jwt(token) {
            match self.verify_access(token).await {
                Ok(c) if may_see(&c.client_id) => Introspection::access(c),
                _ => Introspection::inactive(),
            }
        } else {
            match self.refresh_record(token).await {
                Ok(Some(g)) if g.rotated_at.is_none() && may_see(&g.client_id) => Introspection::refresh(g, self.issuer()),
                _ => Introspection::inactive(),
            }
        };
        Json(answer).into_response()
    }

    /// `POST /revoke`.
    pub async fn revoke(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let result = self.revoke_inner(headers, body).await;
        crate::reqlog::events::revoke(headers, body, result.as_ref().map(|_| ()));
        match result {
            Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], "").into_response(),
            Err(e) => e.into_response(),
        }
    }

    async fn revoke_inner(&self, headers: &HeaderMap, body: &[u8]) -> OAuthResult<()> {
        let p = Params::parse(body);
        let (id, secret) = client_credentials(headers, &p)?;
        self.authenticate_client(&id, secret.as_deref()).await?;
        let token = p.require("token")?;
        if looks_like_jwt(token) {
            let Ok(c) = self.verify_access(token).await else { return Ok(()) };
            if c.client_id != id {
                return Err(OAuthError::unauthorized_client("this token was issued to another client"));
            }
            self.revoke_jti(&c.jti, c.exp).await?;
            tracing::info!(jti = %c.jti, client = %id, "access token revoked");
            return Ok(());
        }
        if let Some(g) = self.refresh_record(token).await? {
            if g.client_id != id {
                return Err(OAuthError::unauthorized_client("this token was issued to another client"));
            }
            self.revoke_family(&g.family).await?;
        }
        Ok(())
    }

    /// What `/verify` is asked about: `?resource=URI` (exact), `?rd=URL`
    /// (its host), else `X-Forwarded-Host` (+ `X-Forwarded-Proto`) from the
    /// calling proxy. `(scheme, host as addressed, exact resource)`.
    fn verify_target(headers: &HeaderMap, p: &Params) -> OAuthResult<(String, String, Option<String>)> {
        let from_url = |u: &str| -> OAuthResult<(String, String)> {
            let parsed = url::Url::parse(u).map_err(|_| OAuthError::invalid_request(format!("{u} is not an absolute URL")))?;
            let host = parsed
                .host_str()
                .ok_or_else(|| OAuthError::invalid_request(format!("{u} has no host")))?;
            let authority = match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
            Ok((parsed.scheme().to_string(), authority))
        };
        if let Some(r) = p.get("resource")? {
            let c = super::canonical_resource(r).ok_or_else(|| OAuthError::invalid_request("resource must be an absolute http(s) URI"))?;
            let (scheme, host) = from_url(&c)?;
            return Ok((scheme, host, Some(c)));
        }
        if let Some(rd) = p.get("rd")? {
            if rd.starts_with("http://") || rd.starts_with("https://") {
                let (scheme, host) = from_url(rd)?;
                return Ok((scheme, host, None));
            }
        }
        let host = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                OAuthError::invalid_token("/verify needs the host it checks: X-Forwarded-Host from the proxy, or ?resource=URI or ?rd=URL")
            })?;
        let scheme = match headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
            Some("http") => "http",
            _ => "https",
        };
        Ok((scheme.to_string(), host.to_string(), None))
    }

    /// The data plane's audience rule for host `host`: the proxy's resource
    /// URI (public https or as addressed) or its root, or one of its allowed
    /// audiences; for a host that is no proxy, its root; and with an exact
    /// `resource` asked about, that resource.
    async fn audience_fits(&self, aud: &[String], scheme: &str, host: &str, resource: Option<&str>) -> OAuthResult<bool> {
        let key = {
            let h = if host.starts_with('[') {
                host.find(']').map_or(host, |i| &host[..=i])
            } else {
                host.split(':').next().unwrap_or_default()
            };
            h.trim_end_matches('.').to_ascii_lowercase()
        };
        let proxy = self.store.get_proxy(&key).await?;
        let canon = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        let names = |a: &str, scheme: &str, host: &str, path: &str| {
            let a = canon(a);
            let root = format!("{scheme}://{}", host.to_ascii_lowercase());
            a == root || (!path.is_empty() && a == format!("{root}{}", canon(path)))
        };
        Ok(aud.iter().any(|a| {
            if resource.is_some_and(|r| canon(r) == canon(a)) {
                return true;
            }
            match &proxy {
                Some(p) => {
                    let ep = p.resource_endpoint.as_deref().unwrap_or("");
                    names(a, "https", &p.hostname, ep)
                        || names(a, scheme, host, ep)
                        || p.auth_allowed_audiences
                            .as_ref()
                            .is_some_and(|l| l.iter().any(|x| canon(x) == canon(a)))
                }
                None => names(a, "https", &key, "") || names(a, scheme, host, ""),
            }
        }))
    }

    /// `/verify`: 200 with identity headers for a valid token or session
    /// whose audience is the host asked about, else 401.
    pub async fn verify(&self, headers: &HeaderMap, query: &[u8]) -> Response {
        let p = Params::parse(query);
        let claims: Result<AccessClaims, OAuthError> = match request_token(headers) {
            Some(t) => match (self.verify_access(&t).await, Self::verify_target(headers, &p)) {
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(c), Ok((scheme, host, resource))) => match self.audience_fits(&c.aud, &scheme, &host, resource.as_deref()).await {
                    Ok(true) => Ok(c),
                    Ok(false) => Err(OAuthError::invalid_token(format!("the token's audience is not {host}"))),
                    Err(e) => Err(e),
                },
            },
            None => Err(OAuthError::invalid_token("no bearer token or session cookie")),
        };
        match claims {
            Ok(c) => {
                let mut r = Json(VerifyAnswer {
                    valid: true,
                    sub: c.sub.clone(),
                    username: c.preferred_username.clone(),
                    email: c.email.clone(),
                    scope: c.scope.clone(),
                    aud: c.aud.clone(),
                    client_id: c.client_id.clone(),
                    exp: c.exp,
                })
                .into_response();
                let h = r.headers_mut();
                for (k, v) in [
                    ("X-Auth-User-Id", c.sub.clone()),
                    ("X-Auth-User", c.preferred_username.clone()),
                    ("X-Auth-Email", c.email.clone().unwrap_or_default()),
                    ("X-Auth-Scopes", c.scope.clone()),
                ] {
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        h.insert(k, v);
                    }
                }
                r
            }
            Err(e) if e.status == StatusCode::INTERNAL_SERVER_ERROR => e.into_response(),
            Err(e) => {
                let mut r = (StatusCode::UNAUTHORIZED, Json(OAuthErrorBody::from(&e))).into_response();
                let www = format!("Bearer realm=\"{}\", error=\"invalid_token\"", self.issuer());
                if let Ok(v) = HeaderValue::from_str(&www) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
        }
    }

    /// One live access token record (admin view).
    pub async fn access_record(&self, jti: &str) -> OAuthResult<Option<super::model::AccessRecord>> {
        match self.store.get_access(jti).await {
            // An undecodable record reads as no record, as for the listing.
            Err(StoreError::Corrupt(_)) => Ok(None),
            other => Ok(other?),
        }
    }

    /// Admin view: every live access token record.
    pub async fn list_access_tokens(&self) -> OAuthResult<Vec<Value>> {
        Ok(self.store.list_access().await?)
    }
}
