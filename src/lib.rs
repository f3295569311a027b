//! Portcullis: an OAuth- and MCP-aware edge proxy on Pingora.
//!
//! `serve` runs the data plane (`proxy`, reading an immutable `snapshot`) and
//! the control plane (`admin` over `manage`) in one process; the other
//! subcommands (`cli`) are clients of the admin API.
#![forbid(unsafe_code)]

pub mod acme;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod manage;
pub mod mcp;
pub mod metrics;
pub mod model;
pub mod oauth;
pub mod proxy;
pub mod reqlog;
pub mod secrets;
pub mod server;
pub mod services;
pub mod snapshot;
pub mod store;
pub mod table;
pub mod tls;
