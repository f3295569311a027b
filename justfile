# Portcullis tasks. `just run` runs the proxy on a fresh Debian machine;
# `just test` runs every test. `just --list` shows everything.

set dotenv-load := true

export OPENSSL_NO_VENDOR := "1"

# The CLI: the release binary when built, else built first (a first release
# build takes ~7 minutes on 2 cores; `just build` does it ahead of time).
cli := if path_exists(justfile_directory() / "target/release/portcullis") == "true" { quote(justfile_directory() / "target/release/portcullis") } else { "echo 'portcullis: building the release binary first (~7 min on 2 cores; `just build` does it ahead)' >&2 && cargo run --release --quiet --" }

# List the recipes.
default:
    @just --justfile {{ quote(justfile()) }} --list --unsorted

# Install what is missing, create .env, start Redis, build and serve.
run:
    ./scripts/run.sh

# Run every test (fmt and clippy gates, unit, integration, Python suites).
test:
    ./scripts/test.sh

# Build the release binary.
build:
    cargo build --release

# Run the benchmarks.
bench:
    ./benches/run.sh

# Zero-downtime binary upgrade: start `binary` with `serve --upgrade`, then
# have the running portcullis (`old-pid`, default: the oldest one) hand its
# listening sockets over; the old process drains and exits.
upgrade binary="target/release/portcullis" old-pid="":
    #!/usr/bin/env bash
    set -euo pipefail
    sock="${UPGRADE_SOCKET:-/tmp/portcullis-upgrade.sock}"
    old="{{old-pid}}"
    if [ -z "$old" ]; then old="$(pgrep -o -x portcullis)"; fi
    rm -f "$sock"
    "{{binary}}" serve --upgrade &
    new=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || { echo "the new process never opened $sock" >&2; kill "$new"; exit 1; }
    kill -QUIT "$old"
    echo "portcullis $new took over from $old"
    wait "$new"

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

# Create a token, importing VALUE when given (admin); scope is user unless scope=admin.
token-create name email="" scope="" value="":
    {{ cli }} token create {{ quote(name) }} {{ if email == "" { "" } else { "--email " + quote(email) } }} {{ if scope == "" { "" } else { "--scope " + quote(scope) } }} {{ if value == "" { "" } else { "--value " + quote(value) } }}

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

# Issue an ACME certificate for a proxy (attached when issued); staging=1 uses the staging directory.
proxy-cert-generate hostname staging="":
    {{ cli }} proxy cert-generate {{ quote(hostname) }} {{ if staging =~ '^(|0|false|no|off)$' { "" } else { "--staging" } }}

# Serve an existing certificate for a proxy.
proxy-cert-attach hostname cert-name:
    {{ cli }} proxy cert-attach {{ quote(hostname) }} {{ quote(cert-name) }}

# --- Proxy auth and protected resources ----------------------------------------

# Protect a proxy with OAuth (mode: forward|redirect|passthrough); scopes/audiences comma-separated.
proxy-auth-enable hostname auth-proxy mode allowed-scopes="" allowed-audiences="":
    {{ cli }} proxy auth-enable {{ quote(hostname) }} {{ quote(auth-proxy) }} {{ quote(mode) }} {{ if allowed-scopes == "" { "" } else { "--scopes " + quote(allowed-scopes) } }} {{ if allowed-audiences == "" { "" } else { "--audiences " + quote(allowed-audiences) } }}

# Turn OAuth off for a proxy.
proxy-auth-disable hostname:
    {{ cli }} proxy auth-disable {{ quote(hostname) }}

# Allowlists: users "a,b" | "*" (anyone) | "" (global OAUTH_ALLOWED_GITHUB_USERS); other lists: "" = unchanged, "null" = reset.
proxy-auth-config hostname users="" emails="" groups="" allowed-scopes="" allowed-audiences="":
    {{ cli }} proxy auth-config {{ quote(hostname) }} --users {{ quote(users) }} {{ if emails == "" { "" } else { "--emails " + quote(emails) } }} {{ if groups == "" { "" } else { "--groups " + quote(groups) } }} {{ if allowed-scopes == "" { "" } else { "--scopes " + quote(allowed-scopes) } }} {{ if allowed-audiences == "" { "" } else { "--audiences " + quote(allowed-audiences) } }}

# Show a proxy's auth settings.
proxy-auth-show hostname:
    {{ cli }} proxy auth-show {{ quote(hostname) }}

