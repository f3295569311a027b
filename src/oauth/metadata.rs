//! Authorization server metadata (RFC 8414), the OIDC discovery document and JWKS.

use serde_json::{json, Value};

use super::{OAuth, SUPPORTED_SCOPES};

impl OAuth {
    /// `/.well-known/oauth-authorization-server`.
    pub fn server_metadata(&self) -> Value {
        let i = self.issuer();
        json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "registration_endpoint": format!("{i}/register"),
            "revocation_endpoint": format!("{i}/revoke"),
            "introspection_endpoint": format!("{i}/introspect"),
            "device_authorization_endpoint": format!("{i}/device/code"),
            "jwks_uri": format!("{i}/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": SUPPORTED_SCOPES,
            "resource_indicators_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": true,
            "service_documentation": format!("{i}/.well-known/oauth-authorization-server"),
        })
    }

    /// `/.well-known/openid-configuration`: the same endpoints in OIDC discovery form.
    pub fn openid_configuration(&self) -> Value {
        let mut m = self.server_metadata();
        m["subject_types_supported"] = json!(["public"]);
        m["id_token_signing_alg_values_supported"] = json!(["RS256"]);
        m["claims_supported"] = json!(["sub", "iss", "aud", "exp", "iat", "preferred_username", "email", "groups"]);
        m
    }
}
