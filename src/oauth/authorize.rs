//! `/authorize` and `/callback`: the code flow with PKCE S256 and resource
//! indicators, the login at the upstream provider, allowlists, and RFC 9207
//! `iss` in every authorization response.

use axum::response::{IntoResponse, Redirect, Response};

use super::model::{CodeGrant, LoginSession, User};
use super::params::Params;
use super::upstream::s256;
use super::{canonical_resource, random_token, scopes, OAuth, OAuthError, OAuthResult};
use crate::model::Proxy;

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
    /// Checks requested resources: canonical, known (registry or a proxy's
    /// host), at most `MCP_MAX_RESOURCES_PER_TOKEN`.
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
            let known = self.store.kv_get(&format!("resource:{c}")).await?.is_some() || {
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
            Ok(location) => Redirect::to(&location).into_response(),
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
    ) -> OAuthResult<String> {
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
        let scope = p.scopes()?;
        if let Some(bad) = scope.iter().find(|s| !super::SUPPORTED_SCOPES.contains(&s.as_str())) {
            return Err(OAuthError::invalid_scope(format!("unknown scope {bad}")));
        }
        let resources = self.check_resources(&p.all("resource")).await?;
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
            upstream_verifier: random_token(32),
            nonce: random_token(16),
            device_user_code: None,
        };
        self.begin_upstream(session).await
    }

    /// Stores the session and returns the upstream login URL.
    pub async fn begin_upstream(&self, session: LoginSession) -> OAuthResult<String> {
        let proxy = self.session_proxy(&session).await?;
        let sid = random_token(24);
        let url = self.upstream_authorize_url(&sid, &session, proxy.as_ref()).await?;
        let json = serde_json::to_string(&session).map_err(|e| OAuthError::server(e.to_string()))?;
        self.store
            .kv_set(
                &format!("oauth:state:{sid}"),
                &json,
                Some(self.config.oauth.session_timeout.as_secs()),
            )
            .await?;
        Ok(url)
    }

    async fn session_proxy(&self, s: &LoginSession) -> OAuthResult<Option<Proxy>> {
        match &s.proxy_hostname {
            Some(h) => Ok(self.store.get_proxy(h).await?),
            None => Ok(None),
        }
    }

    /// Handles `GET /callback` from the upstream provider.
    pub async fn callback(&self, query: &[u8]) -> Response {
        let p = Params::parse(query);
        let sid = match p.require("state") {
            Ok(s) => s.to_string(),
            Err(e) => return e.into_response(),
        };
        let session: LoginSession = match self.store.kv_take(&format!("oauth:state:{sid}")).await {
            Ok(Some(raw)) => match serde_json::from_str(&raw) {
                Ok(s) => s,
                Err(e) => return OAuthError::server(e.to_string()).into_response(),
            },
            Ok(None) => return OAuthError::invalid_request("unknown or expired login session").into_response(),
            Err(e) => return OAuthError::from(e).into_response(),
        };
        let outcome = self.finish_login(&p, &session).await;
        if let Some(user_code) = &session.device_user_code {
            return self.device_login_done(user_code, outcome).await;
        }
        match outcome {
            Ok((user, granted)) => match self.issue_code(&session, user, granted).await {
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
            },
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
        let entitled = scopes::entitled(&self.config.oauth, proxy.as_ref(), &user);
        let granted = scopes::grant(&session.scope, &entitled);
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
        };
        let json = serde_json::to_string(&grant).map_err(|e| OAuthError::server(e.to_string()))?;
        self.store
            .kv_set(&format!("oauth:code:{}", super::tokens::digest(&code)), &json, Some(CODE_TTL_SECS))
            .await?;
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
    ) -> OAuthResult<serde_json::Value> {
        let h = super::tokens::digest(code);
        let Some(raw) = self.store.kv_take(&format!("oauth:code:{h}")).await? else {
            if let Some(family) = self.store.kv_get(&format!("oauth:code_used:{h}")).await? {
                self.revoke_family(&family).await?;
                return Err(OAuthError::invalid_grant(
                    "authorization code was already used; the tokens issued from it are revoked",
                ));
            }
            return Err(OAuthError::invalid_grant("authorization code is invalid or expired"));
        };
        let g: CodeGrant = serde_json::from_str(&raw).map_err(|e| OAuthError::server(e.to_string()))?;
        self.store
            .kv_set(&format!("oauth:code_used:{h}"), &g.family, Some(CODE_TTL_SECS * 2))
            .await?;
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
        self.mint(client_id, &g.user, &g.scope, &aud, &g.family).await
    }
}