# Protected resource metadata (RFC 9728): lists comma-separated, booleans true/false, server-info/custom-metadata JSON objects.
proxy-resource-set hostname endpoint="/mcp" scopes="" stateful="" override-backend="" bearer-methods="" doc-suffix="" server-info="" custom-metadata="":
    {{ cli }} proxy resource-set {{ quote(hostname) }} --endpoint {{ quote(endpoint) }} {{ if scopes == "" { "" } else { "--scopes " + quote(scopes) } }} {{ if stateful == "" { "" } else { "--stateful=" + quote(stateful) } }} {{ if override-backend == "" { "" } else { "--override-backend=" + quote(override-backend) } }} {{ if bearer-methods == "" { "" } else { "--bearer-methods " + quote(bearer-methods) } }} {{ if doc-suffix == "" { "" } else { "--doc-suffix " + quote(doc-suffix) } }} {{ if server-info == "" { "" } else { "--server-info " + quote(server-info) } }} {{ if custom-metadata == "" { "" } else { "--custom-metadata " + quote(custom-metadata) } }}

# Remove a proxy's protected resource metadata.
proxy-resource-clear hostname:
    {{ cli }} proxy resource-clear {{ quote(hostname) }}

# Show a proxy's protected resource settings.
proxy-resource-show hostname:
    {{ cli }} proxy resource-show {{ quote(hostname) }}

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

# Change route fields: just route-update ID priority=80 'methods=["GET"]'
[positional-arguments]
route-update route-id +sets:
    #!/usr/bin/env bash
    set -euo pipefail
    id="$1"; shift
    args=()
    for s in "$@"; do args+=(--set "$s"); done
    {{ cli }} route update "$id" "${args[@]}"

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

# Request an ACME certificate for one domain; staging=1 uses the staging directory. Then: just cert-status NAME wait
cert-create name domain email="" staging="":
    {{ cli }} cert create {{ quote(name) }} {{ quote(domain) }} {{ if email == "" { "" } else { "--email " + quote(email) } }} {{ if staging =~ '^(|0|false|no|off)$' { "" } else { "--staging" } }}

# Request one ACME certificate for several domains (comma-separated).
cert-create-multi name domains email="" staging="":
    {{ cli }} cert create-multi {{ quote(name) }} {{ quote(domains) }} {{ if email == "" { "" } else { "--email " + quote(email) } }} {{ if staging =~ '^(|0|false|no|off)$' { "" } else { "--staging" } }}

# Issuance status; wait=1 polls until issued or failed (exit 1 on failed), for up to timeout seconds.
cert-status name wait="" timeout="300":
    {{ cli }} cert status {{ quote(name) }} {{ if wait =~ '^(|0|false|no|off)$' { "" } else { "--wait --timeout " + quote(timeout) } }}

# Renew an ACME certificate now; wait=1 follows it to the end.
cert-renew name wait="":
    {{ cli }} cert renew {{ quote(name) }} {{ if wait =~ '^(|0|false|no|off)$' { "" } else { "--wait" } }}

# Re-issue a staging certificate from the production directory; wait=1 follows it.
cert-to-production name wait="":
    {{ cli }} cert to-production {{ quote(name) }} {{ if wait =~ '^(|0|false|no|off)$' { "" } else { "--wait" } }}

# --- Services (Docker, external, internal) and ports ---------------------------
# `token` arguments call as that token instead of ADMIN_TOKEN / the stored login.

# Create a Docker service from an image (or a Dockerfile under DOCKER_BUILD_DIR); port "" allocates one.
service-create name image dockerfile="" port="" token="" memory="" cpu="" auto-proxy="false":
    {{ cli }} service create {{ quote(name) }} {{ quote(image) }} {{ if dockerfile == "" { "" } else { "--dockerfile " + quote(dockerfile) } }} {{ if port == "" { "" } else { "--port " + quote(port) } }} {{ if token == "" { "" } else { "--token " + quote(token) } }} {{ if memory == "" { "" } else { "--memory " + quote(memory) } }} {{ if cpu == "" { "" } else { "--cpu " + quote(cpu) } }} {{ if auto-proxy =~ '^(|0|false|no|off)$' { "" } else { "--auto-proxy" } }}

# Create a Docker service with its port published on bind-address.
service-create-exposed name image port bind-address token="" memory="" cpu="":
    {{ cli }} service create-exposed {{ quote(name) }} {{ quote(image) }} {{ quote(port) }} {{ quote(bind-address) }} {{ if token == "" { "" } else { "--token " + quote(token) } }} {{ if memory == "" { "" } else { "--memory " + quote(memory) } }} {{ if cpu == "" { "" } else { "--cpu " + quote(cpu) } }}

