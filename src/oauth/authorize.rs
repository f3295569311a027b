//! `/authorize` and `/callback`: the code flow with PKCE S256 and resource
//! indicators, the login at the upstream provider, allowlists, and RFC 9207
//! `iss` in every authorization response.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::consent::{browser_cookie, cookie_value, html_page, see_other};
use super::model::{CodeGrant, LoginSession, User};
use super::params::Params;
use super::tokens::GrantBase;
use super::upstream::s256;
use super::{canonical_resource, random_token, scopes, OAuth, OAuthError, OAuthResult};
use crate::model::Proxy;
use crate::store::{OAuthStore, Parked, Redemption};

/// Authorization codes live this long.
pub const CODE_TTL_SECS: u64 = 600;

/// An authorization error sent back to the client's (verified) redirect URI.
pub fn redirect_error(redirect_uri: &str, state: Option<&str>, issuer: &str, e: &OAuthError) -> Response {
    let mut u = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return e.clone().into_response(),
    };
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("error", e.code).append_pair("error_description", &e.description);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    Redirect::to(u.as_str()).into_response()
}

impl OAuth {
    /// Checks requested resources: canonical, known (registry, a proxy's
    /// host, or the `/mcp` management endpoint), at most `MCP_MAX_RESOURCES_PER_TOKEN`.
    pub async fn check_resources(&self, raw: &[String]) -> OAuthResult<Vec<String>> {
        if raw.len() > self.config.oauth.max_resources_per_token {
            return Err(OAuthError::invalid_target(format!(
                "at most {} resources per token",
                self.config.oauth.max_resources_per_token
            )));
        }
        let mut out = Vec::new();
        for r in raw {
            let c = canonical_resource(r)
                .ok_or_else(|| OAuthError::invalid_target(format!("{r} is not an absolute https URI without fragment")))?;
            let known = c == self.admin_resource()
                || crate::mcp::is_mcp_resource(&self.config, &c)
                || self.store.resource_registered(&c).await?
                || {
                    let host = url::Url::parse(&c)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                        .unwrap_or_default();
                    self.store.get_proxy(&host).await?.is_some()
                };
            if !known {
                return Err(OAuthError::invalid_target(format!("{c} is not a registered resource")));
            }
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Handles `GET /authorize`.
    pub async fn authorize(&self, query: &[u8]) -> Response {
        let p = Params::parse(query);
        // Before the redirect URI is verified, errors are shown here, never redirected.
        let client_id = match p.require("client_id") {
            Ok(c) => c.to_string(),
            Err(e) => return e.into_response(),
        };
        let client = match self.client(&client_id).await {
            Ok(c) => c,
            Err(e) => return OAuthError::invalid_request(format!("unknown client: {}", e.description)).into_response(),
        };
        let redirect_uri = match p.get("redirect_uri") {
            Ok(Some(r)) if client.redirect_uris.iter().any(|reg| super::clients::redirect_matches(reg, r)) => r.to_string(),
            Ok(Some(_)) => return OAuthError::invalid_request("redirect_uri does not match a registered redirect URI").into_response(),
            Ok(None) if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            Ok(None) => return OAuthError::invalid_request("redirect_uri is required").into_response(),
            Err(e) => return e.into_response(),
        };
        let state = p.get("state").ok().flatten().map(String::from);
        let given = matches!(p.get("redirect_uri"), Ok(Some(_)));
        match self.start_login(&p, &client, &redirect_uri, given, state.clone()).await {
            Ok(r) => r,
            Err(e) => redirect_error(&redirect_uri, state.as_deref(), self.issuer(), &e),
        }
    }

    async fn start_login(
        &self,
        p: &Params,
        client: &super::model::Client,
        redirect_uri: &str,
        redirect_uri_given: bool,
        state: Option<String>,
    ) -> OAuthResult<Response> {
        if p.get("response_type")? != Some("code") {
            return Err(OAuthError {
                code: "unsupported_response_type",
                ..OAuthError::invalid_request("only response_type=code is supported")
            });
        }
        if !client.grant_types.iter().any(|g| g == "authorization_code") {
            return Err(OAuthError::unauthorized_client(
                "this client may not use the authorization code grant",
            ));
        }
        let challenge = p
            .get("code_challenge")?
            .ok_or_else(|| OAuthError::invalid_request("PKCE is required: code_challenge with method S256"))?;
        if p.get("code_challenge_method")? != Some("S256") {
            return Err(OAuthError::invalid_request("PKCE code_challenge_method must be S256"));
        }
        if challenge.len() != 43 || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(OAuthError::invalid_request(
                "code_challenge must be a base64url SHA-256 (43 characters)",
            ));
        }
        let scope = client_scope(client, p.scopes()?)?;
        let resources = self.check_resources(&p.all("resource")).await?;
        // A client's proxy_hostname only narrows (that proxy's lists apply on top of the server's).
        let proxy_hostname = p.get("proxy_hostname")?.map(str::to_ascii_lowercase);
        let session = LoginSession {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            state,
            redirect_uri_given,
            code_challenge: challenge.to_string(),
            scope,
            resources,
            proxy_hostname,
            server_chose_proxy: false,
            browser: String::new(),
            upstream_verifier: random_token(32),
            nonce: random_token(16),
            device_user_code: None,
        };
        self.begin_upstream(session, true).await
    }

    /// Stores the session and redirects to the upstream login. With
    /// `bind_browser` (the browser is on the issuer's origin now), a
    /// short-lived cookie binds the login to this browser: `/callback`
    /// refuses a login that comes back to a browser without it.
    pub async fn begin_upstream(&self, mut session: LoginSession, bind_browser: bool) -> OAuthResult<Response> {
        let proxy = self.session_proxy(&session).await?;
        let sid = random_token(24);
        let url = self.upstream_authorize_url(&sid, &session, proxy.as_ref()).await?;
        let ttl = self.config.oauth.session_timeout.as_secs();
        let cookie = if bind_browser {
            let nonce = random_token(24);
            session.browser = super::tokens::digest(&nonce);
            Some(browser_cookie(&self.as_cookie_name(&sid), &nonce, self.issuer_is_https(), ttl))
        } else {
            None
        };
        self.store.park(Parked::Login(&sid), &session, ttl).await?;
        let mut r = see_other(&url)?;
        if let Some(c) = cookie {
            r.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_str(&c).map_err(|e| OAuthError::server(e.to_string()))?,
            );
        }
        Ok(r)
    }

