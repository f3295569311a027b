//! `portcullis cert <verb>`: certificates (`/api/v1/certificates`).

use clap::Subcommand;
use serde_json::{json, Value};

use super::error::{CliError, CliResult};
use super::http::Api;
use super::output::{emit_line, field, fields, table, Column};

const CERTS: &str = "certificates";

/// Certificate verbs.
#[derive(Subcommand, Debug)]
pub enum CertVerb {
    /// List certificates.
    List,
    /// Show one certificate (without its key).
    Show {
        /// Certificate name.
        name: String,
        /// Print only the PEM chain.
        #[arg(long)]
        pem: bool,
    },
    /// Upload a certificate chain and its private key.
    Upload {
        /// Certificate name.
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
        name: String,
    },
}

fn read(path: &str) -> CliResult<String> {
    std::fs::read_to_string(path).map_err(|e| CliError::File { path: path.to_string(), reason: e.to_string() })
}

fn list_table(v: &Value) -> String {
    let name = |c: &Value| field(c, "cert_name");
    let domains = |c: &Value| field(c, "domains");
    let status = |c: &Value| field(c, "status");
    let source = |c: &Value| field(c, "source");
    let expires = |c: &Value| field(c, "expires_at");
    let issuer = |c: &Value| field(c, "issuer");
    let cols: [Column<'_>; 6] =
        [("NAME", &name), ("DOMAINS", &domains), ("STATUS", &status), ("SOURCE", &source), ("EXPIRES_AT", &expires), ("ISSUER", &issuer)];
    table(v, &cols, "no certificates")
}

/// Runs one certificate verb.
pub async fn run(api: &Api, json_out: bool, verb: CertVerb) -> CliResult {
    let (v, text) = match verb {
        CertVerb::List => {
            let v = api.get(&[CERTS, ""]).await?;
            let t = list_table(&v);
            (v, t)
        }
        CertVerb::Show { name, pem } => {
            let v = api.get(&[CERTS, &name]).await?;
            let t = if pem { field(&v, "fullchain_pem") } else { fields(&v, &["fullchain_pem", "owner_token_hash"]) };
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
            let t = format!("uploaded certificate {} for {} (expires {})\n", field(&v, "cert_name"), field(&v, "domains"), field(&v, "expires_at"));
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
