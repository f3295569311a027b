//! The protected-resource registry record (`resource:{uri}`): what the
//! authorization server checks a `resource` parameter against.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A registered protected resource, as stored and as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The resource URI (canonical, no trailing slash).
    pub uri: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Proxy hostname serving it.
    #[serde(default)]
    pub proxy_target: Option<String>,
    /// Scopes it understands.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where its metadata lives.
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// Owner token hash.
    #[serde(default)]
    pub owner_token_hash: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
}
