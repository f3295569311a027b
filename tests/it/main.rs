//! One integration-test binary: real Redis, real `portcullis serve`
//! processes, real backends, on free loopback ports.

mod harness;

mod admin_api;
mod dataplane;
