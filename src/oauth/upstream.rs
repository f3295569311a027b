//! Login upstreams: GitHub (URLs configurable for Enterprise; user, e-mail,
//! orgs and teams from its API) and any OpenID Connect provider (discovery,
//! code flow with PKCE, ID token verified against its JWKS).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::{LoginSession, User};
use super::{OAuth, OAuthError, OAuthResult};
use crate::config::LoginProvider;
use crate::model::Proxy;

/// S256 PKCE challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn upstream_err(what: &str, e: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(error = %e, "upstream login: {what}");
    OAuthError::access_denied(format!("login with the identity provider failed: {what}"))
}

impl OAuth {
    fn callback_uri(&self) -> String {
        format!("{}/callback", self.issuer())
    }

    /// GitHub client id and secret: the proxy's own app, else the global one.
    fn github_app(&self, proxy: Option<&Proxy>) -> OAuthResult<(String, String)> {
        if let Some(p) = proxy {
            if let (Some(id), Some(sealed)) = (&p.github_client_id, &p.github_client_secret) {
                let secret = self
                    .sealer
                    .open(sealed)
                    .map_err(|e| OAuthError::server(format!("proxy GitHub secret: {e}")))?;
                return Ok((id.clone(), secret));
            }
        }
        let g = &self.config.oauth.github;
        match (&g.client_id, &g.client_secret) {
            (Some(i), Some(s)) => Ok((i.clone(), s.clone())),
            _ => Err(OAuthError::server("GitHub login needs GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET")),
        }
    }

