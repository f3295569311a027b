//! `portcullis service <verb>`: named external services
//! (`/api/v1/services/external`), the targets of `service` routes.

use clap::Subcommand;
use serde_json::{json, Value};

use super::error::CliResult;
use super::http::Api;
use super::output::{field, table, Column};

const SERVICES: &str = "services";
const EXTERNAL: &str = "external";

/// External service verbs.
#[derive(Subcommand, Debug)]
pub enum ServiceVerb {
    /// Register (or replace) a named service URL (admin only).
    Register {
        /// Service name, used as a route's target value.
        name: String,
        /// Where it lives (http:// or https://).
        url: String,
    },
    /// List named services.
    List,
    /// Remove a named service (admin only).
    Delete {
        /// Service name.
        name: String,
    },
}

/// Runs one service verb.
pub async fn run(api: &Api, json_out: bool, verb: ServiceVerb) -> CliResult {
    let (v, text) = match verb {
        ServiceVerb::Register { name, url } => {
            let v = api
                .post(&[SERVICES, EXTERNAL], &json!({ "service_name": name, "target_url": url }))
                .await?;
            let t = format!("registered service {} -> {}\n", field(&v, "service_name"), field(&v, "target_url"));
            (v, t)
        }
        ServiceVerb::List => {
            let v = api.get(&[SERVICES, EXTERNAL]).await?;
            let name = |s: &Value| field(s, "service_name");
            let url = |s: &Value| field(s, "target_url");
            let cols: [Column<'_>; 2] = [("NAME", &name), ("TARGET_URL", &url)];
            let t = table(&v, &cols, "no services");
            (v, t)
        }
        ServiceVerb::Delete { name } => {
            let v = api.delete(&[SERVICES, EXTERNAL, &name]).await?;
            let t = format!("deleted service {}\n", field(&v, "service_name"));
            (v, t)
        }
    };
    super::output::show(&v, &text, json_out);
    Ok(())
}
