//! Device authorization grant (RFC 8628): `/device/code`, the `/device`
//! page where a person enters the code and logs in upstream, and polling.

use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{json, Value};

use super::model::{now, DeviceGrant, LoginSession, User};
use super::params::{client_credentials, Params};
use super::token::DEVICE_GRANT;
use super::tokens::digest;
use super::{random_token, OAuth, OAuthError, OAuthResult};

const DEVICE_TTL_SECS: u64 = 600;
const INTERVAL_SECS: i64 = 5;
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

fn new_user_code() -> String {
    let c: String = (0..8)
        .map(|_| USER_CODE_ALPHABET[usize::from(rand::random::<u8>()) % USER_CODE_ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &c[..4], &c[4..])
}

fn normalize_user_code(s: &str) -> String {
    let c: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if c.len() == 8 {
        format!("{}-{}", &c[..4], &c[4..])
    } else {
        c
    }
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
    ))
    .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl OAuth {
    /// `POST /device/code`.
    pub async fn device_code(&self, headers: &HeaderMap, body: &[u8]) -> OAuthResult<Value> {
        let p = Params::parse(body);
        let (client_id, secret) = client_credentials(headers, &p)?;
        let client = self.authenticate_client(&client_id, secret.as_deref()).await?;
        if !client.grant_types.iter().any(|g| g == DEVICE_GRANT) {
            return Err(OAuthError::unauthorized_client("this client may not use the device grant"));
        }
        let scope = p.scopes()?;
        if let Some(bad) = scope.iter().find(|s| !super::SUPPORTED_SCOPES.contains(&s.as_str())) {
            return Err(OAuthError::invalid_scope(format!("unknown scope {bad}")));
        }
        let resources = self.check_resources(&p.all("resource")).await?;
        let device_code = random_token(32);
        let user_code = new_user_code();
        let g = DeviceGrant {
            client_id,
            scope,
            resources,
            user_code: user_code.clone(),
            user: None,
            granted_scope: vec![],
            denied: None,
            last_poll_ms: 0,
        };
        let h = digest(&device_code);
        self.store
            .kv_set(
                &format!("oauth:device:{h}"),
                &serde_json::to_string(&g).map_err(|e| OAuthError::server(e.to_string()))?,
                Some(DEVICE_TTL_SECS),
            )
            .await?;
        self.store
            .kv_set(&format!("oauth:user_code:{user_code}"), &h, Some(DEVICE_TTL_SECS))
            .await?;
        let uri = format!("{}/device", self.issuer());
        Ok(json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": format!("{uri}?user_code={user_code}"),
            "expires_in": DEVICE_TTL_SECS,
            "interval": INTERVAL_SECS,
        }))
    }

    /// `GET /device[?user_code=]`: a form, or the start of the upstream login.
    pub async fn device_page(&self, query: &[u8]) -> Response {
        let p = Params::parse(query);
        let Ok(Some(code)) = p.get("user_code") else {
            return page(
                "Connect a device",
                "<form method=get action=device><label>Code shown on your device <input name=user_code autofocus></label> <button>Continue</button></form>",
            );
        };
        let code = normalize_user_code(code);
        let Ok(Some(h)) = self.store.kv_get(&format!("oauth:user_code:{code}")).await else {
            return page(
                "Unknown code",
                "<p>That code is unknown or expired. Start again on your device.</p>",
            );
        };
        let Ok(Some(raw)) = self.store.kv_get(&format!("oauth:device:{h}")).await else {
            return page(
                "Unknown code",
                "<p>That code is unknown or expired. Start again on your device.</p>",
            );
        };
        let Ok(g) = serde_json::from_str::<DeviceGrant>(&raw) else {
            return OAuthError::server("corrupt device grant").into_response();
        };
        let session = LoginSession {
            client_id: g.client_id,
            redirect_uri: String::new(),
            state: None,
            redirect_uri_given: true,
            code_challenge: String::new(),
            scope: g.scope,
            resources: g.resources,
            proxy_hostname: None,
            upstream_verifier: random_token(32),
            nonce: random_token(16),
            device_user_code: Some(code),
        };
        match self.begin_upstream(session).await {
            Ok(url) => Redirect::to(&url).into_response(),
            Err(e) => e.into_response(),
        }
    }

    /// Called by `/callback` when the login was for a device code.
    pub async fn device_login_done(&self, user_code: &str, outcome: OAuthResult<(User, Vec<String>)>) -> Response {
        let Ok(Some(h)) = self.store.kv_get(&format!("oauth:user_code:{user_code}")).await else {
            return page("Expired", "<p>The device code expired. Start again on your device.</p>");
        };
        let key = format!("oauth:device:{h}");
        let Ok(Some(raw)) = self.store.kv_get(&key).await else {
            return page("Expired", "<p>The device code expired. Start again on your device.</p>");
        };
        let Ok(mut g) = serde_json::from_str::<DeviceGrant>(&raw) else {
            return OAuthError::server("corrupt device grant").into_response();
        };
        let (title, text) = match outcome {
            Ok((user, granted)) => {
                let msg = format!("<p>Signed in as {}. You can return to your device.</p>", escape(&user.username));
                g.user = Some(user);
                g.granted_scope = granted;
                ("Device connected", msg)
            }
            Err(e) => {
                g.denied = Some(e.description.clone());
                ("Access denied", format!("<p>{}</p>", escape(&e.description)))
            }
        };
        let ttl = DEVICE_TTL_SECS;
        if let Err(e) = self
            .store
            .kv_set(&key, &serde_json::to_string(&g).unwrap_or_default(), Some(ttl))
            .await
        {
            return OAuthError::from(e).into_response();
        }
        page(title, &text)
    }

    /// The device_code grant at the token endpoint.
    pub async fn device_token(&self, client_id: &str, device_code: &str) -> OAuthResult<Value> {
        let key = format!("oauth:device:{}", digest(device_code));
        let raw = self
            .store
            .kv_get(&key)
            .await?
            .ok_or_else(|| OAuthError::device("expired_token", "the device code expired"))?;
        let mut g: DeviceGrant = serde_json::from_str(&raw).map_err(|e| OAuthError::server(e.to_string()))?;
        if g.client_id != client_id {
            return Err(OAuthError::invalid_grant("device code was issued to another client"));
        }
        if let Some(reason) = g.denied {
            self.store.kv_del(&key).await?;
            return Err(OAuthError::device("access_denied", reason));
        }
        let Some(user) = g.user.clone() else {
            let now_ms = now() * 1000 + i64::from(chrono::Utc::now().timestamp_subsec_millis());
            let too_fast = g.last_poll_ms > 0 && now_ms - g.last_poll_ms < INTERVAL_SECS * 1000 - 500;
            g.last_poll_ms = now_ms;
            self.store
                .kv_set(&key, &serde_json::to_string(&g).unwrap_or_default(), Some(DEVICE_TTL_SECS))
                .await?;
            return Err(if too_fast {
                OAuthError::device("slow_down", "polling too fast; wait the interval")
            } else {
                OAuthError::device("authorization_pending", "waiting for the person to approve")
            });
        };
        if self.store.kv_take(&key).await?.is_none() {
            return Err(OAuthError::invalid_grant("device code already used"));
        }
        self.store.kv_del(&format!("oauth:user_code:{}", g.user_code)).await?;
        self.mint(client_id, &user, &g.granted_scope, &g.resources, &random_token(16)).await
    }
}