# List Docker services (owned-only=true: only the caller's).
service-list owned-only="false" token="":
    {{ cli }} service list {{ if owned-only =~ '^(|0|false|no|off)$' { "" } else { "--owned-only" } }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# Show a Docker service.
service-show name:
    {{ cli }} service show {{ quote(name) }}

# Delete a Docker service, its container, ports and (unless delete-proxy=false) its proxies.
service-delete name token="" force="false" delete-proxy="true":
    {{ cli }} service delete {{ quote(name) }} {{ if token == "" { "" } else { "--token " + quote(token) } }} {{ if force =~ '^(|0|false|no|off)$' { "" } else { "--force" } }} {{ if delete-proxy =~ '^(0|false|no|off)$' { "--keep-proxy" } else { "" } }}

# Start a Docker service.
service-start name token="":
    {{ cli }} service start {{ quote(name) }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# Stop a Docker service (its proxy answers 503 until started).
service-stop name token="":
    {{ cli }} service stop {{ quote(name) }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# Restart a Docker service.
service-restart name token="":
    {{ cli }} service restart {{ quote(name) }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# A service's output: the last lines, with timestamps=true prefixed by time.
service-logs name lines="100" timestamps="false":
    {{ cli }} service logs {{ quote(name) }} --lines {{ quote(lines) }} {{ if timestamps =~ '^(|0|false|no|off)$' { "" } else { "--timestamps" } }}

# CPU, memory, network and processes of a service, one sample.
service-stats name:
    {{ cli }} service stats {{ quote(name) }}

# Create a proxy for a service (hostname "" = NAME.BASE_DOMAIN).
service-proxy-create name hostname="" enable-https="false" token="":
    {{ cli }} service proxy-create {{ quote(name) }} {{ if hostname == "" { "" } else { "--hostname " + quote(hostname) } }} {{ if enable-https =~ '^(|0|false|no|off)$' { "" } else { "--https" } }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# Remove orphan containers and stale port claims (admin).
service-cleanup:
    {{ cli }} service cleanup

# Register (or replace) an external service URL (route target type `service`).
service-register name target-url token="" description="":
    {{ cli }} service register {{ quote(name) }} {{ quote(target-url) }} {{ if token == "" { "" } else { "--token " + quote(token) } }} {{ if description == "" { "" } else { "--description " + quote(description) } }}

# List external services (with the built-in api).
service-list-external:
    {{ cli }} service list-external

# Show an external service.
service-show-external name:
    {{ cli }} service show-external {{ quote(name) }}

# Change an external service's URL and description.
service-update-external name target-url token="" description="":
    {{ cli }} service update-external {{ quote(name) }} {{ quote(target-url) }} {{ if token == "" { "" } else { "--token " + quote(token) } }} {{ if description == "" { "" } else { "--description " + quote(description) } }}

# Remove an external service.
service-unregister name token="":
    {{ cli }} service unregister {{ quote(name) }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# Every service: Docker, external and internal (type: docker|external|internal).
service-list-all type="":
    {{ cli }} service list-all {{ if type == "" { "" } else { "--type " + quote(type) } }}

# Add a port to a service.
service-port-add name port bind-address="" source-token="" token="":
    {{ cli }} service port-add {{ quote(name) }} {{ quote(port) }} {{ if bind-address == "" { "" } else { "--bind " + quote(bind-address) } }} {{ if source-token == "" { "" } else { "--source-token " + quote(source-token) } }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# Remove a port from a service.
service-port-remove name port-name token="":
    {{ cli }} service port-remove {{ quote(name) }} {{ quote(port-name) }} {{ if token == "" { "" } else { "--token " + quote(token) } }}

# A service's ports.
service-port-list name:
    {{ cli }} service port-list {{ quote(name) }}

# Whether a port is free for a service.
service-port-check port bind-address="":
    {{ cli }} service port-check {{ quote(port) }} {{ if bind-address == "" { "" } else { "--bind " + quote(bind-address) } }}

# Every allocated port (available-only=true: the ranges and what is free).
service-ports-global available-only="false":
    {{ cli }} service ports-global {{ if available-only =~ '^(|0|false|no|off)$' { "" } else { "--available-only" } }}

# --- Protected resource registry ----------------------------------------------

# List registered protected resources.
resource-list:
    {{ cli }} resource list

# Show a protected resource.
resource-show uri:
    {{ cli }} resource show {{ quote(uri) }}

# Register a protected resource served by a proxy; scopes comma-separated.
resource-register uri proxy name scopes="":
    {{ cli }} resource register {{ quote(uri) }} {{ quote(proxy) }} {{ quote(name) }} {{ if scopes == "" { "" } else { "--scopes " + quote(scopes) } }}

# Change resource fields: just resource-update URI name=Tools 'scopes=["mcp"]'
[positional-arguments]
resource-update uri +sets:
    #!/usr/bin/env bash
    set -euo pipefail
    uri="$1"; shift
    args=()
    for s in "$@"; do args+=(--set "$s"); done
    {{ cli }} resource update "$uri" "${args[@]}"

# Remove a protected resource.
resource-delete uri:
    {{ cli }} resource delete {{ quote(uri) }}

# Check a token against a resource (exit 1 when not valid).
resource-validate-token uri token:
    {{ cli }} resource validate-token {{ quote(uri) }} {{ quote(token) }}

alias resource-validate := resource-validate-token

# Register every proxy that has protected resource settings.
resource-auto-register:
    {{ cli }} resource auto-register

# --- OAuth --------------------------------------------------------------------

# Log in with OAuth (device flow); flags: --issuer URL --scope "admin user mcp" --resource URI
[positional-arguments]
login *flags:
    {{ cli }} login "$@"

# Delete the stored login.
logout:
    {{ cli }} logout

# Show the stored login's claims.
whoami:
    {{ cli }} whoami

# List registered OAuth clients.
oauth-clients:
    {{ cli }} oauth clients

# Show an OAuth client.
oauth-client-show client-id:
    {{ cli }} oauth client {{ quote(client-id) }}

# Delete an OAuth client.
oauth-client-delete client-id:
    {{ cli }} oauth delete-client {{ quote(client-id) }}

# Active access tokens of one client.
oauth-client-tokens client-id:
    {{ cli }} oauth client-tokens {{ quote(client-id) }}

# Active access tokens.
oauth-tokens:
    {{ cli }} oauth tokens

# Show one access token by jti.
oauth-token-show jti:
    {{ cli }} oauth token {{ quote(jti) }}

# Revoke an access token by jti.
oauth-token-revoke jti:
    {{ cli }} oauth revoke-token {{ quote(jti) }}

# Login sessions (token families).
oauth-sessions:
    {{ cli }} oauth sessions

# Revoke a session (every token of the family).
oauth-session-revoke session-id:
    {{ cli }} oauth revoke-session {{ quote(session-id) }}

# Rotate the token signing key.
oauth-keys-rotate:
    {{ cli }} oauth rotate-keys

# Token and client counts.
oauth-metrics:
    {{ cli }} oauth metrics

# Issuer, login provider and signing key.
oauth-health:
    {{ cli }} oauth health

# --- Request logs ---------------------------------------------------------------

# Latest requests (newest first).
logs hours="" limit="":
    {{ cli }} logs {{ if hours == "" { "" } else { "--hours " + quote(hours) } }} {{ if limit == "" { "" } else { "--limit " + quote(limit) } }}

# Requests from one client IP.
logs-ip ip hours="" limit="":
    {{ cli }} logs ip {{ quote(ip) }} {{ if hours == "" { "" } else { "--hours " + quote(hours) } }} {{ if limit == "" { "" } else { "--limit " + quote(limit) } }}

# Requests to one hostname.
logs-host hostname hours="":
    {{ cli }} logs host {{ quote(hostname) }} {{ if hours == "" { "" } else { "--hours " + quote(hours) } }}

# Requests and OAuth steps of one OAuth client.
logs-client client-id hours="":
    {{ cli }} logs client {{ quote(client-id) }} {{ if hours == "" { "" } else { "--hours " + quote(hours) } }}

# Search: free text plus flags (--host, --user, --status 4xx, --method, --path, --ip, --client-id, --min-ms, --hours).
[positional-arguments]
logs-search *args:
    {{ cli }} logs search "$@"

# Recent errors (4xx/5xx and failed OAuth steps).
logs-errors hours="" limit="":
    {{ cli }} logs errors {{ if hours == "" { "" } else { "--hours " + quote(hours) } }} {{ if limit == "" { "" } else { "--limit " + quote(limit) } }}

# Follow new requests live (flags as for logs-search).
[positional-arguments]
logs-follow *args:
    {{ cli }} logs follow "$@"

# OAuth flow steps, optionally from one IP.
logs-oauth ip="" hours="":
    {{ cli }} logs oauth {{ if ip == "" { "" } else { quote(ip) } }} {{ if hours == "" { "" } else { "--hours " + quote(hours) } }}

# Hourly counts, error rates, latency percentiles and unique visitors per host.
logs-stats hours="":
    {{ cli }} logs stats {{ if hours == "" { "" } else { "--hours " + quote(hours) } }}

# --- Shell completion -------------------------------------------------------------

# A completion script: bash, zsh, fish, elvish or powershell (e.g. `just completion bash > /etc/bash_completion.d/portcullis`).
completion shell:
    {{ cli }} completion {{ quote(shell) }}
