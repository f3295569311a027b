//! The CLI client: `portcullis token|proxy|route|cert|service|resource|oauth
//! <verb>` calls the admin API and prints tables for people or JSON
//! (`--json`) for scripts. Each verb is a thin adapter over one REST call;
//! the server validates. `portcullis login` stores an OAuth login (device
//! flow) that the other verbs use when no `--token`/`ADMIN_TOKEN` is given.

mod args;
mod certs;
pub mod credentials;
pub mod device;
mod error;
mod http;
mod login;
mod logs;
mod oauth;
mod output;
mod proxies;
mod proxy_auth;
mod resources;
mod routes;
mod services;
mod tokens;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use certs::CertVerb;
pub use error::CliError;
pub use login::LoginArgs;
pub use logs::{LogVerb, LogsArgs};
pub use oauth::OAuthVerb;
pub use proxies::{CreateProxy, ProxyVerb};
pub use resources::ResourceVerb;
pub use routes::{CreateRoute, RouteVerb};
pub use services::ServiceVerb;
pub use tokens::TokenVerb;

/// Options shared by every client command.
#[derive(Args, Debug)]
pub struct ClientOpts {
    /// Admin API base URL.
    #[arg(long, global = true, env = "API_URL", default_value = "http://127.0.0.1:9000")]
    pub api_url: String,
    /// Bearer token (defaults to ADMIN_TOKEN, else the login stored by `portcullis login`).
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
    /// Protected resources (the OAuth resource registry).
    #[command(subcommand)]
    Resource(ResourceVerb),
    /// The OAuth server's clients, tokens, sessions and keys (admin).
    #[command(subcommand)]
    Oauth(OAuthVerb),
    /// The request log: latest requests, views by IP, host, client, search, errors, OAuth steps, stats, follow.
    Logs(LogsArgs),
    /// Log in with OAuth (device flow) and store the tokens for later commands.
    Login(LoginArgs),
    /// Delete the stored login.
    Logout,
    /// Show who the stored login is (the access token's claims, not verified).
    Whoami,
}

