//! The CLI client: `portcullis token|proxy|route|cert <verb>` calls the admin
//! API and prints tables for people or JSON (`--json`) for scripts.

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Options shared by every client command.
#[derive(Args, Debug)]
pub struct ClientOpts {
    /// Admin API base URL.
    #[arg(long, global = true, env = "API_URL", default_value = "http://127.0.0.1:9000")]
    pub api_url: String,
    /// Bearer token (defaults to ADMIN_TOKEN).
    #[arg(long, global = true, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The resources the CLI manages.
#[derive(Subcommand, Debug)]
pub enum Resource {
    /// API tokens.
    #[command(subcommand)]
    Token(TokenVerb),
}

/// Token verbs.
#[derive(Subcommand, Debug)]
pub enum TokenVerb {
    /// List tokens.
    List,
}

/// Runs one client command; non-zero exit with the server's message on error.
pub fn run(_opts: ClientOpts, _resource: Resource) -> ExitCode {
    ExitCode::FAILURE
}
