//! The CLI's one error type: every failure becomes a single `error: ...` line
//! on stderr and an exit code, in exactly one place (`cli::run`).

use std::process::ExitCode;

use thiserror::Error;

/// Why a client command failed.
#[derive(Debug, Error)]
pub enum CliError {
    /// The bearer token cannot be put in an `Authorization` header
    /// (a control character or non-ASCII byte, often a pasted newline).
    #[error("the token contains characters that cannot be sent in an HTTP header; check ADMIN_TOKEN or --token")]
    UnsendableToken,
    /// No bearer token was given and nobody is logged in.
    #[error("no admin token: set ADMIN_TOKEN (the justfile reads it from .env), pass --token, or run `portcullis login`")]
    MissingToken,
    /// The stored login cannot be used any more (refresh refused, no refresh token).
    #[error("{0}; run `portcullis login` again")]
    LoginExpired(String),
    /// The device login did not complete.
    #[error("login failed: {0}")]
    Login(String),
    /// The credentials file cannot be read or written.
    #[error("credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A certificate order ended as `failed`.
    #[error("certificate {name} failed: {reason}")]
    CertFailed {
        /// Certificate name.
        name: String,
        /// The server's message (the ACME error).
        reason: String,
    },
    /// A check answered "no" (e.g. a token not valid for a resource).
    #[error("{0}")]
    CheckFailed(String),
    /// Waiting for something gave up.
    #[error("{0}")]
    Timeout(String),
    /// `--api-url` is unusable.
    #[error("invalid --api-url {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A name given on the command line cannot be one path segment: URL
    /// parsers drop `.` and `..` segments and an empty name addresses the
    /// collection, so `proxy auth-disable ..` would reach another endpoint
    /// (the proxy named `auth`).
    #[error("{0:?} cannot be a name: a URL path cannot carry an empty, \".\" or \"..\" segment")]
    BadName(String),
    /// The server answered with a non-2xx status.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's `error` code (empty when the body had none).
        code: String,
        /// The server's `message`, or a description of the raw body.
        message: String,
    },
    /// The request never got an answer (refused, DNS, timeout).
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable {
        /// The base URL tried.
        url: String,
        /// The innermost cause, one line.
        reason: String,
    },
    /// The OAuth authorization server never answered (login, refresh).
    #[error("cannot reach the authorization server at {url}: {reason}")]
    IssuerUnreachable {
        /// The issuer URL.
        url: String,
        /// The innermost cause, one line.
        reason: String,
    },
    /// The server answered 2xx with a body the CLI cannot read.
    #[error("unexpected response from the admin API: {0}")]
    Protocol(String),
    /// A local file named on the command line cannot be read.
    #[error("cannot read {path}: {reason}")]
    File {
        /// The path as given.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The tokio runtime could not start.
    #[error("cannot start the client runtime: {0}")]
    Runtime(String),
}

impl CliError {
    /// Every failure exits 1; clap already exits 2 for bad arguments.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::FAILURE
    }
}

/// Result alias for client commands.
pub type CliResult<T = ()> = Result<T, CliError>;
