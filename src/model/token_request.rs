//! What callers send to create and change API tokens, apart from the stored
//! [`super::Token`] record, and what the token operations answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TokenScope;

/// Body of token creation (`POST /api/v1/tokens/` and `/generate`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Unique name.
    pub name: String,
    /// Certificate e-mail.
    #[serde(default)]
    pub cert_email: Option<String>,
    /// `admin` or `user` (default).
    #[serde(default)]
    pub scope: TokenScope,
    /// A caller-chosen value (import); generated when absent, ignored by
    /// `generate`.
    #[serde(default)]
    pub token: Option<String>,
}

/// Names one token: the request of show, reveal and delete.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenKey {
    /// The token's name.
    pub name: String,
}

/// Body of `PUT /api/v1/tokens/email`: the calling token's certificate e-mail.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenEmail {
    /// The new e-mail.
    pub cert_email: String,
}