async fn dispatch(opts: &ClientOpts, resource: Resource) -> Result<(), CliError> {
    let resource = match resource {
        Resource::Login(a) => return login::login(opts, a).await,
        Resource::Logout => return login::logout(opts.json),
        Resource::Whoami => return login::whoami(opts),
        other => other,
    };
    let token = login::resolve_token(opts).await?;
    let api = http::Api::new(&opts.api_url, &token)?;
    match resource {
        Resource::Token(v) => tokens::run(&api, opts.json, v).await,
        Resource::Proxy(v) => proxies::run(&api, opts.json, v).await,
        Resource::Route(v) => routes::run(&api, opts.json, v).await,
        Resource::Cert(v) => certs::run(&api, opts.json, v).await,
        Resource::Service(v) => services::run(&api, opts.json, v).await,
        Resource::Resource(v) => resources::run(&api, opts.json, v).await,
        Resource::Oauth(v) => oauth::run(&api, opts.json, v).await,
        Resource::Logs(a) => logs::run(&api, opts.json, a).await,
        Resource::Login(_) | Resource::Logout | Resource::Whoami => Ok(()),
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
            "portcullis",
            "proxy",
            "create",
            "a.example.com",
            "http://127.0.0.1:8080",
            "--header",
            "X-A=1",
            "--header",
            "X-B=2",
            "--set",
            "auth_enabled=true",
            "--json",
            "--token",
            "t",
        ])
        .unwrap();
        assert!(cli.opts.json);
        let Resource::Proxy(ProxyVerb::Create(c)) = cli.resource else {
            panic!("wrong verb")
        };
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.sets, vec![("auth_enabled".to_string(), serde_json::json!(true))]);

        let bad = Cli::try_parse_from(["portcullis", "proxy", "update", "a.example.com", "--set", "novalue"]);
        assert!(bad.is_err());
        let none = Cli::try_parse_from(["portcullis", "proxy", "update", "a.example.com"]);
        assert!(none.is_err(), "update needs at least one --set");

        let r = Cli::try_parse_from([
            "portcullis",
            "route",
            "create",
            "/api/",
            "port",
            "8080",
            "--methods",
            "GET,POST",
            "--proxies",
            "a.com,b.com",
        ])
        .unwrap();
        let Resource::Route(RouteVerb::Create(c)) = r.resource else {
            panic!("wrong verb")
        };
        assert_eq!(c.methods, vec!["GET", "POST"]);
        assert_eq!(c.body()["scope"], "proxy");
    }

    fn parse(args: &[&str]) -> Result<Resource, clap::Error> {
        Cli::try_parse_from(std::iter::once("portcullis").chain(args.iter().copied())).map(|c| c.resource)
    }

    #[test]
    fn certificate_verbs_parse() {
        let Ok(Resource::Cert(CertVerb::CreateMulti {
            name,
            domains,
            issue,
            wait,
        })) = parse(&[
            "cert",
            "create-multi",
            "multi",
            "a.example.com,b.example.com",
            "--staging",
            "--key-type",
            "ecdsa",
            "--wait",
        ])
        else {
            panic!("wrong verb")
        };
        assert_eq!(name, "multi");
        assert_eq!(domains, vec!["a.example.com", "b.example.com"]);
        assert!(issue.staging && wait.wait && wait.timeout == 300);
        assert_eq!(issue.key_type, Some(certs::KeyTypeArg::Ecdsa));

        let Ok(Resource::Cert(CertVerb::Status { wait, .. })) = parse(&["cert", "status", "app", "--wait", "--timeout", "60"]) else {
            panic!("wrong verb")
        };
        assert_eq!((wait.wait, wait.timeout), (true, 60));
        assert!(
            parse(&["cert", "status", "app", "--timeout", "60"]).is_err(),
            "--timeout needs --wait"
        );
        assert!(parse(&["cert", "create", "app", "app.example.com", "--key-type", "dsa"]).is_err());
        assert!(parse(&["proxy", "cert-attach", "a.example.com", "wild"]).is_ok());
        assert!(parse(&["proxy", "cert-generate", "a.example.com", "--staging", "--wait"]).is_ok());
    }

    #[test]
    fn auth_and_resource_verbs_parse() {
        let Ok(Resource::Proxy(ProxyVerb::AuthEnable(a))) = parse(&[
            "proxy",
            "auth-enable",
            "api.example.com",
            "auth.example.com",
            "redirect",
            "--scopes",
            "mcp:read,mcp:write",
        ]) else {
            panic!("wrong verb")
        };
        assert_eq!(a.body()["auth_allowed_scopes"], serde_json::json!(["mcp:read", "mcp:write"]));
        assert!(parse(&["proxy", "auth-enable", "h", "auth.h", "sideways"]).is_err());

        let Ok(Resource::Proxy(ProxyVerb::AuthConfig(c))) =
            parse(&["proxy", "auth-config", "h", "--users", "", "--emails", "*@example.com"])
        else {
            panic!("wrong verb")
        };
        assert_eq!(
            serde_json::Value::Object(c.patch()),
            serde_json::json!({"auth_required_users": null, "auth_required_emails": ["*@example.com"]})
        );
        assert!(
            parse(&["proxy", "auth-config", "h"]).is_err(),
            "auth-config needs at least one change"
        );

        let Ok(Resource::Proxy(ProxyVerb::ResourceSet(r))) = parse(&[
            "proxy",
            "resource-set",
            "h",
            "--stateful",
            "--override-backend=false",
            "--server-info",
            r#"{"name":"t"}"#,
        ]) else {
            panic!("wrong verb")
        };
        assert_eq!(
            r.body(),
            serde_json::json!({"endpoint": "/mcp", "stateful": true, "override_backend": false, "server_info": {"name": "t"}})
        );
        assert!(parse(&["proxy", "resource-set", "h", "--custom-metadata", "[1]"]).is_err());

        let cli = Cli::try_parse_from([
            "portcullis",
            "--token",
            "admin-token",
            "resource",
            "validate-token",
            "https://m.io/mcp",
            "a.b.c",
        ])
        .unwrap();
        assert_eq!(
            cli.opts.token.as_deref(),
            Some("admin-token"),
            "the checked token is not the caller's token"
        );
        let Resource::Resource(ResourceVerb::ValidateToken { access_token, .. }) = cli.resource else {
            panic!("wrong verb")
        };
        assert_eq!(access_token, "a.b.c");
        assert!(parse(&["resource", "update", "https://m.io/mcp"]).is_err(), "update needs --set");
    }

    #[test]
    fn login_and_oauth_verbs_parse() {
        let Ok(Resource::Login(l)) = parse(&["login", "--issuer", "https://auth.example.com", "--scope", "user"]) else {
            panic!("wrong verb")
        };
        assert_eq!((l.issuer.as_deref(), l.scope.as_str()), (Some("https://auth.example.com"), "user"));
        assert!(matches!(parse(&["whoami"]), Ok(Resource::Whoami)));
        assert!(matches!(parse(&["logout"]), Ok(Resource::Logout)));
        assert!(matches!(
            parse(&["oauth", "revoke-token", "j1"]),
            Ok(Resource::Oauth(OAuthVerb::RevokeToken { .. }))
        ));
        assert!(matches!(
            parse(&["oauth", "rotate-keys"]),
            Ok(Resource::Oauth(OAuthVerb::RotateKeys))
        ));
    }
}
