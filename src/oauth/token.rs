//! `POST /token`: authorization_code, refresh_token and device_code grants.
//! Every response carries `Cache-Control: no-store`.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::params::{client_credentials, Params};
use super::{OAuth, OAuthError, OAuthResult};

/// Device code grant type (RFC 8628).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The form `POST /token` (and `/device/token`) reads, per grant type
/// (RFC 6749 section 4.1.3 and 6, RFC 8628 section 3.4, RFC 8707). The
/// endpoint parses it by hand (`Params`: repeated `resource` kept, other
/// repeated parameters refused); this type is its schema.
#[derive(ToSchema)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    pub grant_type: String,
    /// The authorization code (`authorization_code` grant).
    pub code: Option<String>,
    /// The redirect URI the code was asked for with (`authorization_code`).
    pub redirect_uri: Option<String>,
    /// The PKCE verifier of the code's S256 challenge (`authorization_code`).
    pub code_verifier: Option<String>,
    /// The refresh token (`refresh_token` grant).
    pub refresh_token: Option<String>,
    /// The device code (device grant).
    pub device_code: Option<String>,
    /// The client, unless it authenticates with HTTP Basic.
    pub client_id: Option<String>,
    /// The client's secret (`client_secret_post`).
    pub client_secret: Option<String>,
    /// Resource indicators (RFC 8707), repeatable.
    pub resource: Option<Vec<String>>,
    /// A narrower scope, space separated (`refresh_token` grant).
    pub scope: Option<String>,
}

/// A token endpoint success answer (RFC 6749 section 5.1).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access token, a JWT signed with a key from `/jwks`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The granted scope, space separated.
    pub scope: String,
    /// The token's audiences when they name resources (RFC 8707).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Vec<String>>,
    /// A refresh token, for clients registered for the refresh grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// A token endpoint success response.
pub fn token_response(body: impl Serialize) -> Response {
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
