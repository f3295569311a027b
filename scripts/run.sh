#!/usr/bin/env bash
# Runs Portcullis on this machine, from nothing: installs what is missing,
# writes .env with fresh secrets on first run, uses the Redis at REDIS_URL when
# one answers and otherwise the embedded single-node store (or, with
# STORE=redis, starts a local Redis), builds the release binary and execs
# `portcullis serve`. With PORTCULLIS_BIN set, that binary is served instead
# and nothing is built (the tests run this script against their debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

if [ -z "${PORTCULLIS_BIN:-}" ]; then
    ensure_packages "${BUILD_PACKAGES[@]}"
    ensure_rust
fi

# --- .env: created once from .env.example with random secrets -------------
if [ ! -f .env ]; then
    [ -f .env.example ] || die ".env.example is missing"
    log "creating .env with fresh REDIS_PASSWORD, ADMIN_TOKEN and SECRET_KEY"
    redis_pw="$(random_secret 32)"
    admin_token="pcl_$(random_secret 43)"
    secret_key="$(random_secret 48)"
    sed -e "s|^REDIS_PASSWORD=.*|REDIS_PASSWORD=${redis_pw}|" \
        -e "s|^ADMIN_TOKEN=.*|ADMIN_TOKEN=${admin_token}|" \
        -e "s|^SECRET_KEY=.*|SECRET_KEY=${secret_key}|" \
        .env.example > .env
    chmod 600 .env
    log "your admin token is in .env (ADMIN_TOKEN); the CLI and the justfile read it from there"
fi

# --- Store: the Redis at REDIS_URL, else the embedded store -----------------
store="$(env_value STORE | tr '[:upper:]' '[:lower:]')"
store_path="$(env_value STORE_PATH)"
store_path="${store_path:-.data/portcullis-store.redb}"
if [ "$store" = embedded ]; then
    log "STORE=embedded: state in $store_path"
else
    ensure_packages redis-tools
    redis_url="$(env_value REDIS_URL)"
    redis_url="${redis_url:-redis://127.0.0.1:6379/0}"
    # redis[s]://[user[:password]@]host[:port][/db]
    hostport="${redis_url#*://}"
    hostport="${hostport%%/*}"
    url_pw=""
    if [[ "$hostport" == *@* ]]; then
        userinfo="${hostport%@*}"
        hostport="${hostport##*@}"
        [[ "$userinfo" == *:* ]] && url_pw="${userinfo#*:}"
    fi
    if [[ "$hostport" == \[*\]* ]]; then # [v6]:port
        redis_host="${hostport%%]*}"; redis_host="${redis_host#[}"
        redis_port="${hostport##*]}"; redis_port="${redis_port#:}"
    else
        redis_host="${hostport%%:*}"
        redis_port="${hostport#"$redis_host"}"; redis_port="${redis_port#:}"
    fi
    redis_port="${redis_port:-6379}"
    redis_pw="${url_pw:-$(env_value REDIS_PASSWORD)}"

    redis_ping() {
        local args=(-h "$redis_host" -p "$redis_port")
        [ -n "$redis_pw" ] && args+=(--no-auth-warning -a "$redis_pw")
        redis-cli "${args[@]}" ping 2>&1 || true
    }

    answer="$(redis_ping | tr '\n' ' ')"
    if [[ "$answer" == *PONG* && "$answer" != *"AUTH failed"* ]]; then
        log "Redis answers at $redis_host:$redis_port"
    elif [[ "$answer" == *NOAUTH* || "$answer" == *WRONGPASS* || "$answer" == *"AUTH failed"* ]]; then
        die "a Redis at $redis_host:$redis_port answers but refuses REDIS_PASSWORD ($answer); fix REDIS_URL/REDIS_PASSWORD in .env or stop that server"
    else
        case "$redis_host" in
            127.0.0.1 | localhost | ::1) ;;
            *) die "no Redis answers at $redis_host:$redis_port ($answer); start it or point REDIS_URL at a running one" ;;
        esac
        if [ "$store" != redis ]; then
            export STORE=embedded
            log "no Redis answers at $redis_host:$redis_port: using the embedded single-node store ($store_path); set STORE=redis in .env to start a local Redis instead"
        fi
    fi
    if [ "$store" = redis ] && [[ "$(redis_ping)" != *PONG* ]]; then
        ensure_packages redis-server
        [ -n "$redis_pw" ] || die "REDIS_PASSWORD is empty in .env: set one so the local Redis is not open"
        data="$ROOT/.data/redis"
        mkdir -p "$data"
        log "starting a local redis-server on 127.0.0.1:$redis_port (data in .data/redis)"
        # The password goes in through stdin as a config file, not the command line.
        printf 'requirepass "%s"\n' "$redis_pw" | redis-server - \
            --bind 127.0.0.1 --port "$redis_port" --daemonize yes \
            --dir "$data" --dbfilename dump.rdb --save "60 1" --appendonly no \
            --logfile "$data/redis.log" --pidfile "$data/redis.pid" >"$data/start.log" 2>&1 ||
            die "redis-server failed to start: $(tr '\n' ' ' <"$data/start.log")"
        for _ in $(seq 1 50); do
            [[ "$(redis_ping)" == *PONG* ]] && break
            sleep 0.2
        done
        [[ "$(redis_ping)" == *PONG* ]] || die "redis-server did not come up; see $data/redis.log"
    fi
fi

# --- Build and run ---------------------------------------------------------
if [ -n "${PORTCULLIS_BIN:-}" ]; then
    bin="$PORTCULLIS_BIN"
    log "serving $bin (PORTCULLIS_BIN; nothing built)"
else
    log "building the release binary (fat LTO: ~7 min on 2 cores the first time, seconds when up to date)"
    OPENSSL_NO_VENDOR=1 cargo build --release
    bin="$ROOT/target/release/portcullis"
fi
http_port="$(env_value HTTP_PORT)"; http_port="${http_port:-80}"
https_port="$(env_value HTTPS_PORT)"; https_port="${https_port:-443}"
if [ "$(id -u)" -ne 0 ] && { [ "$http_port" -lt 1024 ] || [ "$https_port" -lt 1024 ]; }; then
    log "allowing the binary to bind ports below 1024 (HTTP_PORT=$http_port, HTTPS_PORT=$https_port)"
    ensure_packages libcap2-bin
    as_root setcap cap_net_bind_service=+ep "$bin" ||
        log "could not grant cap_net_bind_service; set HTTP_PORT/HTTPS_PORT above 1023 in .env if binding fails"
fi

log "starting portcullis (admin API on $(env_value API_HOST | sed 's/^$/127.0.0.1/'):$(env_value API_PORT | sed 's/^$/9000/'))"
exec "$bin" serve
