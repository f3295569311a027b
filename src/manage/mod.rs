//! Management operations on proxies, routes, tokens and certificates: the
//! one set of functions that the REST API, the CLI (through REST) and MCP
//! call. They enforce ownership and validation; front ends stay thin.

pub mod acme_certs;
pub mod authz;
pub mod bootstrap;
pub mod certs;
pub mod external_services;
pub mod logs;
pub mod oauth_admin;
pub mod proxies;
pub mod resources;
pub mod routes;
pub mod schema;
pub mod service_ports;
pub mod services;
pub mod tokens;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use crate::config::Config;
use crate::model::{TokenScope, ValidationError};
use crate::secrets::{constant_time_eq, token_hash, SealError, Sealer};
use crate::store::{Store, StoreError};

pub use authz::{require_admin, BOOTSTRAP_ADMIN};

/// Everything management operations need.
#[derive(Clone)]
pub struct Manager {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Configuration.
    pub config: Arc<Config>,
    /// Seals secrets at rest.
    pub sealer: Sealer,
    /// ACME issuance.
    pub acme: crate::acme::Acme,
    /// The OAuth authorization server.
    pub oauth: crate::oauth::OAuth,
    /// The Docker engine of Docker services.
    pub engine: crate::services::Engine,
}

/// Who is calling, established from a bearer token.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Token name (`ADMIN_TOKEN` for the bootstrap admin).
    pub name: String,
    /// `sha256:` hash of the token: the owner id of what it creates.
    pub hash: String,
    /// What it may do.
    pub scope: TokenScope,
    /// Certificate e-mail.
    pub email: Option<String>,
    /// May read but not change (OAuth tokens with the `user` scope).
    pub read_only: bool,
}

/// Why a management operation failed; mapped to HTTP once, in `admin::error`.
#[derive(Debug, Error)]
pub enum ManageError {
    /// No usable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or not visible to the caller.
    #[error("{0} not found")]
    NotFound(String),
    /// Would break a uniqueness rule.
    #[error("{0}")]
    Conflict(String),
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store failed.
    #[error("store unavailable")]
    Store(String),
    /// A sealed secret could not be opened.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The Docker engine is unreachable or failed.
    #[error("{0}")]
    Engine(String),
    /// The authorization server refused or failed, with its own status and code.
    #[error("{}", .0.description)]
    OAuth(crate::oauth::OAuthError),
}

impl From<crate::acme::StartError> for ManageError {
    fn from(e: crate::acme::StartError) -> Self {
        match e {
            crate::acme::StartError::Invalid(v) => ManageError::Invalid(v),
            crate::acme::StartError::Busy(n) => ManageError::Conflict(format!("an order for certificate {n} is already running")),
            crate::acme::StartError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(w) => ManageError::NotFound(w),
            StoreError::Conflict(m) => ManageError::Conflict(m),
            other => ManageError::Store(other.to_string()),
        }
    }
}

/// Result alias.
pub type ManageResult<T> = Result<T, ManageError>;

/// Deserializes `v`, reporting the path of the first bad field.
pub fn from_json<T: DeserializeOwned>(v: Value) -> ManageResult<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." {
            unknown_field(&inner).unwrap_or_else(|| "body".into())
        } else {
            path
        };
        ManageError::Invalid(ValidationError::new(field, inner))
    })
}

/// serde reports unknown and missing fields at the parent; pull the name out.
fn unknown_field(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_string())
}

/// Overlays the keys of `patch` (an object) onto `base`, except `locked` keys.
pub fn merge(base: &mut Value, patch: Value, locked: &[&str]) -> ManageResult<()> {
    let Value::Object(patch) = patch else {
        return Err(ValidationError::new("body", "expected a JSON object").into());
    };
    if let Value::Object(b) = base {
        for (k, v) in patch {
            if !locked.contains(&k.as_str()) {
                b.insert(k, v);
            }
        }
    }
    Ok(())
}

impl Manager {
    /// Builds a manager.
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>) -> Self {
        let sealer = Sealer::new(config.secret_key);
        let acme = crate::acme::Acme::new(store.clone(), config.clone(), sealer.clone());
        let oauth = crate::oauth::OAuth::new(store.clone(), config.clone(), sealer.clone());
        let engine = crate::services::Engine::new(config.docker.clone());
        Self {
            store,
            config,
            sealer,
            acme,
            oauth,
            engine,
        }
    }

    /// Resolves a bearer token to a caller: the bootstrap `ADMIN_TOKEN`
    /// (constant-time compare) or a stored token looked up by hash.
    pub async fn authenticate(&self, bearer: Option<&str>) -> ManageResult<Caller> {
        let token = bearer
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ManageError::Unauthorized("missing bearer token: send Authorization: Bearer <token>".into()))?;
        if let Some(admin) = &self.config.admin_token {
            if constant_time_eq(token, admin) {
                return Ok(Caller {
                    name: BOOTSTRAP_ADMIN.into(),
                    hash: token_hash(admin),
                    scope: TokenScope::Admin,
                    email: self.config.admin_email.clone(),
                    read_only: false,
                });
            }
        }
        if token.split('.').count() == 3 {
            return self.authenticate_oauth(token).await;
        }
        let hash = token_hash(token);
        match self.store.get_token_by_hash(&hash).await? {
            Some(t) => Ok(Caller {
                name: t.name,
                hash: t.hash,
                scope: t.scope,
                email: t.cert_email,
                read_only: false,
            }),
            None => Err(ManageError::Unauthorized("invalid or revoked token".into())),
        }
    }

    /// An OAuth access token for this issuer: `admin` scope may write, `user` may read.
    async fn authenticate_oauth(&self, token: &str) -> ManageResult<Caller> {
        let c = self
            .oauth
            .verify_access(token)
            .await
            .map_err(|e| ManageError::Unauthorized(e.description))?;
        if !c.aud.iter().any(|a| a == self.oauth.issuer()) {
            return Err(ManageError::Unauthorized("the token's audience is not this server".into()));
        }
        let scopes: Vec<&str> = c.scope.split_whitespace().collect();
        let (scope, read_only) = if scopes.contains(&"admin") {
            (TokenScope::Admin, false)
        } else if scopes.contains(&"user") {
            (TokenScope::User, true)
        } else {
            return Err(ManageError::Forbidden("the token needs the admin or user scope".into()));
        };
        Ok(Caller {
            name: c.preferred_username,
            hash: format!("oauth:{}", c.sub),
            scope,
            email: c.email,
            read_only,
        })
    }
}
