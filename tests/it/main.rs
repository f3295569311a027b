//! One integration-test binary: real Redis, real `portcullis serve`
//! processes, real backends, on free loopback ports.

// Tests and their harness fail loudly on a broken set-up: unwrap is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod acme;
mod acme_ops;
mod admin_api;
mod admin_auth;
mod admin_bad_input;
mod admin_events;
mod admin_matrix;
mod admin_startup;
mod auth;
mod auth_options;
mod cli;
mod cli_certs;
mod cli_docker;
mod cli_login;
mod cli_oauth;
mod cli_proxy_auth;
mod cli_services;
mod cli_tokens;
mod dataplane;
mod edge_limits;
mod edge_paths;
mod embedded_store;
mod forwarded;
mod key_refresh;
mod key_rotation;
mod lifecycle;
mod mcp_policy;
mod newcomer;
mod oauth_failures;
mod openapi;
mod reliability;
mod reliability_changes;
mod request_logs;
mod resilience;
mod services;
mod services_access;
mod services_build;
mod services_mcp;
mod smuggling;
mod store_conformance;
mod store_directory;
mod tenant;
mod typed_requests;
