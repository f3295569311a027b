//! One integration-test binary: real Redis, real `portcullis serve`
//! processes, real backends, on free loopback ports.

mod harness;

mod acme;
mod admin_api;
mod admin_auth;
mod admin_bad_input;
mod admin_events;
mod admin_startup;
mod auth;
mod dataplane;
