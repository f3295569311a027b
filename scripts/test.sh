#!/usr/bin/env bash
# Runs every test: `cargo fmt --check` and clippy with warnings as errors,
# unit tests, the integration tests (real Redis, real `portcullis serve`, real
# backends), and the Python suites against the built binary (tests/mcp,
# tests/api, tests/oauth; a skip or xfail fails them). The bench floor is compiled here;
# `just bench` runs the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# prometheus: its promtool lints /metrics (tests/it/request_logs.rs).
ensure_packages "${BUILD_PACKAGES[@]}" redis-server nginx wrk pebble haproxy python3 python3-venv prometheus docker.io busybox-static
command -v npm >/dev/null 2>&1 || ensure_packages nodejs npm
ensure_rust
ensure_rust_components rustfmt clippy

# Style and lint gates first: they fail in seconds, the suites take minutes.
cargo fmt --all -- --check
# The vendored pingora crates are their release plus the patch files, no more.
scripts/vendor-patches.sh
OPENSSL_NO_VENDOR=1 cargo clippy --all-targets -- -D warnings 2>&1

OPENSSL_NO_VENDOR=1 cargo test --all-targets 2>&1

# The official MCP Python SDK through a protected proxy (issue 6) and against
# our own /mcp, and the MCP conformance suite's server mode (issue 16).
tests/mcp/run.sh

# The API's OpenAPI document (issue 15): validated as OpenAPI 3.1
# (openapi-spec-validator), and schemathesis fuzzing the live API with an
# admin and a user token (no 5xx, every answer matches its schema).
tests/api/run.sh

# The OAuth authorization server, black-box (issue 5): authlib + httpx against
# the binary, the real oidc-provider as IdP, a GitHub stand-in, and the MCP
# conformance suite's authorization mode.
tests/oauth/run.sh
