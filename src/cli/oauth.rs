//! `portcullis oauth <verb>`: the OAuth admin API (`/api/v1/oauth`, admin
//! only): registered clients, active tokens, sessions, key rotation, health.

use clap::Subcommand;
use serde_json::Value;

use super::error::CliResult;
use super::http::Api;
use super::output::{field, fields, table, Column};

const OAUTH: &str = "oauth";

/// OAuth admin verbs.
#[derive(Subcommand, Debug)]
pub enum OAuthVerb {
    /// List registered OAuth clients.
    Clients,
    /// Show one client.
    Client {
        /// Client id.
        #[arg(value_parser = super::args::name)]
        client_id: String,
    },
    /// Delete a registered client.
    DeleteClient {
        /// Client id.
        #[arg(value_parser = super::args::name)]
        client_id: String,
    },
    /// List the active access tokens of one client.
    ClientTokens {
        /// Client id.
        #[arg(value_parser = super::args::name)]
        client_id: String,
    },
    /// List active access tokens (with counts per client).
    Tokens,
    /// Show one access token by its jti.
    Token {
        /// Token id (the JWT's jti).
        #[arg(value_parser = super::args::name)]
        jti: String,
    },
    /// Revoke an access token by its jti (refused by every instance from then on).
    RevokeToken {
        /// Token id (the JWT's jti).
        #[arg(value_parser = super::args::name)]
        jti: String,
    },
    /// List login sessions (token families).
    Sessions,
    /// Revoke a session: every token of the family.
    RevokeSession {
        /// Session id (token family).
        #[arg(value_parser = super::args::name)]
        session_id: String,
    },
    /// Rotate the signing key (the previous key stays published until its tokens expire).
    RotateKeys,
    /// Token and client counts.
    Metrics,
    /// Issuer, login provider and signing key id.
    Health,
}

fn clients_table(v: &Value) -> String {
    let id = |c: &Value| field(c, "client_id");
    let name = |c: &Value| field(c, "client_name");
    let source = |c: &Value| field(c, "source");
    let grants = |c: &Value| field(c, "grant_types");
    let auth = |c: &Value| field(c, "token_endpoint_auth_method");
    let redirects = |c: &Value| field(c, "redirect_uris");
    let cols: [Column<'_>; 6] = [
        ("CLIENT_ID", &id),
        ("NAME", &name),
        ("SOURCE", &source),
        ("GRANTS", &grants),
        ("AUTH", &auth),
        ("REDIRECT_URIS", &redirects),
    ];
    table(v, &cols, "no clients")
}

fn tokens_table(list: &Value) -> String {
    let jti = |t: &Value| field(t, "jti");
    let client = |t: &Value| field(t, "client_id");
    let user = |t: &Value| field(t, "username");
    let scope = |t: &Value| field(t, "scope");
    let aud = |t: &Value| field(t, "aud");
    let exp = |t: &Value| {
        t.get("exp")
            .and_then(Value::as_i64)
            .map_or_else(|| field(t, "exp"), super::credentials::rfc3339)
    };
    let cols: [Column<'_>; 6] = [
        ("JTI", &jti),
        ("CLIENT_ID", &client),
        ("USER", &user),
        ("SCOPE", &scope),
        ("AUDIENCE", &aud),
        ("EXPIRES", &exp),
    ];
    table(list, &cols, "no active tokens")
}

fn tokens_report(v: &Value) -> String {
    let list = v.get("tokens").unwrap_or(v);
    let mut out = tokens_table(list);
    if let Some(n) = v.get("active_access_tokens") {
        out.push_str(&format!("\nactive access tokens: {n}\n"));
    }
    if let Some(by) = v.get("by_client").and_then(Value::as_object).filter(|m| !m.is_empty()) {
        for (client, n) in by {
            out.push_str(&format!("  {client}: {n}\n"));
        }
    }
    out
}

fn sessions_table(v: &Value) -> String {
    let id = |s: &Value| field(s, "session_id");
    let client = |s: &Value| field(s, "client_id");
    let user = |s: &Value| field(s, "username");
    let sub = |s: &Value| field(s, "sub");
    let n = |s: &Value| field(s, "tokens");
    let cols: [Column<'_>; 5] = [
        ("SESSION_ID", &id),
        ("CLIENT_ID", &client),
        ("USER", &user),
        ("SUB", &sub),
        ("TOKENS", &n),
    ];
    table(v, &cols, "no sessions")
}

/// Runs one OAuth admin verb.
pub async fn run(api: &Api, json_out: bool, verb: OAuthVerb) -> CliResult {
    let (v, text) = match verb {
        OAuthVerb::Clients => {
            let v = api.get(&[OAUTH, "clients", ""]).await?;
            let t = clients_table(&v);
            (v, t)
        }
        OAuthVerb::Client { client_id } => {
            let v = api.get(&[OAUTH, "clients", &client_id]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
        OAuthVerb::DeleteClient { client_id } => {
            let v = api.delete(&[OAUTH, "clients", &client_id]).await?;
            (v, format!("deleted client {client_id}\n"))
        }
        OAuthVerb::ClientTokens { client_id } => {
            let v = api.get(&[OAUTH, "clients", &client_id, "tokens"]).await?;
            let t = tokens_table(&v);
            (v, t)
        }
        OAuthVerb::Tokens => {
            let v = api.get(&[OAUTH, "tokens"]).await?;
            let t = tokens_report(&v);
            (v, t)
        }
        OAuthVerb::Token { jti } => {
            let v = api.get(&[OAUTH, "tokens", &jti]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
        OAuthVerb::RevokeToken { jti } => {
            let v = api.delete(&[OAUTH, "tokens", &jti]).await?;
            (v, format!("revoked token {jti}\n"))
        }
        OAuthVerb::Sessions => {
            let v = api.get(&[OAUTH, "sessions"]).await?;
            let t = sessions_table(&v);
            (v, t)
        }
        OAuthVerb::RevokeSession { session_id } => {
            let v = api.delete(&[OAUTH, "sessions", &session_id]).await?;
            (v, format!("revoked session {session_id}\n"))
        }
        OAuthVerb::RotateKeys => {
            let v = api.post(&[OAUTH, "keys", "rotate"], &serde_json::json!({})).await?;
            let t = format!(
                "rotated the signing key; tokens are now signed with kid {}\n",
                field(&v, "current_kid")
            );
            (v, t)
        }
        OAuthVerb::Metrics => {
            let v = api.get(&[OAUTH, "metrics"]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
        OAuthVerb::Health => {
            let v = api.get(&[OAUTH, "health"]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
    };
    super::output::show(&v, &text, json_out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_report_lists_and_counts() {
        let v = json!({"active_access_tokens": 1, "by_client": {"portcullis-cli": 1},
            "tokens": [{"jti": "j1", "client_id": "portcullis-cli", "username": "alice", "scope": "admin", "aud": ["http://127.0.0.1:9000"], "exp": 0}]});
        let out = tokens_report(&v);
        assert!(
            out.contains("j1   portcullis-cli  alice  admin  http://127.0.0.1:9000  1970-01-01T00:00:00Z"),
            "{out}"
        );
        assert!(out.contains("active access tokens: 1\n  portcullis-cli: 1\n"), "{out}");
        assert_eq!(
            tokens_report(&json!({"active_access_tokens": 0, "by_client": {}, "tokens": []})),
            "no active tokens\n\nactive access tokens: 0\n"
        );
    }
}