    async fn oidc_discovery(&self) -> OAuthResult<Value> {
        let issuer = self
            .config
            .oauth
            .oidc
            .issuer
            .clone()
            .ok_or_else(|| OAuthError::server("OIDC login needs OIDC_ISSUER"))?;
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: Value = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| upstream_err("discovery", e))?
            .json()
            .await
            .map_err(|e| upstream_err("discovery", e))?;
        if doc["issuer"].as_str().map(|s| s.trim_end_matches('/')) != Some(issuer.as_str()) {
            return Err(upstream_err("discovery", "issuer mismatch"));
        }
        Ok(doc)
    }

    /// Where to send the browser for `session` (identified by `sid`).
    pub async fn upstream_authorize_url(&self, sid: &str, session: &LoginSession, proxy: Option<&Proxy>) -> OAuthResult<String> {
        match self.config.oauth.login_provider {
            LoginProvider::Github => {
                let (client_id, _) = self.github_app(proxy)?;
                let mut u = url::Url::parse(&self.config.oauth.github.authorize_url).map_err(|e| OAuthError::server(e.to_string()))?;
                u.query_pairs_mut()
                    .append_pair("client_id", &client_id)
                    .append_pair("redirect_uri", &self.callback_uri())
                    .append_pair("scope", "read:user user:email read:org")
                    .append_pair("state", sid);
                Ok(u.to_string())
            }
            LoginProvider::Oidc => {
                let doc = self.oidc_discovery().await?;
                let ep = doc["authorization_endpoint"]
                    .as_str()
                    .ok_or_else(|| upstream_err("discovery", "no authorization_endpoint"))?;
                let o = &self.config.oauth.oidc;
                let mut u = url::Url::parse(ep).map_err(|e| upstream_err("discovery", e))?;
                u.query_pairs_mut()
                    .append_pair("response_type", "code")
                    .append_pair("client_id", o.client_id.as_deref().unwrap_or(""))
                    .append_pair("redirect_uri", &self.callback_uri())
                    .append_pair("scope", &o.scopes)
                    .append_pair("state", sid)
                    .append_pair("nonce", &session.nonce)
                    .append_pair("code_challenge", &s256(&session.upstream_verifier))
                    .append_pair("code_challenge_method", "S256");
                Ok(u.to_string())
            }
            LoginProvider::None => Err(OAuthError::no_login_provider()),
        }
    }

    /// Exchanges the upstream code and reads who logged in.
    pub async fn upstream_user(&self, code: &str, session: &LoginSession, proxy: Option<&Proxy>) -> OAuthResult<User> {
        match self.config.oauth.login_provider {
            LoginProvider::Github => self.github_user(code, proxy).await,
            LoginProvider::Oidc => self.oidc_user(code, session).await,
            LoginProvider::None => Err(OAuthError::no_login_provider()),
        }
    }

    async fn github_user(&self, code: &str, proxy: Option<&Proxy>) -> OAuthResult<User> {
        let (client_id, secret) = self.github_app(proxy)?;
        let g = &self.config.oauth.github;
        let tok: Value = self
            .http
            .post(&g.token_url)
            .header("Accept", "application/json")
            .form(&[
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("code", code),
                ("redirect_uri", &self.callback_uri()),
            ])
            .send()
            .await
            .map_err(|e| upstream_err("token exchange", e))?
            .json()
            .await
            .map_err(|e| upstream_err("token exchange", e))?;
        let at = tok["access_token"]
            .as_str()
            .ok_or_else(|| upstream_err("token exchange", tok["error"].as_str().unwrap_or("no access_token")))?;
        let get = |path: &str| {
            self.http
                .get(format!("{}{path}", g.api_url))
                .bearer_auth(at)
                .header("Accept", "application/vnd.github+json")
                .header("User-Agent", "portcullis")
                .send()
        };
        let user: Value = get("/user")
            .await
            .map_err(|e| upstream_err("user", e))?
            .json()
            .await
            .map_err(|e| upstream_err("user", e))?;
        let login = user["login"].as_str().ok_or_else(|| upstream_err("user", "no login"))?.to_string();
        let id = user["id"].as_i64().map_or_else(|| login.clone(), |i| i.to_string());
        // Only an address GitHub lists as verified counts (the profile's public
        // `email` is not necessarily one): the primary verified one, else none.
        let mut email = None;
        if let Ok(r) = get("/user/emails").await {
            if let Ok(Value::Array(list)) = r.json::<Value>().await {
                email = list
                    .iter()
                    .find(|e| e["primary"].as_bool() == Some(true) && e["verified"].as_bool() == Some(true))
                    .and_then(|e| e["email"].as_str().map(String::from));
            }
        }
        let mut groups = Vec::new();
        if let Ok(r) = get("/user/orgs").await {
            if let Ok(Value::Array(orgs)) = r.json::<Value>().await {
                groups.extend(orgs.iter().filter_map(|o| o["login"].as_str().map(String::from)));
            }
        }
        if let Ok(r) = get("/user/teams").await {
            if let Ok(Value::Array(teams)) = r.json::<Value>().await {
                groups.extend(
                    teams
                        .iter()
                        .filter_map(|t| Some(format!("{}/{}", t["organization"]["login"].as_str()?, t["slug"].as_str()?))),
                );
            }
        }
        Ok(User {
            id: format!("github:{id}"),
            username: login,
            email,
            groups,
        })
    }

    async fn oidc_user(&self, code: &str, session: &LoginSession) -> OAuthResult<User> {
        let doc = self.oidc_discovery().await?;
        let o = &self.config.oauth.oidc;
        let token_ep = doc["token_endpoint"]
            .as_str()
            .ok_or_else(|| upstream_err("discovery", "no token_endpoint"))?;
        let client_id = o.client_id.clone().unwrap_or_default();
        let mut req = self.http.post(token_ep).header("Accept", "application/json").form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.callback_uri()),
            ("code_verifier", &session.upstream_verifier),
            ("client_id", &client_id),
        ]);
        if let Some(secret) = &o.client_secret {
            req = req.basic_auth(&client_id, Some(secret));
        }
        let resp = req.send().await.map_err(|e| upstream_err("token exchange", e))?;
        let tok: Value = resp.json().await.map_err(|e| upstream_err("token exchange", e))?;
        let id_token = tok["id_token"]
            .as_str()
            .ok_or_else(|| upstream_err("token exchange", tok["error"].as_str().unwrap_or("no id_token")))?;
        let header = jsonwebtoken::decode_header(id_token).map_err(|e| upstream_err("id token", e))?;
        let jwks_uri = doc["jwks_uri"].as_str().ok_or_else(|| upstream_err("discovery", "no jwks_uri"))?;
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(jwks_uri)
            .send()
            .await
            .map_err(|e| upstream_err("jwks", e))?
            .json()
            .await
            .map_err(|e| upstream_err("jwks", e))?;
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None => jwks.keys.first(),
        }
        .ok_or_else(|| upstream_err("id token", "signing key not in the provider's JWKS"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| upstream_err("id token", e))?;
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&[client_id.as_str()]);
        v.set_issuer(&[doc["issuer"].as_str().unwrap_or_default()]);
        v.leeway = 60;
        let claims = jsonwebtoken::decode::<Value>(id_token, &key, &v)
            .map_err(|e| upstream_err("id token", e))?
            .claims;
        if claims["nonce"].as_str() != Some(session.nonce.as_str()) {
            return Err(upstream_err("id token", "nonce mismatch"));
        }
        let sub = claims["sub"]
            .as_str()
            .ok_or_else(|| upstream_err("id token", "no sub"))?
            .to_string();
        let mut claims = claims;
        // Providers return scope claims (email, profile) from UserInfo rather than the ID token.
        if let (Some(ep), Some(at)) = (doc["userinfo_endpoint"].as_str(), tok["access_token"].as_str()) {
            match self.http.get(ep).bearer_auth(at).header("Accept", "application/json").send().await {
                Ok(r) if r.status().is_success() => {
                    if let Ok(Value::Object(info)) = r.json::<Value>().await {
                        if info.get("sub").and_then(Value::as_str) == Some(sub.as_str()) {
                            for (k, v) in info {
                                if claims.get(&k).is_none_or(Value::is_null) {
                                    claims[k.as_str()] = v;
                                }
                            }
                        } else {
                            tracing::warn!("UserInfo subject differs from the ID token's; ignoring it");
                        }
                    }
                }
                Ok(r) => tracing::warn!(status = %r.status(), "UserInfo request refused"),
                Err(e) => tracing::warn!(error = %e, "UserInfo request failed"),
            }
        }
        let username = claims[o.username_claim.as_str()].as_str().map_or_else(|| sub.clone(), String::from);
        let groups = claims["groups"]
            .as_array()
            .map(|g| g.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        Ok(User {
            id: format!("oidc:{sub}"),
            username,
            // An e-mail counts only when the provider says it is verified.
            email: claims["email"]
                .as_str()
                .filter(|_| claims["email_verified"].as_bool() == Some(true) || claims["email_verified"].as_str() == Some("true"))
                .map(String::from),
            groups,
        })
    }
}
