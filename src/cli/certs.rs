//! `portcullis cert <verb>`: certificates (`/api/v1/certificates`).

use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use super::error::{CliError, CliResult};
use super::http::Api;
use super::output::{emit_line, field, fields, table, Column};

const CERTS: &str = "certificates";
/// Seconds between status polls of `--wait`.
const POLL_SECS: u64 = 2;

/// Key algorithm of an issued certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeArg {
    /// RSA (RSA_KEY_SIZE bits; the default).
    Rsa,
    /// ECDSA P-256.
    Ecdsa,
}

/// `--wait` and `--timeout`: follow an order until it is issued or failed.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct WaitOpts {
    /// Poll the status until the certificate is issued or failed (exit 1 on failed).
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "wait")]
    pub timeout: u64,
}

/// Options of `cert create` and `cert create-multi` besides the names.
#[derive(Args, Debug, Clone, Default)]
pub struct IssueOpts {
    /// ACME account contact (default: the token's certificate e-mail).
    #[arg(long)]
    pub email: Option<String>,
    /// Use the ACME staging directory (untrusted certificates, generous rate limits).
    #[arg(long)]
    pub staging: bool,
    /// Key type (default: rsa).
    #[arg(long, value_enum)]
    pub key_type: Option<KeyTypeArg>,
}

/// Certificate verbs.
#[derive(Subcommand, Debug)]
pub enum CertVerb {
    /// List certificates.
    List,
    /// Show one certificate (without its key).
    Show {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Print only the PEM chain.
        #[arg(long)]
        pem: bool,
    },
    /// Upload a certificate chain and its private key.
    Upload {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// PEM file with the leaf certificate then intermediates.
        #[arg(long, value_name = "FILE")]
        cert: String,
        /// PEM file with the private key.
        #[arg(long, value_name = "FILE")]
        key: String,
        /// Contact e-mail.
        #[arg(long)]
        email: Option<String>,
    },
    /// Delete a certificate.
    Delete {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Request a certificate for one domain from ACME (HTTP-01); issuance runs in the background.
    Create {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// The domain (must resolve to this proxy's HTTP port).
        domain: String,
        #[command(flatten)]
        issue: IssueOpts,
        #[command(flatten)]
        wait: WaitOpts,
    },
    /// Request one certificate for several domains (comma-separated, up to 100).
    CreateMulti {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Domains, comma-separated (a.example.com,b.example.com) or as separate arguments.
        #[arg(value_delimiter = ',', required = true, num_args = 1..)]
        domains: Vec<String>,
        #[command(flatten)]
        issue: IssueOpts,
        #[command(flatten)]
        wait: WaitOpts,
    },
    /// Show the issuance status (pending, validating, issued, failed).
    Status {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
        #[command(flatten)]
        wait: WaitOpts,
    },
    /// Renew an ACME certificate now.
    Renew {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
        #[command(flatten)]
        wait: WaitOpts,
    },
    /// Re-issue a staging certificate from the production directory.
    ToProduction {
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        name: String,
        #[command(flatten)]
        wait: WaitOpts,
    },
}

/// The body of `POST /certificates/` (one domain) or `/multi-domain` (several);
/// options left out are the server's defaults.
pub fn issue_body(name: &str, domains: &[String], multi: bool, o: &IssueOpts) -> Value {
    let mut body = Map::new();
    body.insert("cert_name".into(), json!(name));
    if multi {
        let list: Vec<&str> = domains.iter().map(|d| d.trim()).filter(|d| !d.is_empty()).collect();
        body.insert("domains".into(), json!(list));
    } else {
        body.insert("domain".into(), json!(domains.first().map(|d| d.trim())));
    }
    if let Some(e) = o.email.as_deref().filter(|e| !e.trim().is_empty()) {
        body.insert("email".into(), json!(e.trim()));
    }
    if o.staging {
        body.insert("staging".into(), json!(true));
    }
    if let Some(k) = o.key_type {
        body.insert("key_type".into(), json!(if k == KeyTypeArg::Ecdsa { "ecdsa" } else { "rsa" }));
    }
    Value::Object(body)
}

/// The status line of a status record: "issued: issued, serial 1f2e".
fn status_line(v: &Value) -> String {
    format!("{}: {}", field(v, "status"), field(v, "message"))
}

/// A terminal status: `Some(Ok)` issued, `Some(Err)` failed, `None` still running.
pub fn settled(name: &str, v: &Value) -> Option<CliResult> {
    match v.get("status").and_then(Value::as_str) {
        Some("issued") => Some(Ok(())),
        Some("failed") => Some(Err(CliError::CertFailed {
            name: name.to_string(),
            reason: field(v, "message"),
        })),
        _ => None,
    }
}

/// Polls the status of `name` until it is issued or failed, or `timeout`
/// passes. Progress goes to stderr; the final record is returned with the
/// outcome (failed and timeout are errors, after the record is printed).
pub async fn wait_for(api: &Api, name: &str, timeout: Duration) -> (Option<Value>, CliResult) {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let v = match api.get(&[CERTS, name, "status"]).await {
            Ok(v) => v,
            Err(e) => return (None, Err(e)),
        };
        let line = status_line(&v);
        if let Some(outcome) = settled(name, &v) {
            return (Some(v), outcome);
        }
        if line != last {
            eprintln!("{name}: {line}");
            last = line;
        }
        if started.elapsed() >= timeout {
            let reason = format!("gave up waiting for certificate {name} after {}s (last status {last}); it may still finish: `portcullis cert status {name}`", timeout.as_secs());
            return (Some(v), Err(CliError::Timeout(reason)));
        }
        tokio::time::sleep(Duration::from_secs(POLL_SECS)).await;
    }
}

