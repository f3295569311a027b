//! Authorization server metadata (RFC 8414) and the OIDC discovery document.

use serde::Serialize;
use utoipa::ToSchema;

use super::token::DEVICE_GRANT;
use super::{OAuth, SUPPORTED_SCOPES};

/// `/.well-known/oauth-authorization-server` (RFC 8414 section 2): where
/// each endpoint is and what it supports, so clients configure themselves.
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    /// The issuer identifier; every endpoint URL starts with it.
    pub issuer: String,
    /// Where the code flow starts.
    pub authorization_endpoint: String,
    /// Where codes, refresh and device codes become tokens.
    pub token_endpoint: String,
    /// Dynamic client registration (RFC 7591).
    pub registration_endpoint: String,
    /// Token revocation (RFC 7009).
    pub revocation_endpoint: String,
    /// Token introspection (RFC 7662).
    pub introspection_endpoint: String,
    /// Device authorization (RFC 8628).
    pub device_authorization_endpoint: String,
    /// The signing keys (RFC 7517).
    pub jwks_uri: String,
    /// `code` only.
    pub response_types_supported: Vec<String>,
    /// `query` only.
    pub response_modes_supported: Vec<String>,
    /// Authorization code, refresh token, device code.
    pub grant_types_supported: Vec<String>,
    /// `S256` only: PKCE is required.
    pub code_challenge_methods_supported: Vec<String>,
    /// How clients authenticate at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// How clients authenticate at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// How callers authenticate at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Every scope this server knows.
    pub scopes_supported: Vec<String>,
    /// Resource indicators (RFC 8707) are honoured.
    pub resource_indicators_supported: bool,
    /// Authorization answers carry `iss` (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
    /// A client id may be the URL of its metadata document.
    pub client_id_metadata_document_supported: bool,
    /// Where to read about this server.
    pub service_documentation: String,
}

/// `/.well-known/openid-configuration`: the RFC 8414 metadata plus the
/// fields OpenID Connect discovery requires.
#[derive(Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    /// The authorization server metadata.
    #[serde(flatten)]
    pub metadata: ServerMetadata,
    /// `public`.
    pub subject_types_supported: Vec<String>,
    /// `RS256`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// The claims tokens carry.
    pub claims_supported: Vec<String>,
}

/// Owned strings from a list of literals.
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

impl OAuth {
    /// `/.well-known/oauth-authorization-server`.
    pub fn server_metadata(&self) -> ServerMetadata {
        let i = self.issuer();
        ServerMetadata {
            issuer: i.to_string(),
            authorization_endpoint: format!("{i}/authorize"),
            token_endpoint: format!("{i}/token"),
            registration_endpoint: format!("{i}/register"),
            revocation_endpoint: format!("{i}/revoke"),
            introspection_endpoint: format!("{i}/introspect"),
            device_authorization_endpoint: format!("{i}/device/code"),
            jwks_uri: format!("{i}/jwks"),
            response_types_supported: strings(&["code"]),
            response_modes_supported: strings(&["query"]),
            grant_types_supported: strings(&["authorization_code", "refresh_token", DEVICE_GRANT]),
            code_challenge_methods_supported: strings(&["S256"]),
            token_endpoint_auth_methods_supported: strings(&["none", "client_secret_basic", "client_secret_post"]),
            revocation_endpoint_auth_methods_supported: strings(&["none", "client_secret_basic", "client_secret_post"]),
            introspection_endpoint_auth_methods_supported: strings(&["client_secret_basic", "client_secret_post"]),
            scopes_supported: strings(&SUPPORTED_SCOPES),
            resource_indicators_supported: true,
            authorization_response_iss_parameter_supported: true,
            client_id_metadata_document_supported: true,
            service_documentation: format!("{i}/.well-known/oauth-authorization-server"),
        }
    }

    /// `/.well-known/openid-configuration`: the same endpoints in OIDC discovery form.
    pub fn openid_configuration(&self) -> OpenIdConfiguration {
        OpenIdConfiguration {
            metadata: self.server_metadata(),
            subject_types_supported: strings(&["public"]),
            id_token_signing_alg_values_supported: strings(&["RS256"]),
            claims_supported: strings(&["sub", "iss", "aud", "exp", "iat", "preferred_username", "email", "groups"]),
        }
    }
}
