//! Device authorization grant (RFC 8628): `/device/code`, the `/device`
//! page where a person enters the code and logs in upstream, and polling.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::authorize::client_scope;
use super::consent::{device_gone, escape, html_page};
use super::model::{now, DeviceGrant, LoginSession};
use super::params::{client_credentials, Params};
use super::token::DEVICE_GRANT;
use super::tokens::{digest, GrantBase};
use super::{random_token, OAuth, OAuthError, OAuthResult};
use crate::store::OAuthStore;

/// The form `POST /device/code` reads (RFC 8628 section 3.1); parsed by
/// hand (`Params`), this type is its schema.
#[derive(ToSchema)]
pub struct DeviceAuthorizationRequest {
    /// The client, unless it authenticates with HTTP Basic.
    pub client_id: Option<String>,
    /// The client's secret (`client_secret_post`).
    pub client_secret: Option<String>,
    /// The scope asked for, space separated.
    pub scope: Option<String>,
    /// Resource indicators (RFC 8707), repeatable.
    pub resource: Option<Vec<String>>,
}

/// The device authorization answer (RFC 8628 section 3.2).
#[derive(Serialize, ToSchema)]
pub struct DeviceAuthorization {
    /// What the device polls `/device/token` with.
    pub device_code: String,
    /// What the person enters at `verification_uri`.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same with the code filled in.
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: i64,
}

/// Lifetime of a device code.
pub const DEVICE_TTL_SECS: u64 = 600;
const INTERVAL_SECS: i64 = 5;
/// No vowels (no words), no look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B are absent or single).
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// 10 characters of 20: 43 bits (RFC 8628 §6.1 asks for enough entropy given the throttle).
const USER_CODE_LEN: usize = 10;
/// Failed user-code entries allowed per source address and per entered code in one window.
const MAX_FAILURES_PER_SOURCE: i64 = 5;
const MAX_FAILURES_PER_CODE: i64 = 3;
const FAILURE_WINDOW_SECS: u64 = 300;

fn new_user_code() -> String {
    let mut rng = rand::rng();
    let c: String = (0..USER_CODE_LEN)
        .map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &c[..USER_CODE_LEN / 2], &c[USER_CODE_LEN / 2..])
}

fn normalize_user_code(s: &str) -> String {
    let c: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(64)
        .collect();
    if c.len() == USER_CODE_LEN {
        format!("{}-{}", &c[..USER_CODE_LEN / 2], &c[USER_CODE_LEN / 2..])
    } else {
        c
    }
}

fn entry_form(note: &str) -> String {
    format!(
        "{note}<form method=get action=device><label>Code shown on your device <input name=user_code autofocus></label> \
         <button type=submit>Continue</button></form>"
    )
}

impl OAuth {
    /// `POST /device/code`.
    pub async fn device_code(&self, headers: &HeaderMap, body: &[u8]) -> OAuthResult<DeviceAuthorization> {
        // Nobody could approve the code: say so now, not after the client
        // has polled for the code's whole lifetime.
        if self.config.oauth.login_provider == crate::config::LoginProvider::None {
            return Err(OAuthError::no_login_provider());
        }
        let p = Params::parse(body);
        let (client_id, secret) = client_credentials(headers, &p)?;
        let client = self.authenticate_client(&client_id, secret.as_deref()).await?;
        if !client.grant_types.iter().any(|g| g == DEVICE_GRANT) {
            return Err(OAuthError::unauthorized_client("this client may not use the device grant"));
        }
        let scope = client_scope(&client, p.scopes()?)?;
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
        self.store
            .start_device(&digest(&device_code), &user_code, &g, DEVICE_TTL_SECS)
            .await?;
        let uri = format!("{}/device", self.issuer());
        Ok(DeviceAuthorization {
            device_code,
            verification_uri_complete: format!("{uri}?user_code={user_code}"),
            user_code,
            verification_uri: uri,
            expires_in: DEVICE_TTL_SECS,
            interval: INTERVAL_SECS,
        })
    }

