//! API token operations.

use serde::Deserialize;
use serde_json::Value;

use super::{from_json, require_admin, Caller, ManageError, ManageResult, Manager, BOOTSTRAP_ADMIN};
use crate::model::{now_rfc3339, valid_name, Token, TokenScope, TokenView, ValidationError};
use crate::secrets::{new_token, token_hash};
use crate::store::CascadeReport;

/// Body of token creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Unique name.
    pub name: String,
    /// Certificate e-mail.
    #[serde(default)]
    pub cert_email: Option<String>,
    /// `admin` or `user` (default).
    #[serde(default)]
    pub scope: TokenScope,
    /// A caller-chosen value (import); generated when absent.
    #[serde(default)]
    pub token: Option<String>,
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

impl Manager {
    /// Creates a token (admin only); `generate` ignores any supplied value.
    pub async fn create_token(&self, caller: &Caller, body: Value, generate: bool) -> ManageResult<TokenView> {
        require_admin(caller)?;
        let req: NewToken = from_json(body)?;
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
            token_encrypted: self.sealer.seal(&value)?,
            cert_email: req.cert_email,
            scope: req.scope,
            created_by: caller.name.clone(),
            created_at: now_rfc3339(),
        };
        self.store.create_token(&token).await?;
        tracing::info!(token = %token.name, by = %caller.name, "token created");
        let mut view = token.view();
        view.token = Some(value);
        Ok(view)
    }

    /// Admins see every token; others only themselves.
    pub async fn list_tokens(&self, caller: &Caller) -> ManageResult<Vec<TokenView>> {
        let mut v: Vec<TokenView> = self
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

    /// The caller's own token record.
    pub async fn token_info(&self, caller: &Caller) -> ManageResult<TokenView> {
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
        Ok(self.visible_token(caller, &caller.name).await?.view())
    }

    async fn visible_token(&self, caller: &Caller, name: &str) -> ManageResult<Token> {
        match self.store.get_token(name).await? {
            Some(t) if caller.may_read(&t.hash) => Ok(t),
            _ => Err(ManageError::NotFound(format!("token {name}"))),
        }
    }

    /// One token (admin: any; others: themselves).
    pub async fn get_token(&self, caller: &Caller, name: &str) -> ManageResult<TokenView> {
        Ok(self.visible_token(caller, name).await?.view())
    }

    /// Sets the caller's certificate e-mail.
    pub async fn update_token_email(&self, caller: &Caller, body: Value) -> ManageResult<TokenView> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            cert_email: String,
        }
        let b: Body = from_json(body)?;
        validate_email(&b.cert_email)?;
        if caller.name == BOOTSTRAP_ADMIN {
            return Err(ManageError::Conflict(
                "the bootstrap admin's e-mail is ADMIN_EMAIL in the environment".into(),
            ));
        }
        let mut t = self.visible_token(caller, &caller.name).await?;
        t.cert_email = Some(b.cert_email);
        self.store.update_token(&t).await?;
        Ok(t.view())
    }

    /// Deletes a token and everything it owns (admins, or a token deleting itself).
    pub async fn delete_token(&self, caller: &Caller, name: &str) -> ManageResult<CascadeReport> {
        let t = self.visible_token(caller, name).await?;
        let report = self.store.delete_token_cascade(&t.name).await?;
        tracing::info!(token = %t.name, by = %caller.name, proxies = report.proxies.len(), routes = report.routes.len(),
            certificates = report.certificates.len(), "token deleted with what it owned");
        Ok(report)
    }

    /// The token's value (admin only).
    pub async fn reveal_token(&self, caller: &Caller, name: &str) -> ManageResult<TokenView> {
        require_admin(caller)?;
        let t = self.visible_token(caller, name).await?;
        let mut view = t.view();
        let value = self.sealer.open(&t.token_encrypted)?;
        view.token = Some(value);
        tracing::info!(token = %t.name, by = %caller.name, "token revealed");
        Ok(view)
    }
}
