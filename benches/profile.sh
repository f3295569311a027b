#!/usr/bin/env bash
# Where does the proxy spend its time per request?
#
# Starts the same setup as benches/run.sh (nginx backend; portcullis with 100
# proxies / 1,000 routes, or the bare pingora floor), drives it with wrk and
#   * perf (default when perf_event_open works): `perf record` on the proxy
#     process only (cpu-clock sampling, DWARF call graphs), then prints CPU per
#     request, the split by DSO (kernel / binary / libc), the top symbols by self
#     time and the top portcullis/pingora frames by inclusive time;
#   * callgrind (fallback, or PROFILE_TOOL=callgrind): runs the proxy under
#     valgrind, zeroes the counters after set-up, sends a fixed request count
#     with curl over one keep-alive connection, prints instructions per request
#     and the top functions by self and inclusive instruction count.
#
# Env: PROFILE_TARGET=portcullis|portcullis-nolog|portcullis-auth|floor|nginx (portcullis; portcullis-nolog =
#      run.sh's (h): request log and access log off; portcullis-auth = run.sh's (e):
#      bench-51.test with auth on and a bearer token; nginx = the reverse proxy (b), perf only), PROFILE_SECONDS (8),
#      PROFILE_CONNECTIONS (50), PROFILE_TOP (30), PROFILE_TOOL=perf|callgrind,
#      PROFILE_REQUESTS (callgrind only, 2000), BENCH_NO_BUILD=1, BENCH_KEEP=1.
set -euo pipefail

# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET=${PROFILE_TARGET:-portcullis}
SECS=${PROFILE_SECONDS:-8}
CONNS=${PROFILE_CONNECTIONS:-50}
TOP=${PROFILE_TOP:-30}
REQS=${PROFILE_REQUESTS:-2000}

trap bench_cleanup EXIT INT TERM
ensure_tools

perf_works() { command -v perf >/dev/null 2>&1 && perf stat -e task-clock -o /dev/null true >/dev/null 2>&1; }

TOOL=${PROFILE_TOOL:-}
if [[ -z $TOOL ]]; then
    if ! perf_works; then
        log "perf missing or not working; trying to install linux-perf"
        sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; } || true
    fi
    if perf_works; then TOOL=perf; else TOOL=callgrind; fi
fi
if [[ $TOOL == callgrind ]] && ! command -v valgrind >/dev/null 2>&1; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
log "profiling $TARGET with $TOOL"

build_binaries
bench_workdir
log "work dir $WORK"
start_backend

if [[ $TOOL == callgrind ]]; then
    export WAIT_PORT_SECONDS=${WAIT_PORT_SECONDS:-300} # start-up under valgrind is slow
    # No periodic full rebuild inside the measured window: under valgrind one costs as
    # much as thousands of requests and would be counted against them.
    export PORTCULLIS_RECONCILE=86400
    wrapper="valgrind --tool=callgrind --callgrind-out-file=$WORK/callgrind.out --dump-instr=no --separate-threads=no"
else
    wrapper=""
fi

