//! Browser login for proxies in redirect mode: `/_portcullis/login` on the
//! proxy's host starts the code flow (we are the client, with PKCE), and
//! `/_portcullis/callback` redeems the code and sets the session cookie
//! (`__Host-` prefixed, Secure, HttpOnly, SameSite=Lax over HTTPS).

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::model::LoginSession;
use super::params::Params;
use super::upstream::s256;
use super::{random_token, OAuth, OAuthError, OAuthResult};

/// Client id the proxies use for their own logins.
pub const PROXY_CLIENT_ID: &str = "portcullis-proxy";

#[derive(Serialize, Deserialize)]
struct PendingLogin {
    verifier: String,
    return_to: String,
    redirect_uri: String,
    cookie: String,
    tls: bool,
}

/// Host (with port) and scheme the data plane saw.
fn origin(headers: &HeaderMap) -> (String, bool) {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let tls = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https");
    (host, tls)
}

/// Only same-site relative paths may be returned to (no open redirect).
fn safe_return(rd: Option<&str>) -> String {
    match rd {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

impl OAuth {
    /// `GET /_portcullis/login?rd=PATH` (reached through the proxy's host).
    pub async fn proxy_login(&self, headers: &HeaderMap, query: &[u8]) -> Response {
        match self.proxy_login_inner(headers, query).await {
            Ok(url) => Redirect::to(&url).into_response(),
            Err(e) => e.into_response(),
        }
    }

    async fn proxy_login_inner(&self, headers: &HeaderMap, query: &[u8]) -> OAuthResult<String> {
        let p = Params::parse(query);
        let (raw_host, tls) = origin(headers);
        let hostname = raw_host.split(':').next().unwrap_or("").to_ascii_lowercase();
        let proxy = self
            .store
            .get_proxy(&hostname)
            .await?
            .ok_or_else(|| OAuthError::invalid_request("unknown proxy host"))?;
        let scheme = if tls { "https" } else { "http" };
        let redirect_uri = format!("{scheme}://{raw_host}/_portcullis/callback");
        let verifier = random_token(32);
        let state = random_token(24);
        let pending = PendingLogin {
            verifier: verifier.clone(),
            return_to: safe_return(p.get("rd")?),
            redirect_uri: redirect_uri.clone(),
            cookie: proxy.auth_cookie_name.clone(),
            tls,
        };
        let ttl = self.config.oauth.session_timeout.as_secs();
        self.store
            .kv_set(
                &format!("oauth:proxy_login:{state}"),
                &serde_json::to_string(&pending).map_err(|e| OAuthError::server(e.to_string()))?,
                Some(ttl),
            )
            .await?;
        let resource = format!("https://{}{}", proxy.hostname, proxy.resource_endpoint.as_deref().unwrap_or(""));
        let session = LoginSession {
            client_id: PROXY_CLIENT_ID.into(),
            redirect_uri,
            state: Some(state),
            redirect_uri_given: true,
            code_challenge: s256(&verifier),
            scope: vec![],
            resources: vec![resource.trim_end_matches('/').to_string()],
            proxy_hostname: Some(proxy.hostname.clone()),
            upstream_verifier: random_token(32),
            nonce: random_token(16),
            device_user_code: None,
        };
        self.begin_upstream(session).await
    }

    /// `GET /_portcullis/callback?code&state`: sets the session cookie.
    pub async fn proxy_callback(&self, query: &[u8]) -> Response {
        match self.proxy_callback_inner(query).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    async fn proxy_callback_inner(&self, query: &[u8]) -> OAuthResult<Response> {
        let p = Params::parse(query);
        if let Some(err) = p.get("error")? {
            return Err(OAuthError::access_denied(format!(
                "login failed: {err}: {}",
                p.get("error_description")?.unwrap_or("")
            )));
        }
        let state = p.require("state")?;
        let raw = self
            .store
            .kv_take(&format!("oauth:proxy_login:{state}"))
            .await?
            .ok_or_else(|| OAuthError::invalid_request("unknown or expired login"))?;
        let pending: PendingLogin = serde_json::from_str(&raw).map_err(|e| OAuthError::server(e.to_string()))?;
        let body = self
            .redeem_code(
                PROXY_CLIENT_ID,
                p.require("code")?,
                Some(&pending.redirect_uri),
                Some(&pending.verifier),
                vec![],
            )
            .await?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| OAuthError::server("no access token minted"))?;
        let max_age = self.config.oauth.access_token_lifetime.as_secs();
        let cookie = if pending.tls {
            format!(
                "__Host-{}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}",
                pending.cookie
            )
        } else {
            format!("{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}", pending.cookie)
        };
        let mut r = Redirect::to(&pending.return_to).into_response();
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(|e| OAuthError::server(e.to_string()))?,
        );
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }
}
