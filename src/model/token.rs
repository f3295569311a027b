//! API tokens: random bearer secrets for automation, stored by SHA-256 hash
//! (for authentication) and by name (for management), value encrypted at rest.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a token may do.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Sees and changes everything, manages tokens.
    Admin,
    /// Sees and changes only what it owns.
    #[default]
    User,
}

/// A token as stored: never the plain value.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Token {
    /// Unique name.
    pub name: String,
    /// `sha256:<hex>` of the value.
    pub hash: String,
    /// The value, encrypted with the instance secret key (for `reveal`).
    pub token_encrypted: String,
    /// E-mail used for ACME accounts of certificates this token creates.
    #[serde(default)]
    pub cert_email: Option<String>,
    /// Admin or user.
    #[serde(default)]
    pub scope: TokenScope,
    /// Who created it.
    #[serde(default)]
    pub created_by: String,
    /// Creation time.
    pub created_at: String,
}

/// What the API shows of a token; `token` is set only at creation and by reveal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct TokenView {
    /// Unique name.
    pub name: String,
    /// `sha256:<hex>` of the value.
    pub hash: String,
    /// Certificate e-mail.
    pub cert_email: Option<String>,
    /// Admin or user.
    pub scope: TokenScope,
    /// Who created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: String,
    /// The secret value, only where the API says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Token {
    /// The public view, without the value.
    pub fn view(&self) -> TokenView {
        TokenView {
            name: self.name.clone(),
            hash: self.hash.clone(),
            cert_email: self.cert_email.clone(),
            scope: self.scope,
            created_by: self.created_by.clone(),
            created_at: self.created_at.clone(),
            token: None,
        }
    }
}
