#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests (real Redis, real
# `portcullis serve`, real backends) and benches compiled as tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" redis-server nginx wrk pebble
ensure_rust

OPENSSL_NO_VENDOR=1 cargo test --all-targets 2>&1

# The official MCP Python SDK through a protected proxy (issue 6).
tests/mcp/run.sh
