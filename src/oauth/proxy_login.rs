//! Browser login for proxies in redirect mode: `/_portcullis/login` on the
//! proxy's host starts the code flow (we are the client, with PKCE) and sets
//! a short-lived state cookie (`__Host-` over HTTPS) binding the login to
//! this browser; `/_portcullis/callback` requires that cookie, takes the
//! proxy, the return path and the cookie settings from the stored state
//! (never from request headers), redeems the code and sets the session
//! cookie (`__Host-` prefixed, Secure, HttpOnly, SameSite=Lax over HTTPS).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::consent::{browser_cookie, cookie_value, html_page, see_other};
use super::model::LoginSession;
use super::params::Params;
use super::tokens::digest;
use super::upstream::s256;
use super::{random_token, OAuth, OAuthError, OAuthResult};
use crate::store::{OAuthStore, Parked};

/// Client id the proxies use for their own logins.
pub const PROXY_CLIENT_ID: &str = "portcullis-proxy";

#[derive(Serialize, Deserialize)]
struct PendingLogin {
    verifier: String,
    return_to: String,
    redirect_uri: String,
    cookie: String,
    tls: bool,
    /// Digest of the state cookie's nonce.
    #[serde(default)]
    browser: String,
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

/// Only a same-host absolute path may be returned to (no open redirect):
/// no scheme-relative `//` or `/\`, no control characters or whitespace
/// (browsers drop tabs and newlines, turning `/\t/evil` into `//evil`), no
/// backslash; and the path must resolve to the same origin. Anything else
/// returns to `/`.
pub fn safe_return(rd: Option<&str>) -> String {
    let Some(p) = rd else { return "/".into() };
    let plain = p.starts_with('/')
        && !p.starts_with("//")
        && p.len() <= 2048
        && !p.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if !plain {
        return "/".into();
    }
    let Ok(base) = url::Url::parse("https://portcullis.invalid/") else {
        return "/".into();
    };
    match base.join(p) {
        Ok(u) if u.origin() == base.origin() => {
            let mut out = u.path().to_string();
            if let Some(q) = u.query() {
                out.push('?');
                out.push_str(q);
            }
            if out.starts_with("//") {
                "/".into()
            } else {
                out
            }
        }
        _ => "/".into(),
    }
}

/// The proxy lookup key of a Host value: lowercased, port and trailing dot
/// stripped (the data plane's rule).
fn host_key(raw: &str) -> String {
    let host = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |i| &raw[..=i])
    } else {
        raw.split(':').next().unwrap_or_default()
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn state_cookie_name(state: &str, tls: bool) -> String {
    let prefix = if tls { "__Host-" } else { "" };
    format!("{prefix}portcullis_login_{}", state.get(..12).unwrap_or(state))
}

/// The page for a proxy login callback without its state cookie.
fn not_this_browser() -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "Sign-in not started in this browser",
        "<p>This sign-in link was not started in this browser, or it expired. For your safety it was not completed: \
         someone may have sent you a link from their own sign-in.</p><p><a href=\"/\">Go back</a> and sign in again.</p>",
    )
}

impl OAuth {
    /// `GET /_portcullis/login?rd=PATH` (reached through the proxy's host).
    pub async fn proxy_login(&self, headers: &HeaderMap, query: &[u8]) -> Response {
        match self.proxy_login_inner(headers, query).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    async fn proxy_login_inner(&self, headers: &HeaderMap, query: &[u8]) -> OAuthResult<Response> {
        let p = Params::parse(query);
        let (raw_host, tls) = origin(headers);
        let hostname = host_key(&raw_host);
        let proxy = self
            .store
            .get_proxy(&hostname)
            .await?
            .ok_or_else(|| OAuthError::invalid_request("unknown proxy host"))?;
        let scheme = if tls { "https" } else { "http" };
        let redirect_uri = format!("{scheme}://{raw_host}/_portcullis/callback");
        url::Url::parse(&redirect_uri).map_err(|_| OAuthError::invalid_request("malformed host"))?;
        let verifier = random_token(32);
        let state = random_token(24);
        let nonce = random_token(24);
        let ttl = self.config.oauth.session_timeout.as_secs();
        let pending = PendingLogin {
            verifier: verifier.clone(),
            return_to: safe_return(p.get("rd").ok().flatten()),
            redirect_uri: redirect_uri.clone(),
            cookie: proxy.auth_cookie_name.clone(),
            tls,
            browser: digest(&nonce),
        };
        self.store.park(Parked::ProxyLogin(&state), &pending, ttl).await?;
        let resource = format!("https://{}{}", proxy.hostname, proxy.resource_endpoint.as_deref().unwrap_or(""));
        let session = LoginSession {
            client_id: PROXY_CLIENT_ID.into(),
            redirect_uri,
            state: Some(state.clone()),
            redirect_uri_given: true,
            code_challenge: s256(&verifier),
            scope: vec![],
            resources: vec![resource.trim_end_matches('/').to_string()],
            proxy_hostname: Some(proxy.hostname.clone()),
            server_chose_proxy: true,
            browser: String::new(),
            upstream_verifier: random_token(32),
            nonce: random_token(16),
            device_user_code: None,
        };
        // The browser is on the proxy's host: the binding cookie is set here
        // and checked at /_portcullis/callback, not at the issuer.
        let mut r = self.begin_upstream(session, false).await?;
        let c = browser_cookie(&state_cookie_name(&state, tls), &nonce, tls, ttl);
        r.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&c).map_err(|e| OAuthError::server(e.to_string()))?,
        );
        Ok(r)
    }

    /// `GET /_portcullis/callback?code&state`: sets the session cookie.
    pub async fn proxy_callback(&self, headers: &HeaderMap, query: &[u8]) -> Response {
        match self.proxy_callback_inner(headers, query).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    async fn proxy_callback_inner(&self, headers: &HeaderMap, query: &[u8]) -> OAuthResult<Response> {
        let p = Params::parse(query);
        let state = p.require("state")?;
        let pending: PendingLogin = self
            .store
            .unpark(Parked::ProxyLogin(state))
            .await?
            .ok_or_else(|| OAuthError::invalid_request("unknown or expired login"))?;
        let state_cookie = state_cookie_name(state, pending.tls);
        let bound = cookie_value(headers, &state_cookie).is_some_and(|v| crate::secrets::constant_time_eq(&digest(v), &pending.browser));
        if !bound {
            tracing::warn!("proxy login callback without its state cookie refused");
            return Ok(not_this_browser());
        }
        if let Some(err) = p.get("error")? {
            return Err(OAuthError::access_denied(format!(
                "login failed: {err}: {}",
                p.get("error_description")?.unwrap_or("")
            )));
        }
        let body = self
            .redeem_code(
                PROXY_CLIENT_ID,
                p.require("code")?,
                Some(&pending.redirect_uri),
                Some(&pending.verifier),
                vec![],
                false,
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
        let mut r = see_other(&pending.return_to)?;
        for c in [cookie, browser_cookie(&state_cookie, "", pending.tls, 0)] {
            r.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_str(&c).map_err(|e| OAuthError::server(e.to_string()))?,
            );
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return;

    #[test]
    fn return_paths_stay_on_the_host() {
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/x",
            "/\r/x",
            "https://evil.example/",
            "evil",
            "/ /evil",
            "/\u{0}x",
        ] {
            assert_eq!(safe_return(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return(Some("/app/x?a=1")), "/app/x?a=1");
        assert_eq!(safe_return(Some("/a/../b")), "/b");
        assert_eq!(safe_return(None), "/");
    }
}