    /// `GET /device[?user_code=]`: the entry form; with a code, the login
    /// at the identity provider, after which the approval page shows the
    /// code and the client and waits for the person's explicit answer.
    /// Failed entries are throttled per source address and per entered code.
    pub async fn device_page(&self, query: &[u8], source: IpAddr) -> Response {
        let p = Params::parse(query);
        let Ok(Some(entered)) = p.get("user_code") else {
            return html_page(StatusCode::OK, "Connect a device", &entry_form(""));
        };
        let code = normalize_user_code(entered);
        let (source, code_digest) = (source.to_string(), digest(&code));
        match self.store.device_failures(&source, &code_digest).await {
            Ok((by_source, by_code)) if by_source >= MAX_FAILURES_PER_SOURCE || by_code >= MAX_FAILURES_PER_CODE => {
                return html_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts",
                    "<p>Too many wrong codes were entered. Wait a few minutes, then try again.</p>",
                )
            }
            Ok(_) => {}
            Err(e) => return OAuthError::from(e).into_response(),
        }
        let g = match self.device_by_user_code(&code).await {
            Ok(Some((_, g))) => g,
            Ok(None) => {
                if let Err(e) = self.store.count_device_failure(&source, &code_digest, FAILURE_WINDOW_SECS).await {
                    return OAuthError::from(e).into_response();
                }
                tracing::info!(%source, "unknown device user code entered");
                return html_page(
                    StatusCode::NOT_FOUND,
                    "Unknown code",
                    &entry_form("<p>That code is unknown or expired. Check the code on your device.</p>"),
                );
            }
            Err(e) => return e.into_response(),
        };
        if g.user.is_some() || g.denied.is_some() {
            return device_gone();
        }
        let session = LoginSession {
            client_id: g.client_id,
            redirect_uri: String::new(),
            state: None,
            redirect_uri_given: true,
            code_challenge: String::new(),
            scope: g.scope,
            resources: g.resources,
            proxy_hostname: None,
            server_chose_proxy: false,
            browser: String::new(),
            upstream_verifier: random_token(32),
            nonce: random_token(16),
            device_user_code: Some(code),
        };
        match self.begin_upstream(session, true).await {
            Ok(r) => r,
            Err(e) => html_page(e.status, "Sign-in failed", &format!("<p>{}</p>", escape(&e.description))),
        }
    }

    /// The device_code grant at the token endpoint.
    pub async fn device_token(&self, client_id: &str, device_code: &str, refreshable: bool) -> OAuthResult<Value> {
        let device = digest(device_code);
        let mut g: DeviceGrant = self
            .store
            .get_device(&device)
            .await?
            .ok_or_else(|| OAuthError::device("expired_token", "the device code expired"))?;
        if g.client_id != client_id {
            return Err(OAuthError::invalid_grant("device code was issued to another client"));
        }
        if let Some(reason) = g.denied {
            self.store.finish_device(&device, &g.user_code).await?;
            return Err(OAuthError::device("access_denied", reason));
        }
        let Some(user) = g.user.clone() else {
            let now_ms = now() * 1000 + i64::from(chrono::Utc::now().timestamp_subsec_millis());
            let too_fast = g.last_poll_ms > 0 && now_ms - g.last_poll_ms < INTERVAL_SECS * 1000 - 500;
            g.last_poll_ms = now_ms;
            self.store.put_device(&device, &g, DEVICE_TTL_SECS).await?;
            return Err(if too_fast {
                OAuthError::device("slow_down", "polling too fast; wait the interval")
            } else {
                OAuthError::device("authorization_pending", "waiting for the person to approve")
            });
        };
        if !self.store.finish_device(&device, &g.user_code).await? {
            return Err(OAuthError::invalid_grant("device code already used"));
        }
        let base = refreshable.then(|| GrantBase {
            scope: g.granted_scope.clone(),
            resources: g.resources.clone(),
            proxy_hostname: None,
            server_chose_proxy: false,
        });
        self.mint(client_id, &user, &g.granted_scope, &g.resources, &random_token(16), base)
            .await
    }
}
