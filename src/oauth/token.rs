//! `POST /token`: authorization_code, refresh_token and device_code grants.
//! Every response carries `Cache-Control: no-store`.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::params::{client_credentials, Params};
use super::{OAuth, OAuthError, OAuthResult};

/// Device code grant type (RFC 8628).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A token endpoint success response.
pub fn token_response(body: serde_json::Value) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

impl OAuth {
    /// Handles `POST /token`.
    pub async fn token(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let result = self.token_inner(headers, body).await;
        crate::reqlog::events::token(headers, body, result.as_ref());
        match result {
            Ok(v) => token_response(v),
            Err(e) => e.into_response(),
        }
    }

    async fn token_inner(&self, headers: &HeaderMap, body: &[u8]) -> OAuthResult<serde_json::Value> {
        let p = Params::parse(body);
        let grant = p.require("grant_type")?.to_string();
        let (client_id, secret) = client_credentials(headers, &p)?;
        let client = self.authenticate_client(&client_id, secret.as_deref()).await?;
        if !client.grant_types.contains(&grant) {
            return Err(match grant.as_str() {
                "authorization_code" | "refresh_token" | DEVICE_GRANT => {
                    OAuthError::unauthorized_client(format!("this client may not use the {grant} grant"))
                }
                _ => OAuthError::unsupported_grant_type(format!("grant type {grant} is not supported")),
            });
        }
        // A refresh token only for a client registered for the refresh grant.
        let refreshable = client.grant_types.iter().any(|g| g == "refresh_token");
        match grant.as_str() {
            "authorization_code" => {
                self.redeem_code(
                    &client_id,
                    p.require("code")?,
                    p.get("redirect_uri")?,
                    p.get("code_verifier")?,
                    p.all("resource"),
                    refreshable,
                )
                .await
            }
            "refresh_token" => {
                let scope = p.get("scope")?.map(|s| s.split_whitespace().map(String::from).collect());
                let resources = self.check_resources(&p.all("resource")).await?;
                self.refresh(&client, p.require("refresh_token")?, scope, resources).await
            }
            DEVICE_GRANT => self.device_token(&client_id, p.require("device_code")?, refreshable).await,
            other => Err(OAuthError::unsupported_grant_type(format!("grant type {other} is not supported"))),
        }
    }
}
