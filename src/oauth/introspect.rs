//! Introspection (RFC 7662, authenticated callers only), revocation
//! (RFC 7009, a client revokes only its own tokens) and `/verify`
//! (ForwardAuth for nginx `auth_request`, Traefik, Caddy).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::params::{bearer, client_credentials, Params};
use super::tokens::AccessClaims;
use super::{OAuth, OAuthError, OAuthResult};

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
    /// The caller of introspection: an authenticated client, or an admin API token.
    async fn introspection_caller(&self, headers: &HeaderMap, p: &Params, admin_ok: bool) -> OAuthResult<Option<String>> {
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
        Ok(Some(id))
    }

    /// `POST /introspect`; `admin_ok` when the caller presented an admin API token.
    pub async fn introspect(&self, headers: &HeaderMap, body: &[u8], admin_ok: bool) -> Response {
        let p = Params::parse(body);
        if let Err(e) = self.introspection_caller(headers, &p, admin_ok).await {
            return e.into_response();
        }
        let Ok(token) = p.require("token") else {
            return OAuthError::invalid_request("missing parameter token").into_response();
        };
        let inactive = || Json(json!({"active": false})).into_response();
        if looks_like_jwt(token) {
            return match self.verify_access(token).await {
                Ok(c) => Json(json!({
                    "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id, "username": c.preferred_username,
                    "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "nbf": c.nbf, "jti": c.jti,
                }))
                .into_response(),
                Err(_) => inactive(),
            };
        }
        match self.refresh_record(token).await {
            Ok(Some(g)) if g.rotated_at.is_none() => Json(json!({
                "active": true, "token_type": "refresh_token", "scope": g.scope.join(" "), "client_id": g.client_id,
                "username": g.user.username, "sub": g.user.id, "exp": g.expires_at, "iss": self.issuer(),
            }))
            .into_response(),
            _ => inactive(),
        }
    }

    /// `POST /revoke`.
    pub async fn revoke(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        match self.revoke_inner(headers, body).await {
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

    /// `/verify`: 200 with identity headers for a valid token or session, else 401.
    pub async fn verify(&self, headers: &HeaderMap) -> Response {
        let claims: Result<AccessClaims, OAuthError> = match request_token(headers) {
            Some(t) => self.verify_access(&t).await,
            None => Err(OAuthError::invalid_token("no bearer token or session cookie")),
        };
        match claims {
            Ok(c) => {
                let mut r = Json(
                    json!({"valid": true, "sub": c.sub, "username": c.preferred_username, "email": c.email,
                    "scope": c.scope, "aud": c.aud, "client_id": c.client_id, "exp": c.exp}),
                )
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
            Err(e) => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": e.code, "error_description": e.description})),
                )
                    .into_response();
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
        Ok(self
            .store
            .kv_get(&format!("oauth:token:{jti}"))
            .await?
            .and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Admin view: every live access token record.
    pub async fn list_access_tokens(&self) -> OAuthResult<Vec<Value>> {
        Ok(self
            .store
            .kv_scan("oauth:token:")
            .await?
            .into_iter()
            .filter_map(|(_, raw)| serde_json::from_str(&raw).ok())
            .collect())
    }
}
