//! The CLI client: `portcullis token|proxy|route|cert|service <verb>` calls
//! the admin API and prints tables for people or JSON (`--json`) for scripts.
//! Each verb is a thin adapter over one REST call; the server validates.

mod args;
mod certs;
mod error;
mod http;
mod output;
mod proxies;
mod routes;
mod services;
mod tokens;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use certs::CertVerb;
pub use error::CliError;
pub use proxies::{CreateProxy, ProxyVerb};
pub use routes::{CreateRoute, RouteVerb};
pub use services::ServiceVerb;
pub use tokens::TokenVerb;

/// Options shared by every client command.
#[derive(Args, Debug)]
pub struct ClientOpts {
    /// Admin API base URL.
    #[arg(long, global = true, env = "API_URL", default_value = "http://127.0.0.1:9000")]
    pub api_url: String,
    /// Bearer token (defaults to ADMIN_TOKEN).
    #[arg(long, global = true, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The resources the CLI manages.
#[derive(Subcommand, Debug)]
pub enum Resource {
    /// API tokens.
    #[command(subcommand)]
    Token(TokenVerb),
    /// Proxy targets (one per hostname).
    #[command(subcommand)]
    Proxy(ProxyVerb),
    /// Path routes.
    #[command(subcommand)]
    Route(RouteVerb),
    /// TLS certificates.
    #[command(subcommand)]
    Cert(CertVerb),
    /// Named external services (targets of `service` routes).
    #[command(subcommand)]
    Service(ServiceVerb),
}

async fn dispatch(opts: &ClientOpts, resource: Resource) -> Result<(), CliError> {
    let api = http::Api::new(opts)?;
    match resource {
        Resource::Token(v) => tokens::run(&api, opts.json, v).await,
        Resource::Proxy(v) => proxies::run(&api, opts.json, v).await,
        Resource::Route(v) => routes::run(&api, opts.json, v).await,
        Resource::Cert(v) => certs::run(&api, opts.json, v).await,
        Resource::Service(v) => services::run(&api, opts.json, v).await,
    }
}

/// Runs one client command; non-zero exit with the server's message on error.
pub fn run(opts: ClientOpts, resource: Resource) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))
        .and_then(|rt| rt.block_on(dispatch(&opts, resource)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// The shape `main.rs` builds: global options plus `<resource> <verb>`.
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        resource: Resource,
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn verbs_parse_with_repeatable_and_global_options() {
        let cli = Cli::try_parse_from([
            "portcullis", "proxy", "create", "a.example.com", "http://127.0.0.1:8080", "--header", "X-A=1", "--header", "X-B=2",
            "--set", "auth_enabled=true", "--json", "--token", "t",
        ])
        .unwrap();
        assert!(cli.opts.json);
        let Resource::Proxy(ProxyVerb::Create(c)) = cli.resource else { panic!("wrong verb") };
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.sets, vec![("auth_enabled".to_string(), serde_json::json!(true))]);

        let bad = Cli::try_parse_from(["portcullis", "proxy", "update", "a.example.com", "--set", "novalue"]);
        assert!(bad.is_err());
        let none = Cli::try_parse_from(["portcullis", "proxy", "update", "a.example.com"]);
        assert!(none.is_err(), "update needs at least one --set");

        let r = Cli::try_parse_from(["portcullis", "route", "create", "/api/", "port", "8080", "--methods", "GET,POST", "--proxies", "a.com,b.com"])
            .unwrap();
        let Resource::Route(RouteVerb::Create(c)) = r.resource else { panic!("wrong verb") };
        assert_eq!(c.methods, vec!["GET", "POST"]);
        assert_eq!(c.body()["scope"], "proxy");
    }
}
