//! API token operations: typed requests (`model::TokenSpec`, `TokenKey`,
//! `TokenEmail`) in, typed results out, authorization checked here.

use serde::Serialize;
use utoipa::ToSchema;

use super::{require_admin, Caller, ManageError, ManageResult, Manager, BOOTSTRAP_ADMIN};
use crate::model::{now_rfc3339, valid_name, Token, TokenEmail, TokenKey, TokenScope, TokenSpec, TokenView, ValidationError};
use crate::secrets::{new_token, token_hash};
use crate::store::CascadeReport;

/// The answer to a token delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDeleted {
    /// Always `deleted`.
    pub status: &'static str,
    /// The token's name.
    pub name: String,
    /// What it owned, deleted with it.
    pub deleted: CascadeReport,
}

fn validate_email(e: &str) -> Result<(), ValidationError> {
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
        && !e.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("cert_email", format!("{e:?} is not an e-mail address")))
    }
}

/// Stores a token whose value the caller gives (or a new one when it gives
/// none); admin only. The answer holds the value, once.
pub async fn create(m: &Manager, caller: &Caller, spec: TokenSpec) -> ManageResult<TokenView> {
    store_new(m, caller, spec, false).await
}

/// Creates a token with a new random value, ignoring any value given; admin only.
pub async fn generate(m: &Manager, caller: &Caller, spec: TokenSpec) -> ManageResult<TokenView> {
    store_new(m, caller, spec, true).await
}

async fn store_new(m: &Manager, caller: &Caller, req: TokenSpec, generate: bool) -> ManageResult<TokenView> {
    require_admin(caller)?;
    if !valid_name(&req.name) || req.name == BOOTSTRAP_ADMIN {
        return Err(ValidationError::new("name", "letters, digits, '-', '_' and '.' only (1-128), not ADMIN_TOKEN").into());
    }
    if let Some(e) = &req.cert_email {
        validate_email(e)?;
    }
    let value = match req.token.filter(|_| !generate) {
        Some(v) if v.len() < 32 || v.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            return Err(ValidationError::new("token", "a supplied token needs at least 32 printable characters").into())
        }
        Some(v) => v,
        None => new_token(),
    };
    let token = Token {
        name: req.name,
        hash: token_hash(&value),
        token_encrypted: m.sealer.seal(&value)?,
        cert_email: req.cert_email,
        scope: req.scope,
        created_by: caller.name.clone(),
        created_at: now_rfc3339(),
    };
    m.store.create_token(&token).await?;
    tracing::info!(token = %token.name, by = %caller.name, "token created");
    let mut view = token.view();
    view.token = Some(value);
    Ok(view)
}

/// Admins see every token; others only themselves.
pub async fn list(m: &Manager, caller: &Caller) -> ManageResult<Vec<TokenView>> {
    let mut v: Vec<TokenView> = m
        .store
        .list_tokens()
        .await?
        .into_iter()
        .filter(|t| caller.is_admin() || t.hash == caller.hash)
        .map(|t| t.view())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// The caller's own token record (OAuth and bootstrap callers have none
/// stored: their record is made up from what authenticated them).
pub async fn info(m: &Manager, caller: &Caller) -> ManageResult<TokenView> {
    if caller.hash.starts_with("oauth:") {
        return Ok(TokenView {
            name: caller.name.clone(),
            hash: caller.hash.clone(),
            cert_email: caller.email.clone(),
            scope: caller.scope,
            created_by: "oauth".into(),
            created_at: String::new(),
            token: None,
        });
    }
    if caller.name == BOOTSTRAP_ADMIN {
        return Ok(TokenView {
            name: BOOTSTRAP_ADMIN.into(),
            hash: caller.hash.clone(),
            cert_email: caller.email.clone(),
            scope: TokenScope::Admin,
            created_by: "environment".into(),
            created_at: String::new(),
            token: None,
        });
    }
    Ok(visible(m, caller, &caller.name).await?.view())
}

/// The token `name` if the caller may see it (admin: any; others: themselves).
async fn visible(m: &Manager, caller: &Caller, name: &str) -> ManageResult<Token> {
    match m.store.get_token(name).await? {
        Some(t) if caller.may_read(&t.hash) => Ok(t),
        _ => Err(ManageError::NotFound(format!("token {name}"))),
    }
}

/// One token (admin: any; others: themselves).
pub async fn get(m: &Manager, caller: &Caller, key: TokenKey) -> ManageResult<TokenView> {
    Ok(visible(m, caller, &key.name).await?.view())
}

/// Sets the caller's certificate e-mail.
pub async fn set_email(m: &Manager, caller: &Caller, req: TokenEmail) -> ManageResult<TokenView> {
    validate_email(&req.cert_email)?;
    if caller.name == BOOTSTRAP_ADMIN {
        return Err(ManageError::Conflict(
            "the bootstrap admin's e-mail is ADMIN_EMAIL in the environment".into(),
        ));
    }
    let mut t = visible(m, caller, &caller.name).await?;
    t.cert_email = Some(req.cert_email);
    m.store.update_token(&t).await?;
    Ok(t.view())
}

/// Deletes a token and everything it owns (admins, or a token deleting itself).
pub async fn delete(m: &Manager, caller: &Caller, key: TokenKey) -> ManageResult<TokenDeleted> {
    let t = visible(m, caller, &key.name).await?;
    let report = m.store.delete_token_cascade(&t.name).await?;
    tracing::info!(token = %t.name, by = %caller.name, proxies = report.proxies.len(), routes = report.routes.len(),
        certificates = report.certificates.len(), "token deleted with what it owned");
    Ok(TokenDeleted {
        status: "deleted",
        name: key.name,
        deleted: report,
    })
}

/// The token's value (admin only).
pub async fn reveal(m: &Manager, caller: &Caller, key: TokenKey) -> ManageResult<TokenView> {
    require_admin(caller)?;
    let t = visible(m, caller, &key.name).await?;
    let mut view = t.view();
    view.token = Some(m.sealer.open(&t.token_encrypted)?);
    tracing::info!(token = %t.name, by = %caller.name, "token revealed");
    Ok(view)
}