    /// True when the issuer is served over https (then cookies are `__Host-`).
    pub fn issuer_is_https(&self) -> bool {
        self.issuer().starts_with("https://")
    }

    /// Name of the browser-binding cookie of login `sid` at the issuer.
    pub fn as_cookie_name(&self, sid: &str) -> String {
        let prefix = if self.issuer_is_https() { "__Host-" } else { "" };
        format!("{prefix}portcullis_as_{}", sid.get(..12).unwrap_or(sid))
    }

    async fn session_proxy(&self, s: &LoginSession) -> OAuthResult<Option<Proxy>> {
        match &s.proxy_hostname {
            Some(h) => Ok(self.store.get_proxy(h).await?),
            None => Ok(None),
        }
    }

    /// Handles `GET /callback` from the upstream provider: only in the
    /// browser that started the login (its binding cookie); then the
    /// consent or device approval page when one is due, else the code.
    pub async fn callback(&self, headers: &HeaderMap, query: &[u8]) -> Response {
        let p = Params::parse(query);
        let sid = match p.require("state") {
            Ok(s) => s.to_string(),
            Err(e) => return e.into_response(),
        };
        let session: LoginSession = match self.store.unpark(Parked::Login(&sid)).await {
            Ok(Some(s)) => s,
            Ok(None) => return OAuthError::invalid_request("unknown or expired login session").into_response(),
            Err(e) => return OAuthError::from(e).into_response(),
        };
        let cookie_name = self.as_cookie_name(&sid);
        if !session.browser.is_empty() {
            let presented = cookie_value(headers, &cookie_name).map(super::tokens::digest);
            if !presented.is_some_and(|d| crate::secrets::constant_time_eq(&d, &session.browser)) {
                tracing::warn!(client = %session.client_id, "login callback without the browser-binding cookie refused");
                return not_this_browser();
            }
        }
        let outcome = self.finish_login(&p, &session).await;
        let user = outcome.as_ref().ok().map(|(u, _)| u.username.clone());
        if let Some(user_code) = &session.device_user_code {
            return match outcome {
                Ok((user, granted)) => {
                    self.device_decision_page(user_code, user, granted, &session.browser, &cookie_name)
                        .await
                }
                Err(e) => self.device_login_failed(user_code, e).await,
            };
        }
        let mut done = match outcome {
            Ok((user, granted)) => match self.needs_consent(&session, &user, &granted).await {
                Ok(false) => self.code_redirect(&session, user, granted).await,
                // The consent form still needs the binding cookie.
                Ok(true) => return self.consent_page(session, user, granted, &cookie_name).await,
                Err(e) => redirect_error(&session.redirect_uri, session.state.as_deref(), self.issuer(), &e),
            },
            Err(e) => redirect_error(&session.redirect_uri, session.state.as_deref(), self.issuer(), &e),
        };
        if !session.browser.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&browser_cookie(&cookie_name, "", self.issuer_is_https(), 0)) {
                done.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        crate::reqlog::events::callback(headers, &session.client_id, user.as_deref(), &done);
        done
    }

