//! The `portcullis` binary: `serve` runs the proxy; every other subcommand is
//! a client of the admin API.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use portcullis::cli::{ClientOpts, Resource};
use portcullis::config::Config;

/// mimalloc: measured +11% req/s on the data plane over glibc malloc (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// OAuth- and MCP-aware edge proxy.
#[derive(Parser)]
#[command(name = "portcullis", version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PORTCULLIS_COMMIT"), ")"), about)]
struct Args {
    #[command(flatten)]
    opts: ClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the data plane and the control plane.
    ///
    /// Configured only by environment variables (and `.env`, which real
    /// environment variables override); `.env.example` lists every one with
    /// its default. A bad value stops start-up with one line naming it.
    #[command(after_long_help = SERVE_ENV_HELP)]
    Serve {
        /// Zero-downtime upgrade: take the listening sockets from the running
        /// portcullis over UPGRADE_SOCKET (send it SIGQUIT once this one is
        /// waiting); the old process then drains and exits.
        #[arg(long)]
        upgrade: bool,
    },
    /// Print a shell completion script: `portcullis completion bash > /etc/bash_completion.d/portcullis`.
    Completion {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(Box<Resource>),
}

/// The variables a first run needs, shown by `portcullis serve --help`.
const SERVE_ENV_HELP: &str = "\
Environment (see .env.example for all of them):
  ADMIN_TOKEN          bootstrap admin bearer token (at least 16 characters)
  SECRET_KEY           encrypts stored secrets; derived from ADMIN_TOKEN when unset,
                       so set it before changing ADMIN_TOKEN later
  STORE                redis (default) or embedded (one instance, no Redis)
  REDIS_URL            redis://127.0.0.1:6379/0 (REDIS_PASSWORD for its password)
  STORE_PATH           the embedded store's file
  HTTP_PORT            80     HTTPS_PORT 443     PROXY_PROTOCOL_PORT 10001 (0 = off)
  API_HOST, API_PORT   127.0.0.1, 9000 (the admin API, OAuth, /health, /metrics)
  BASE_DOMAIN          auth.{BASE_DOMAIN} is the authorization server's hostname
  GITHUB_CLIENT_ID, OIDC_ISSUER   the login provider of the OAuth server
  LOG_LEVEL            tracing filter (info)
  LOG_FORMAT           text (default) or json, for the process log on stderr
  ACCESS_LOG           json (default: one line per request on stdout) or off
  LOG_RETENTION_HOURS  how long request records are kept (72)";

fn main() -> ExitCode {
    // `.env` first, so client commands find ADMIN_TOKEN and API_URL there too.
    let _ = dotenvy::dotenv();
    // Outbound HTTPS (OAuth upstreams, ACME, this CLI) is rustls on aws-lc-rs,
    // the crypto library jsonwebtoken and instant-acme use too: reqwest is
    // built without a provider of its own (Cargo.toml), so it is set here,
    // before any client exists. It fails only if one is set already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    match args.command {
        Command::Serve { upgrade } => {
            let cfg = match Config::from_env() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("portcullis: {e}");
                    return ExitCode::from(2);
                }
            };
            // The process log goes to stderr (stdout carries the access log),
            // coloured only for a terminal, as JSON lines with LOG_FORMAT=json.
            let log = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(&cfg.log_filter))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal());
            if cfg.request_log.json_process_log {
                log.json().init();
            } else {
                log.init();
            }
            match portcullis::server::serve(cfg, upgrade) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("portcullis: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Args::command(), "portcullis", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Client(r) => portcullis::cli::run(args.opts, *r),
    }
}