/// Prints a started order's answer, or waits for it when asked.
async fn started(api: &Api, json_out: bool, v: Value, what: String, wait: WaitOpts) -> CliResult {
    let name = field(&v, "cert_name");
    if !wait.wait {
        if json_out {
            super::output::json(&v);
        } else {
            emit_line(&format!("{what}; follow it with `portcullis cert status {name} --wait`"));
        }
        return Ok(());
    }
    if !json_out {
        eprintln!("{what}");
    }
    finish(json_out, wait_for(api, &name, Duration::from_secs(wait.timeout)).await)
}

fn finish(json_out: bool, (record, outcome): (Option<Value>, CliResult)) -> CliResult {
    if let Some(v) = record {
        if json_out {
            super::output::json(&v);
        } else if outcome.is_ok() {
            emit_line(&fields(&v, &[]));
        }
    }
    outcome
}

fn read(path: &str) -> CliResult<String> {
    std::fs::read_to_string(path).map_err(|e| CliError::File {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

fn list_table(v: &Value) -> String {
    let name = |c: &Value| field(c, "cert_name");
    let domains = |c: &Value| field(c, "domains");
    let status = |c: &Value| field(c, "status");
    let source = |c: &Value| field(c, "source");
    let expires = |c: &Value| field(c, "expires_at");
    let issuer = |c: &Value| field(c, "issuer");
    let cols: [Column<'_>; 6] = [
        ("NAME", &name),
        ("DOMAINS", &domains),
        ("STATUS", &status),
        ("SOURCE", &source),
        ("EXPIRES_AT", &expires),
        ("ISSUER", &issuer),
    ];
    table(v, &cols, "no certificates")
}

/// Runs one certificate verb.
pub async fn run(api: &Api, json_out: bool, verb: CertVerb) -> CliResult {
    let (v, text) = match verb {
        CertVerb::Create { name, domain, issue, wait } => {
            let v = api
                .post(&[CERTS, ""], &issue_body(&name, std::slice::from_ref(&domain), false, &issue))
                .await?;
            let what = format!(
                "requested certificate {name} for {domain}{}",
                if issue.staging { " (staging)" } else { "" }
            );
            return started(api, json_out, v, what, wait).await;
        }
        CertVerb::CreateMulti {
            name,
            domains,
            issue,
            wait,
        } => {
            let v = api
                .post(&[CERTS, "multi-domain"], &issue_body(&name, &domains, true, &issue))
                .await?;
            let what = format!(
                "requested certificate {name} for {}{}",
                domains.join(","),
                if issue.staging { " (staging)" } else { "" }
            );
            return started(api, json_out, v, what, wait).await;
        }
        CertVerb::Status { name, wait } => {
            if wait.wait {
                return finish(json_out, wait_for(api, &name, Duration::from_secs(wait.timeout)).await);
            }
            let v = api.get(&[CERTS, &name, "status"]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
        CertVerb::Renew { name, wait } => {
            let v = api.post(&[CERTS, &name, "renew"], &json!({})).await?;
            return started(api, json_out, v, format!("renewing certificate {name}"), wait).await;
        }
        CertVerb::ToProduction { name, wait } => {
            let v = api.post(&[CERTS, &name, "to-production"], &json!({})).await?;
            return started(
                api,
                json_out,
                v,
                format!("re-issuing certificate {name} from the production directory"),
                wait,
            )
            .await;
        }
        CertVerb::List => {
            let v = api.get(&[CERTS, ""]).await?;
            let t = list_table(&v);
            (v, t)
        }
        CertVerb::Show { name, pem } => {
            let v = api.get(&[CERTS, &name]).await?;
            let t = if pem {
                field(&v, "fullchain_pem")
            } else {
                fields(&v, &["fullchain_pem", "owner_token_hash"])
            };
            (v, t)
        }
        CertVerb::Upload { name, cert, key, email } => {
            let body = json!({
                "cert_name": name,
                "certificate_pem": read(&cert)?,
                "private_key_pem": read(&key)?,
                "email": email,
            });
            let v = api.post(&[CERTS, "upload"], &body).await?;
            let t = format!(
                "uploaded certificate {} for {} (expires {})\n",
                field(&v, "cert_name"),
                field(&v, "domains"),
                field(&v, "expires_at")
            );
            (v, t)
        }
        CertVerb::Delete { name } => {
            let v = api.delete(&[CERTS, &name]).await?;
            let t = format!("deleted certificate {}\n", field(&v, "cert_name"));
            (v, t)
        }
    };
    if json_out {
        super::output::json(&v);
    } else {
        emit_line(&text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_bodies_send_only_what_was_given() {
        let plain = IssueOpts::default();
        assert_eq!(
            issue_body("app", &["app.example.com".into()], false, &plain),
            json!({"cert_name": "app", "domain": "app.example.com"})
        );
        let full = IssueOpts {
            email: Some("ops@example.com".into()),
            staging: true,
            key_type: Some(KeyTypeArg::Ecdsa),
        };
        assert_eq!(
            issue_body(
                "multi",
                &["a.example.com".into(), " b.example.com".into(), String::new()],
                true,
                &full
            ),
            json!({"cert_name": "multi", "domains": ["a.example.com", "b.example.com"], "email": "ops@example.com", "staging": true, "key_type": "ecdsa"})
        );
        let blank_email = IssueOpts {
            email: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(
            issue_body("x", &["x.io".into()], false, &blank_email),
            json!({"cert_name": "x", "domain": "x.io"})
        );
    }

    #[test]
    fn only_issued_and_failed_settle() {
        assert!(settled("a", &json!({"status": "pending"})).is_none());
        assert!(settled("a", &json!({"status": "validating"})).is_none());
        assert!(matches!(settled("a", &json!({"status": "issued"})), Some(Ok(()))));
        let failed = settled(
            "a",
            &json!({"status": "failed", "message": "urn:ietf:params:acme:error:connection: refused"}),
        );
        assert!(matches!(failed, Some(Err(CliError::CertFailed { reason, .. })) if reason.contains("connection: refused")));
    }
}