    /// Issues the code and sends the browser back to the client (RFC 9207 `iss` included).
    pub async fn code_redirect(&self, session: &LoginSession, user: User, granted: Vec<String>) -> Response {
        match self.issue_code(session, user, granted).await {
            Ok(code) => {
                let mut u = match url::Url::parse(&session.redirect_uri) {
                    Ok(u) => u,
                    Err(e) => return OAuthError::server(e.to_string()).into_response(),
                };
                {
                    let mut q = u.query_pairs_mut();
                    q.append_pair("code", &code);
                    if let Some(s) = &session.state {
                        q.append_pair("state", s);
                    }
                    q.append_pair("iss", self.issuer());
                }
                Redirect::to(u.as_str()).into_response()
            }
            Err(e) => redirect_error(&session.redirect_uri, session.state.as_deref(), self.issuer(), &e),
        }
    }

    /// Upstream exchange, allowlist and scope assignment.
    pub async fn finish_login(&self, p: &Params, session: &LoginSession) -> OAuthResult<(User, Vec<String>)> {
        if let Some(err) = p.get("error")? {
            return Err(OAuthError::access_denied(format!("the identity provider answered {err}")));
        }
        let code = p.require("code")?;
        let proxy = self.session_proxy(session).await?;
        let user = self.upstream_user(code, session, proxy.as_ref()).await?;
        scopes::may_log_in(self.config.oauth.allowed_users.as_deref(), proxy.as_ref(), &user).map_err(OAuthError::access_denied)?;
        let entitled = scopes::entitled(&self.config.oauth, proxy.as_ref(), session.server_chose_proxy, &user);
        let granted = scopes::grant(&session.scope, &entitled);
        if session.resources.contains(&self.admin_resource()) && !scopes::admin_api_scope(&granted) {
            return Err(OAuthError::access_denied(format!(
                "user {} is not entitled to the admin API (needs the admin or user scope from the server's configuration)",
                user.username
            )));
        }
        tracing::info!(user = %user.username, client = %session.client_id, scopes = ?granted, "login succeeded");
        Ok((user, granted))
    }

