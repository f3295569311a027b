//! The claims of our access tokens: minted by the authorization server
//! (`oauth::tokens`) and read by the data plane (`auth`), which must not link
//! the authorization server for them.

use serde::{Deserialize, Serialize};

/// Claims of our access tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject (`provider:id`).
    pub sub: String,
    /// Audience: the granted resources.
    pub aud: Vec<String>,
    /// Authorized party: the client.
    pub azp: String,
    /// Same as azp (RFC 9068).
    pub client_id: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// User name.
    pub preferred_username: String,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Leeway for exp/nbf checks, the same for the issuer and the data plane.
pub const LEEWAY_SECS: u64 = 30;