case $TARGET in
    portcullis | portcullis-nolog)
        [[ $TARGET == portcullis ]] || PORTCULLIS_ENV="REQUEST_LOG=false ACCESS_LOG=off"
        PORTCULLIS_WRAPPER=$wrapper start_portcullis
        populate_portcullis
        PID=$PORTCULLIS_PID
        URL="http://127.0.0.1:$PC_HTTP_PORT$BENCH_PATH"
        ;;
    portcullis-auth)
        PORTCULLIS_WRAPPER=$wrapper start_portcullis
        populate_portcullis
        enable_proxy_auth "$BENCH_AUTH_HOST"
        TOKEN=$(mint_token "$BENCH_AUTH_HOST")
        BENCH_HOST=$BENCH_AUTH_HOST
        PID=$PORTCULLIS_PID
        URL="http://127.0.0.1:$PC_HTTP_PORT$BENCH_PATH"
        ;;
    floor)
        FLOOR_PORT=$(free_port)
        # shellcheck disable=SC2086
        spawn "$WORK/logs/floor.log" env FLOOR_THREADS=1 $wrapper "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" "127.0.0.1:$BACKEND_PORT"
        PID=$LAST_PID
        wait_port "$FLOOR_PORT" "bench-floor" "$PID"
        URL="http://127.0.0.1:$FLOOR_PORT$BENCH_PATH"
        ;;
    nginx)
        [[ $TOOL == perf ]] || die "PROFILE_TARGET=nginx needs perf"
        start_nginx_proxy
        PID=$(cat /proc/"$NGINX_PROXY_PID"/task/*/children | awk '{print $1}')
        URL="http://127.0.0.1:$NGINX_PROXY_PORT$BENCH_PATH"
        ;;
    *) die "PROFILE_TARGET must be portcullis, portcullis-nolog, portcullis-auth, floor or nginx (the reverse proxy)" ;;
esac
# Request headers for wrk and curl: Host, plus the bearer token for portcullis-auth.
HDRS=(-H "Host: $BENCH_HOST")
[[ -z ${TOKEN:-} ]] || HDRS+=(-H "Authorization: Bearer $TOKEN")
check_1k "$URL" "$BENCH_HOST" "${TOKEN:-}"

# Waits (bounded) until the proxy process stops using CPU, e.g. until the snapshot
# rebuilds triggered by populating have drained (slow under valgrind).
wait_pid_idle() {
    local pid=$1 i a b stat f
    for ((i = 0; i < 300; i++)); do
        stat=$(cat /proc/"$pid"/stat); read -r -a f <<<"${stat##*) }"; a=$((f[11] + f[12]))
        sleep 1
        stat=$(cat /proc/"$pid"/stat); read -r -a f <<<"${stat##*) }"; b=$((f[11] + f[12]))
        ((b - a <= 2)) && return 0
    done
    log "WARNING: $TARGET kept using CPU while idle"
}
wait_pid_idle "$PID"
[[ $TOOL == callgrind ]] || wait_quiet

# Report rows without comments/blank lines and without perf's empty trailing columns.
rows() { grep -v '^#' "$1" | grep -v '^$' | sed -E 's/ +- +- *$//; s/ +$//' | cut -c1-"${PROFILE_WIDTH:-200}" || true; }

# Syscalls per request: tracepoint counts on the proxy process (cheap, unlike strace).
SYSCALLS=(read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait epoll_ctl futex accept4 close
    setsockopt getsockopt getsockname getpeername sched_yield clock_gettime)
syscall_census() {
    local events=() s out=$WORK/syscalls.txt
    for s in "${SYSCALLS[@]}"; do events+=(-e "syscalls:sys_enter_$s"); done
    perf stat -x, "${events[@]}" -e raw_syscalls:sys_enter -e context-switches -e cpu-migrations -p "$PID" -o "$out" -- sleep $((SECS + 1)) &
    local ppid=$!
    BENCH_PIDS+=("$ppid")
    sleep 0.5
    wrk -t1 -c"$CONNS" -d"${SECS}s" "${HDRS[@]}" "$URL" >"$WORK/wrk-syscalls.txt"
    wait "$ppid" || true
    local n
    n=$(awk '/requests in/ {print $1}' "$WORK/wrk-syscalls.txt")
    echo
    echo "### syscalls and context switches per request ($n requests, perf stat tracepoints, no strace slowdown)"
    awk -F, -v n="$n" '!/^#/ && NF > 3 && $1 + 0 > 0 {
        name = $3; sub(/^(raw_)?syscalls:sys_enter_?/, "", name); if (name == "") name = "ALL SYSCALLS";
        printf "  %-14s %6.2f\n", name, $1 / n }' "$out" | sort -k2 -rn
}

if [[ $TOOL == perf ]]; then
    wrk -t1 -c"$CONNS" -d1s "${HDRS[@]}" "$URL" >/dev/null
    log "recording: perf record -e cpu-clock -F 499 --call-graph dwarf,32768 -p $PID, under wrk -t1 -c$CONNS -d${SECS}s"
    perf record -q -e cpu-clock -F 499 --call-graph dwarf,32768 -p "$PID" -o "$WORK/perf.data" -- sleep $((SECS + 1)) 2>"$WORK/logs/perf-record.log" &
    PERF_PID=$!
    BENCH_PIDS+=("$PERF_PID")
    sleep 0.5
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "${HDRS[@]}" "$URL" >"$WORK/wrk.txt"
    wait "$PERF_PID" || true
    requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.txt")
    log "perf report (this takes a while: DWARF unwinding)"
    perf report -i "$WORK/perf.data" --no-children -n --sort dso --stdio -g none 2>/dev/null >"$WORK/report-dso.txt"
    perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null >"$WORK/report-self.txt"
    perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null >"$WORK/report-children.txt"
    total_samples=$(awk '!/^#/ && NF >= 3 {n += $2} END {print n + 0}' "$WORK/report-dso.txt")

    echo
    echo "## $TARGET under wrk -t1 -c$CONNS -d${SECS}s: $rps req/s, $requests requests"
    awk -v n="$total_samples" -v r="$requests" -v s="$SECS" 'BEGIN {
        # cpu-clock at 499 Hz: one sample ~ 2.004 ms of CPU on the proxy process.
        cpu = n / 499; printf "proxy CPU: %.2f s of %d s wall (%.0f%% of one core), %.1f us CPU per request (%d samples)\n", cpu, s, 100 * cpu / s, (r > 0 ? cpu * 1e6 / r : 0), n }'
    echo
    echo "### by DSO (self time)"
    rows "$WORK/report-dso.txt" | head -8
    echo
    echo "### top $TOP symbols by self time"
    rows "$WORK/report-self.txt" | head -"$TOP"
    echo
    echo "### top $TOP frames by inclusive time (application and library frames; kernel and generic future/poll glue left out)"
    rows "$WORK/report-children.txt" | grep -E '\[\.\]' | grep -vE '0xffffffffffffffff|Pin<P> as core::future|poll_fn::PollFn|maybe_done|catch_unwind|AssertUnwindSafe|call_once|UnsafeCell|tokio::runtime::task|clone3|start_thread' |
        head -"$TOP" || true
    echo
    echo "### portcullis frames by inclusive time"
    rows "$WORK/report-children.txt" | grep -F 'portcullis::' | head -"$TOP" || true
    echo
    echo "### kernel: top frames by inclusive time"
    rows "$WORK/report-children.txt" | grep -F '[k]' | head -15 || true
    syscall_census
    log "full reports: $WORK/report-*.txt (kept with BENCH_KEEP=1)"
else
    command -v callgrind_control >/dev/null || die "callgrind_control missing"
    log "zeroing callgrind counters, then $REQS requests over one keep-alive connection"
    callgrind_control --zero "$PID" >/dev/null
    urls=()
    for ((i = 0; i < REQS; i++)); do urls+=("$URL"); done
    curl -s --max-time 600 "${HDRS[@]}" "${urls[@]}" >/dev/null
    callgrind_control --dump=after-requests "$PID" >/dev/null
    sleep 1
    out=$(ls -t "$WORK"/callgrind.out.* | head -1)
    total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(/,/, "", $1); print $1; exit}')
    echo
    echo "## $TARGET under callgrind: $REQS requests (curl, 1 connection)"
    awk -v t="$total" -v r="$REQS" 'BEGIN { printf "%.0f instructions per request (whole process, all threads)\n", t / r }'
    echo
    echo "### top $TOP functions by self instructions"
    # Frames that were on the stack when the counters were zeroed show bogus self cost: left out.
    callgrind_annotate --inclusive=no --threshold=100 "$out" 2>/dev/null | sed -n '/file:function/,$p' | sed 1,2d |
        grep -vE 'clone\.S|start_thread|thread_start|call_once|__rust_begin_short_backtrace|tokio::runtime::(context|scheduler|task|blocking)' |
        sed -E 's|/root/.cargo/registry/src/[^/]*/||; s|/rustc/[0-9a-f]*/library/||' | cut -c1-"${PROFILE_WIDTH:-200}" | head -"$TOP" || true
    echo
    echo "### top $TOP functions by inclusive instructions"
    callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | sed -n '/file:function/,$p' | sed 1,2d |
        grep -vE 'clone\.S|start_thread|thread_start|call_once|__rust_begin_short_backtrace|tokio::runtime::|core/src/future/future.rs' |
        sed -E 's|/root/.cargo/registry/src/[^/]*/||; s|/rustc/[0-9a-f]*/library/||' | cut -c1-"${PROFILE_WIDTH:-200}" | head -"$TOP" || true
    echo
    echo "### portcullis functions by inclusive instructions (per request = Ir / $REQS)"
    callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | sed -n '/file:function/,$p' | sed 1,2d |
        grep -F 'portcullis::' | grep -v ') */work/' |
        awk -v r="$REQS" '{ n = $1; gsub(/,/, "", n); printf "%9.0f/req  %s\n", n / r, $0 }' |
        sed -E 's|/root/.cargo/registry/src/[^/]*/||; s|/rustc/[0-9a-f]*/library/||' | cut -c1-"${PROFILE_WIDTH:-200}" | head -"$TOP" || true
fi