    async fn issue_code(&self, s: &LoginSession, user: User, scope: Vec<String>) -> OAuthResult<String> {
        let code = random_token(32);
        let grant = CodeGrant {
            client_id: s.client_id.clone(),
            redirect_uri: s.redirect_uri.clone(),
            redirect_uri_given: s.redirect_uri_given,
            code_challenge: s.code_challenge.clone(),
            scope,
            resources: s.resources.clone(),
            user,
            family: random_token(16),
            proxy_hostname: s.proxy_hostname.clone(),
            server_chose_proxy: s.server_chose_proxy,
        };
        self.store.put_code(&super::tokens::digest(&code), &grant, CODE_TTL_SECS).await?;
        Ok(code)
    }

    /// Redeems a code at the token endpoint (single use; a replay revokes what it minted).
    pub async fn redeem_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        resources: Vec<String>,
        refreshable: bool,
    ) -> OAuthResult<serde_json::Value> {
        let h = super::tokens::digest(code);
        let g: CodeGrant = match self
            .store
            .redeem_code(&h, |g: &CodeGrant| g.family.clone(), CODE_TTL_SECS * 2)
            .await?
        {
            Redemption::Fresh(g) => g,
            Redemption::Replayed(family) => {
                self.revoke_family(&family).await?;
                return Err(OAuthError::invalid_grant(
                    "authorization code was already used; the tokens issued from it are revoked",
                ));
            }
            Redemption::Unknown => return Err(OAuthError::invalid_grant("authorization code is invalid or expired")),
        };
        if g.client_id != client_id {
            return Err(OAuthError::invalid_grant("authorization code was issued to another client"));
        }
        let redirect_ok = match redirect_uri {
            Some(r) => r == g.redirect_uri,
            None => !g.redirect_uri_given,
        };
        if !redirect_ok {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
        }
        let verifier = verifier.ok_or_else(|| OAuthError::invalid_grant("code_verifier is required"))?;
        if !(43..=128).contains(&verifier.len()) || !crate::secrets::constant_time_eq(&s256(verifier), &g.code_challenge) {
            return Err(OAuthError::invalid_grant("PKCE verification failed"));
        }
        let aud = if resources.is_empty() {
            g.resources.clone()
        } else {
            let asked = self.check_resources(&resources).await?;
            if !asked.iter().all(|r| g.resources.contains(r)) {
                return Err(OAuthError::invalid_target(
                    "the token request names a resource that was not authorized",
                ));
            }
            asked
        };
        let base = refreshable.then(|| GrantBase {
            scope: g.scope.clone(),
            resources: g.resources.clone(),
            proxy_hostname: g.proxy_hostname.clone(),
            server_chose_proxy: g.server_chose_proxy,
        });
        self.mint(client_id, &g.user, &g.scope, &aud, &g.family, base).await
    }
}

/// The scopes a client asks for, within its registered `scope` (none asked
/// for: all it registered, or everything when it registered none).
pub fn client_scope(client: &super::model::Client, asked: Vec<String>) -> OAuthResult<Vec<String>> {
    if let Some(bad) = asked.iter().find(|s| !super::SUPPORTED_SCOPES.contains(&s.as_str())) {
        return Err(OAuthError::invalid_scope(format!("unknown scope {bad}")));
    }
    if let Some(bad) = asked.iter().find(|s| !super::tokens::client_may_ask(client, s)) {
        return Err(OAuthError::invalid_scope(format!(
            "this client is not registered for the scope {bad}"
        )));
    }
    match (&client.scope, asked.is_empty()) {
        (Some(reg), true) => Ok(reg.split_whitespace().map(String::from).collect()),
        _ => Ok(asked),
    }
}

/// The page for a login callback that reached a browser which did not start it.
fn not_this_browser() -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "Sign-in not started in this browser",
        "<p>This sign-in link was not started in this browser, or it expired. For your safety it was not completed: \
         someone may have sent you a link from their own sign-in.</p><p>Go back to the application and sign in again.</p>",
    )
}
