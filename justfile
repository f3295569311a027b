# Portcullis tasks. `just run` runs the proxy on a fresh Debian machine;
# `just test` runs every test. `just --list` shows everything.

set dotenv-load := true

export OPENSSL_NO_VENDOR := "1"

# The CLI: the release binary when built, else built and run through cargo.
cli := if path_exists(justfile_directory() / "target/release/portcullis") == "true" { quote(justfile_directory() / "target/release/portcullis") } else { "cargo run --release --quiet --" }

# List the recipes.
default:
    @just --list --unsorted

# Install what is missing, create .env, start Redis, build and serve.
run:
    ./scripts/run.sh

# Run every test (unit, integration, benches as tests).
test:
    ./scripts/test.sh

# Build the release binary.
build:
    cargo build --release

# Run the benchmarks.
bench:
    ./benches/run.sh

# Start portcullis and Redis with docker compose.
up:
    docker compose up -d

# Stop the docker compose stack.
down:
    docker compose down

# redis-cli against REDIS_URL (password from the URL or REDIS_PASSWORD).
[positional-arguments]
redis-cli *args:
    #!/usr/bin/env bash
    set -euo pipefail
    url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
    auth=()
    if [[ "${url#*://}" != *@* && -n "${REDIS_PASSWORD:-}" ]]; then auth=(--no-auth-warning -a "$REDIS_PASSWORD"); fi
    exec redis-cli -u "$url" "${auth[@]}" "$@"

# --- Tokens -------------------------------------------------------------------

# Generate a token (printed once); scope is user unless scope=admin.
token-generate name email="" scope="":
    {{ cli }} token generate {{ quote(name) }} {{ if email == "" { "" } else { "--email " + quote(email) } }} {{ if scope == "" { "" } else { "--scope " + quote(scope) } }}

# Show a token.
token-show name:
    {{ cli }} token show {{ quote(name) }}

# List tokens.
token-list:
    {{ cli }} token list

# Delete a token and everything it owns.
token-delete name:
    {{ cli }} token delete {{ quote(name) }}

# Print a token's value (admin).
token-reveal name:
    {{ cli }} token reveal {{ quote(name) }}

# Show the token in use (ADMIN_TOKEN).
token-info:
    {{ cli }} token info

# Set the certificate e-mail of token NAME.
token-email-update name email:
    {{ cli }} token email --name {{ quote(name) }} {{ quote(email) }}

# --- Proxies ------------------------------------------------------------------

# Create a proxy; flags: --cert-name N --no-preserve-host --no-http --no-https --insecure-upstream --header K=V --response-header K=V --set FIELD=JSON
[positional-arguments]
proxy-create hostname target-url *flags:
    {{ cli }} proxy create "$@"

# List proxies.
proxy-list:
    {{ cli }} proxy list

# Show a proxy.
proxy-show hostname:
    {{ cli }} proxy show {{ quote(hostname) }}

# Change proxy fields: just proxy-update HOST enabled=false 'custom_headers={"X-A":"1"}'
[positional-arguments]
proxy-update hostname +sets:
    #!/usr/bin/env bash
    set -euo pipefail
    host="$1"; shift
    args=() raw=0
    for s in "$@"; do
        if [[ $raw == 1 || "$s" == --* ]]; then args+=("$s"); else args+=(--set "$s"); fi
        if [[ "$s" == --set ]]; then raw=1; else raw=0; fi
    done
    {{ cli }} proxy update "$host" "${args[@]}"

# Delete a proxy.
proxy-delete hostname:
    {{ cli }} proxy delete {{ quote(hostname) }}

# Enable a proxy.
proxy-enable hostname:
    {{ cli }} proxy enable {{ quote(hostname) }}

# Disable a proxy.
proxy-disable hostname:
    {{ cli }} proxy disable {{ quote(hostname) }}

# --- Routes -------------------------------------------------------------------

# List routes.
route-list:
    {{ cli }} route list

# Show a route.
route-show route-id:
    {{ cli }} route show {{ quote(route-id) }}

# Create a route (target-type: port|service|hostname|url); flags: --id --priority N --methods GET,POST --regex --description D --scope S --proxies a,b --disabled
[positional-arguments]
route-create path target-type target-value *flags:
    {{ cli }} route create "$@"

# Create a route that applies to every proxy.
[positional-arguments]
route-create-global path target-type target-value *flags:
    {{ cli }} route create "$@" --scope global

# Create a route for the given proxies (comma-separated).
[positional-arguments]
route-create-proxy path target-type target-value proxies *flags:
    #!/usr/bin/env bash
    set -euo pipefail
    path="$1" ttype="$2" tvalue="$3" proxies="$4"; shift 4
    {{ cli }} route create "$path" "$ttype" "$tvalue" --scope proxy --proxies "$proxies" "$@"

# Delete a route.
route-delete route-id:
    {{ cli }} route delete {{ quote(route-id) }}

# Print the route table.
route-formatted:
    {{ cli }} route formatted

# --- Certificates -------------------------------------------------------------

# List certificates.
cert-list:
    {{ cli }} cert list

# Show a certificate; pem=1 prints only the PEM chain.
cert-show name pem="":
    {{ cli }} cert show {{ quote(name) }} {{ if pem == "" { "" } else { "--pem" } }}

# Upload a certificate chain and key from PEM files.
cert-upload name cert key email="":
    {{ cli }} cert upload {{ quote(name) }} --cert {{ quote(cert) }} --key {{ quote(key) }} {{ if email == "" { "" } else { "--email " + quote(email) } }}

# Delete a certificate.
cert-delete name:
    {{ cli }} cert delete {{ quote(name) }}

# --- External services --------------------------------------------------------

# Register a named service URL (route target type `service`).
service-register name url:
    {{ cli }} service register {{ quote(name) }} {{ quote(url) }}

# List named services.
service-list:
    {{ cli }} service list

# Remove a named service.
service-unregister name:
    {{ cli }} service delete {{ quote(name) }}
