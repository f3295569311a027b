//! Decisions a person makes in the browser after logging in: consent for a
//! dynamically registered or metadata-document client (the MCP
//! authorization spec's confused-deputy guidance), and approval of a device
//! code (RFC 8628 §5.4). Both pages name what is asked and post back a form
//! that carries a single-use id and a CSRF token, accepted only from the
//! browser holding the login's binding cookie. Consents are remembered per
//! user and client, listed and revocable in the OAuth admin API.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::authorize::redirect_error;
use super::model::{now, DeviceGrant, LoginSession, User};
use super::params::Params;
use super::tokens::digest;
use super::{random_token, OAuth, OAuthError, OAuthResult};
use crate::secrets::constant_time_eq;
use crate::store::{OAuthStore, Parked};

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A small HTML page; never cached, never framed.
pub fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let mut r = (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=utf-8><title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        )),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // No form-action: browsers apply it to the redirect after the form
    // (to the client's redirect URI), which it would block.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    r
}

/// A 303 to `location`, refusing (never panicking on) an invalid header value.
pub fn see_other(location: &str) -> OAuthResult<Response> {
    let v = HeaderValue::from_str(location).map_err(|_| OAuthError::invalid_request("the redirect target is not a valid URL"))?;
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(header::LOCATION, v);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// A browser-binding cookie: HttpOnly, SameSite=Lax (it must come back on
/// the top-level redirect from the identity provider), Secure over https.
pub fn browser_cookie(name: &str, value: &str, https: bool, max_age: u64) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What waits for the person's decision.
#[derive(Serialize, Deserialize)]
enum Waiting {
    /// First authorization of a registered client by this user.
    Consent { session: Box<LoginSession>, granted: Vec<String> },
    /// A device code to approve.
    Device { user_code: String, granted: Vec<String> },
}

#[derive(Serialize, Deserialize)]
struct Pending {
    waiting: Waiting,
    user: User,
    csrf: String,
    /// Digest of the login's browser-binding nonce, and that cookie's name.
    browser: String,
    cookie: String,
}

/// A remembered consent.
#[derive(Serialize, Deserialize)]
struct Consent {
    client_id: String,
    user_id: String,
    username: String,
    scope: Vec<String>,
    resources: Vec<String>,
    granted_at: i64,
}

fn list_html(items: &[String]) -> String {
    if items.is_empty() {
        return "<em>none</em>".into();
    }
    items
        .iter()
        .map(|i| format!("<code>{}</code>", escape(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The form the consent page posts to `/consent`; parsed by hand
/// (`Params`), this type is its schema.
#[derive(ToSchema)]
pub struct ConsentDecision {
    /// The pending decision the page was shown for.
    pub id: String,
    /// The page's anti-forgery token.
    pub csrf: String,
    /// `approve` or `deny`.
    pub decision: String,
}

impl OAuth {
    /// A consent page is due for a dynamically registered or metadata
    /// document client that the admin did not pre-approve, unless the user
    /// already consented to at least these scopes and resources.
    pub async fn needs_consent(&self, s: &LoginSession, user: &User, granted: &[String]) -> OAuthResult<bool> {
        if s.client_id == super::proxy_login::PROXY_CLIENT_ID {
            return Ok(false);
        }
        let c = self.client(&s.client_id).await?;
        if c.pre_approved || !matches!(c.source.as_str(), "dcr" | "cimd") {
            return Ok(false);
        }
        // A consent that cannot be read is asked for again.
        let Ok(Some(known)) = self.store.get_consent::<Consent>(&digest(&s.client_id), &digest(&user.id)).await else {
            return Ok(true);
        };
        let covered = granted.iter().all(|g| known.scope.contains(g)) && s.resources.iter().all(|r| known.resources.contains(r));
        Ok(!covered)
    }

    async fn park(&self, waiting: Waiting, user: User, browser: &str, cookie: &str) -> OAuthResult<(String, String)> {
        let id = random_token(24);
        let csrf = random_token(24);
        let p = Pending {
            waiting,
            user,
            csrf: csrf.clone(),
            browser: browser.to_string(),
            cookie: cookie.to_string(),
        };
        self.store
            .park(Parked::Decision(&id), &p, self.config.oauth.session_timeout.as_secs())
            .await?;
        Ok((id, csrf))
    }

    fn decision_forms(&self, id: &str, csrf: &str, approve: &str) -> String {
        let action = escape(&format!("{}/consent", self.issuer()));
        let form = |decision: &str, label: &str| {
            format!(
                "<form method=post action=\"{action}\"><input type=hidden name=id value=\"{id}\">\
                 <input type=hidden name=csrf value=\"{csrf}\"><input type=hidden name=decision value=\"{decision}\">\
                 <button type=submit>{label}</button></form>"
            )
        };
        format!("{}{}", form("approve", approve), form("deny", "Deny"))
    }

    /// The consent page after the login (the code is issued only on approval).
    pub async fn consent_page(&self, session: LoginSession, user: User, granted: Vec<String>, cookie: &str) -> Response {
        let client = match self.client(&session.client_id).await {
            Ok(c) => c,
            Err(e) => return redirect_error(&session.redirect_uri, session.state.as_deref(), self.issuer(), &e),
        };
        let redirect_host = url::Url::parse(&session.redirect_uri)
            .ok()
            .map(|u| u.host_str().map_or_else(|| u.scheme().to_string(), String::from))
            .unwrap_or_default();
        let name = client.client_name.clone().unwrap_or_else(|| "(no name)".into());
        let body = format!(
            "<p>Signed in as <b>{user}</b>.</p><p>The application <b>{name}</b> (client id <code>{id}</code>, registered by itself, \
             not by this server's administrator) asks to act for you.</p><ul><li>It receives the result at <b>{host}</b></li>\
             <li>Scopes: {scopes}</li><li>Resources: {res}</li></ul><p>Allow only if you started this from that application.</p>",
            user = escape(&user.username),
            name = escape(&name),
            id = escape(&client.client_id),
            host = escape(&redirect_host),
            scopes = list_html(&granted),
            res = list_html(&session.resources),
        );
        let browser = session.browser.clone();
        let (redirect_uri, state) = (session.redirect_uri.clone(), session.state.clone());
        match self
            .park(
                Waiting::Consent {
                    session: Box::new(session),
                    granted,
                },
                user,
                &browser,
                cookie,
            )
            .await
        {
            Ok((id, csrf)) => html_page(
                StatusCode::OK,
                &format!("Allow {name}?"),
                &format!("{body}{}", self.decision_forms(&id, &csrf, "Allow")),
            ),
            Err(e) => redirect_error(&redirect_uri, state.as_deref(), self.issuer(), &e),
        }
    }

    /// The device approval page after the login: the code and the client are
    /// shown, nothing is approved until the person presses Approve.
    pub async fn device_decision_page(&self, user_code: &str, user: User, granted: Vec<String>, browser: &str, cookie: &str) -> Response {
        let g = match self.device_by_user_code(user_code).await {
            Ok(Some((_, g))) if g.user.is_none() && g.denied.is_none() => g,
            Ok(_) => return device_gone(),
            Err(e) => return e.into_response(),
        };
        let name = self
            .client(&g.client_id)
            .await
            .ok()
            .and_then(|c| c.client_name)
            .unwrap_or_else(|| g.client_id.clone());
        let body = format!(
            "<p>Signed in as <b>{user}</b>.</p><p>The device showing the code <b><code>{code}</code></b> \
             (application <b>{name}</b>) asks to act for you.</p><ul><li>Scopes: {scopes}</li><li>Resources: {res}</li></ul>\
             <p>Approve only if your own device shows exactly this code.</p>",
            user = escape(&user.username),
            code = escape(user_code),
            name = escape(&name),
            scopes = list_html(&granted),
            res = list_html(&g.resources),
        );
        match self
            .park(
                Waiting::Device {
                    user_code: user_code.to_string(),
                    granted,
                },
                user,
                browser,
                cookie,
            )
            .await
        {
            Ok((id, csrf)) => html_page(
                StatusCode::OK,
                "Approve this device?",
                &format!("{body}{}", self.decision_forms(&id, &csrf, "Approve")),
            ),
            Err(e) => e.into_response(),
        }
    }

    /// `POST /consent`: the person's answer to a consent or device page.
    pub async fn decide(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        match self.decide_inner(headers, body).await {
            Ok(r) => r,
            Err(e) => html_page(e.status, "Not completed", &format!("<p>{}</p>", escape(&e.description))),
        }
    }

    async fn decide_inner(&self, headers: &HeaderMap, body: &[u8]) -> OAuthResult<Response> {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let ours = url::Url::parse(self.issuer())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            if origin != ours {
                return Err(OAuthError::access_denied(
                    "this form may only be sent from the authorization server's own page",
                ));
            }
        }
        let p = Params::parse(body);
        let id = p.require("id")?;
        let csrf = p.require("csrf")?;
        let approve = match p.require("decision")? {
            "approve" => true,
            "deny" => false,
            _ => return Err(OAuthError::invalid_request("decision must be approve or deny")),
        };
        let pending: Pending = self
            .store
            .unpark(Parked::Decision(id))
            .await?
            .ok_or_else(|| OAuthError::invalid_request("this page expired or was already answered; start again"))?;
        let cookie_ok = cookie_value(headers, &pending.cookie).is_some_and(|v| constant_time_eq(&digest(v), &pending.browser));
        if !constant_time_eq(csrf, &pending.csrf) || !cookie_ok {
            tracing::warn!(user = %pending.user.username, "decision form refused: CSRF token or browser cookie mismatch");
            return Err(OAuthError::access_denied(
                "this answer did not come from the page shown to you in this browser; start again",
            ));
        }
        let clear = browser_cookie(&pending.cookie, "", self.issuer_is_https(), 0);
        let mut r = match pending.waiting {
            Waiting::Consent { session, granted } => {
                if approve {
                    self.remember_consent(&session, &pending.user, &granted).await?;
                    tracing::info!(user = %pending.user.username, client = %session.client_id, "consent given");
                    self.code_redirect(&session, pending.user, granted).await
                } else {
                    tracing::info!(user = %pending.user.username, client = %session.client_id, "consent refused");
                    let e = OAuthError::access_denied("the user denied the request");
                    redirect_error(&session.redirect_uri, session.state.as_deref(), self.issuer(), &e)
                }
            }
            Waiting::Device { user_code, granted } => self.device_decided(&user_code, pending.user, granted, approve).await,
        };
        if let Ok(v) = HeaderValue::from_str(&clear) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok(r)
    }

    async fn remember_consent(&self, s: &LoginSession, user: &User, granted: &[String]) -> OAuthResult<()> {
        let c = Consent {
            client_id: s.client_id.clone(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            scope: granted.to_vec(),
            resources: s.resources.clone(),
            granted_at: now(),
        };
        self.store
            .put_consent(
                &digest(&s.client_id),
                &digest(&user.id),
                &c,
                self.config.oauth.client_lifetime.as_secs(),
            )
            .await?;
        Ok(())
    }

    /// Admin: every remembered consent.
    pub async fn list_consents(&self) -> OAuthResult<Vec<Value>> {
        let mut v: Vec<Value> = self.store.list_consents().await?;
        v.sort_by(|a, b| (a["client_id"].as_str(), a["user_id"].as_str()).cmp(&(b["client_id"].as_str(), b["user_id"].as_str())));
        Ok(v)
    }

    /// Admin: forgets the consents given to a client (one user's, or all);
    /// the number forgotten.
    pub async fn forget_consents(&self, client_id: &str, user_id: Option<&str>) -> OAuthResult<usize> {
        let client = digest(client_id);
        Ok(match user_id {
            Some(u) => usize::from(self.store.forget_consent(&client, &digest(u)).await?),
            None => self.store.forget_client_consents(&client).await?,
        })
    }

    /// A device grant by its user code: (device code digest, grant).
    pub async fn device_by_user_code(&self, user_code: &str) -> OAuthResult<Option<(String, DeviceGrant)>> {
        Ok(self.store.device_by_user_code(user_code).await?)
    }

    /// Records the person's answer for a device code: once, by one person.
    async fn device_decided(&self, user_code: &str, user: User, granted: Vec<String>, approve: bool) -> Response {
        let (device, mut g) = match self.device_by_user_code(user_code).await {
            Ok(Some(x)) => x,
            Ok(None) => return device_gone(),
            Err(e) => return e.into_response(),
        };
        let user_id = user.id.clone();
        let (title, text) = if approve {
            let msg = format!("<p>Signed in as {}. You can return to your device.</p>", escape(&user.username));
            tracing::info!(user = %user.username, client = %g.client_id, "device code approved");
            g.user = Some(user);
            g.granted_scope = granted;
            ("Device connected", msg)
        } else {
            g.denied = Some("the user denied the request".into());
            (
                "Access denied",
                "<p>You denied the device's request. Nothing was shared.</p>".to_string(),
            )
        };
        // The first answer wins; a second person (or a second tab) cannot re-approve.
        match self
            .store
            .decide_device(&device, &user_id, &g, super::device::DEVICE_TTL_SECS)
            .await
        {
            Ok(true) => html_page(StatusCode::OK, title, &text),
            Ok(false) => device_gone(),
            Err(e) => OAuthError::from(e).into_response(),
        }
    }

    /// A device login that failed upstream or by policy: the device is told so.
    pub async fn device_login_failed(&self, user_code: &str, e: OAuthError) -> Response {
        if let Ok(Some((device, mut g))) = self.device_by_user_code(user_code).await {
            if g.user.is_none() && g.denied.is_none() {
                g.denied = Some(e.description.clone());
                if let Err(err) = self.store.put_device(&device, &g, super::device::DEVICE_TTL_SECS).await {
                    return OAuthError::from(err).into_response();
                }
            }
        }
        html_page(
            StatusCode::FORBIDDEN,
            "Access denied",
            &format!("<p>{}</p>", escape(&e.description)),
        )
    }
}

/// The page for a device code that expired or was already answered.
pub fn device_gone() -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "Code expired or already used",
        "<p>That code is unknown, expired or was already answered. Start again on your device.</p>",
    )
}

/// The JSON shape of a consent for the admin API.
pub fn consent_view(v: &Value) -> Value {
    json!({"client_id": v["client_id"], "user_id": v["user_id"], "username": v["username"], "scope": v["scope"],
        "resources": v["resources"], "granted_at": v["granted_at"]})
}
