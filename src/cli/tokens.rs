//! `portcullis token <verb>`: API tokens (`/api/v1/tokens`).

use clap::{Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use super::error::{CliError, CliResult};
use super::http::Api;
use super::output::{emit, field, fields, table, Column};

const TOKENS: &str = "tokens";

/// What a new token may do.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScopeArg {
    /// Sees and changes everything, manages tokens.
    Admin,
    /// Sees and changes only what it owns.
    User,
}

impl ScopeArg {
    fn as_str(self) -> &'static str {
        match self {
            ScopeArg::Admin => "admin",
            ScopeArg::User => "user",
        }
    }
}

/// Token verbs.
#[derive(Subcommand, Debug)]
pub enum TokenVerb {
    /// Generate a new random token (admin only); its value is printed once.
    Generate {
        /// Unique token name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Certificate e-mail (ACME contact for certificates it creates).
        #[arg(long)]
        email: Option<String>,
        /// Scope (default: user).
        #[arg(long, value_enum)]
        scope: Option<ScopeArg>,
    },
    /// Create a token, optionally importing an existing value (admin only).
    Create {
        /// Unique token name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Certificate e-mail.
        #[arg(long)]
        email: Option<String>,
        /// Scope (default: user).
        #[arg(long, value_enum)]
        scope: Option<ScopeArg>,
        /// Token value to import (at least 32 printable characters); generated when absent.
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
    },
    /// List tokens (admins see all; others themselves).
    List,
    /// Show one token.
    Show {
        /// Token name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Print a token's value (admin only).
    Reveal {
        /// Token name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Print only the value, for `V=$(portcullis token reveal NAME --value)`.
        #[arg(long)]
        value: bool,
    },
    /// Delete a token and every proxy, route and certificate it owns.
    Delete {
        /// Token name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Show the token you are calling with.
    Info,
    /// Set the certificate e-mail of the token you are calling with
    /// (or, for an admin, of the token named by --name).
    Email {
        /// New e-mail address.
        email: String,
        /// Token to change: its value is revealed with your admin token and
        /// the change is made as that token.
        #[arg(long, value_parser = super::args::name)]
        name: Option<String>,
    },
}

/// The body of token creation; absent options are left to the server's defaults.
pub fn new_token_body(name: &str, email: Option<&str>, scope: Option<ScopeArg>, value: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(name));
    if let Some(e) = email {
        body.insert("cert_email".into(), json!(e));
    }
    if let Some(s) = scope {
        body.insert("scope".into(), json!(s.as_str()));
    }
    if let Some(v) = value {
        body.insert("token".into(), json!(v));
    }
    Value::Object(body)
}

fn created(v: &Value) -> String {
    let name = field(v, "name");
    format!(
        "created token {name} (scope: {})\n\n  {}\n\nSave this value now: it is shown only once (an admin can recover it with `portcullis token reveal {name}`).\n",
        field(v, "scope"),
        field(v, "token"),
    )
}

fn deleted(v: &Value) -> String {
    let mut out = format!("deleted token {}\n", field(v, "name"));
    if let Some(report) = v.get("deleted") {
        for what in ["proxies", "routes", "certificates"] {
            if report.get(what).and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
                out.push_str(&format!("  also deleted its {what}: {}\n", field(report, what)));
            }
        }
    }
    out
}

fn list_table(v: &Value) -> String {
    let name = |t: &Value| field(t, "name");
    let scope = |t: &Value| field(t, "scope");
    let email = |t: &Value| field(t, "cert_email");
    let by = |t: &Value| field(t, "created_by");
    let at = |t: &Value| field(t, "created_at");
    let cols: [Column<'_>; 5] = [
        ("NAME", &name),
        ("SCOPE", &scope),
        ("EMAIL", &email),
        ("CREATED_BY", &by),
        ("CREATED_AT", &at),
    ];
    table(v, &cols, "no tokens")
}

/// Runs one token verb.
pub async fn run(api: &Api, json_out: bool, verb: TokenVerb) -> CliResult {
    let v = match &verb {
        TokenVerb::Generate { name, email, scope } => {
            api.post(&[TOKENS, "generate"], &new_token_body(name, email.as_deref(), *scope, None))
                .await?
        }
        TokenVerb::Create { name, email, scope, value } => {
            api.post(&[TOKENS, ""], &new_token_body(name, email.as_deref(), *scope, value.as_deref()))
                .await?
        }
        TokenVerb::List => api.get(&[TOKENS, ""]).await?,
        TokenVerb::Show { name } => api.get(&[TOKENS, name]).await?,
        TokenVerb::Reveal { name, .. } => api.get(&[TOKENS, name, "reveal"]).await?,
        TokenVerb::Delete { name } => api.delete(&[TOKENS, name]).await?,
        TokenVerb::Info => api.get(&[TOKENS, "info"]).await?,
        TokenVerb::Email { email, name: None } => api.put(&[TOKENS, "email"], &json!({ "cert_email": email })).await?,
        TokenVerb::Email { email, name: Some(name) } => {
            let revealed = api.get(&[TOKENS, name, "reveal"]).await?;
            let value = revealed
                .get("token")
                .and_then(Value::as_str)
                .ok_or_else(|| CliError::Protocol(format!("token {name} was revealed without its value")))?;
            api.as_token(value).put(&[TOKENS, "email"], &json!({ "cert_email": email })).await?
        }
    };
    if json_out {
        super::output::json(&v);
        return Ok(());
    }
    if let TokenVerb::Reveal { value: true, name } = &verb {
        let value = v
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| CliError::Protocol(format!("token {name} was revealed without its value")))?;
        emit(&format!("{value}\n"));
        return Ok(());
    }
    emit(&match verb {
        TokenVerb::Generate { .. } | TokenVerb::Create { .. } => created(&v),
        TokenVerb::List => list_table(&v),
        TokenVerb::Show { .. } | TokenVerb::Info => fields(&v, &[]),
        TokenVerb::Reveal { .. } => fields(&v, &["hash"]),
        TokenVerb::Delete { .. } => deleted(&v),
        TokenVerb::Email { .. } => format!(
            "updated the certificate e-mail of token {} to {}\n",
            field(&v, "name"),
            field(&v, "cert_email")
        ),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_bodies_leave_defaults_to_the_server() {
        assert_eq!(new_token_body("ci", None, None, None), json!({"name": "ci"}));
        assert_eq!(
            new_token_body("ci", Some("a@b.io"), Some(ScopeArg::Admin), Some("v")),
            json!({"name": "ci", "cert_email": "a@b.io", "scope": "admin", "token": "v"})
        );
    }
}
