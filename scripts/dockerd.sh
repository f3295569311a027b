#!/usr/bin/env bash
# A private Docker engine for the service tests (issue 18): dockerd on a unix
# socket under DIR, host networking only (no bridge, no iptables: the tests
# may not touch 172.17.x.x), and a `busybox:latest` image imported from
# Debian's busybox-static (no registry is reachable).
#
#   scripts/dockerd.sh start DIR [WATCH_PID]
#       starts the engine, imports the image, prints `unix://DIR/docker.sock`.
#       With WATCH_PID, a watchdog stops everything once that process exits
#       (the test binary), so no container or daemon outlives a test run.
#   scripts/dockerd.sh stop DIR
#       removes every container, stops the daemon by its pid, unmounts what
#       it left and deletes DIR.
set -euo pipefail

die() { printf 'dockerd.sh: %s\n' "$*" >&2; exit 1; }

start() {
    local dir="$1" watch="${2:-}"
    command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed (Debian package docker.io)"
    command -v docker >/dev/null 2>&1 || die "docker CLI is not installed (Debian package docker.io)"
    local bb
    bb="$(command -v busybox || true)"
    [ -n "$bb" ] || die "busybox is not installed (Debian package busybox-static)"
    mkdir -p "$dir"
    local sock="unix://$dir/docker.sock"
    dockerd --host "$sock" --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/dockerd.own-pid"
    local i
    for i in $(seq 1 300); do
        if docker -H "$sock" version >/dev/null 2>&1; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || die "dockerd exited: $(tail -5 "$dir/dockerd.log")"
        sleep 0.1
    done
    docker -H "$sock" version >/dev/null 2>&1 || die "dockerd did not answer in 30 s: $(tail -5 "$dir/dockerd.log")"
    local root="$dir/image-root"
    mkdir -p "$root/bin" "$root/tmp" "$root/www"
    cp "$bb" "$root/bin/busybox"
    ln -sf busybox "$root/bin/sh"
    ln -sf busybox "$root/bin/httpd"
    tar -C "$root" -cf "$dir/busybox.tar" .
    docker -H "$sock" import "$dir/busybox.tar" busybox:latest >/dev/null
    if [ -n "$watch" ]; then
        # setsid: the watchdog must not die with the test binary's process group.
        setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" stop "$3"' _ "$watch" "$0" "$dir" \
            >/dev/null 2>&1 </dev/null &
    fi
    echo "$sock"
}

stop() {
    local dir="$1"
    local sock="unix://$dir/docker.sock"
    [ -d "$dir" ] || return 0
    if docker -H "$sock" version >/dev/null 2>&1; then
        local ids
        ids="$(docker -H "$sock" ps -aq || true)"
        [ -z "$ids" ] || docker -H "$sock" rm -f $ids >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/dockerd.own-pid" ]; then
        local pid
        pid="$(cat "$dir/dockerd.own-pid")"
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    umount "$dir/exec/netns/default" 2>/dev/null || true
    local m
    for m in $({ grep -o " $dir/[^ ]*" /proc/mounts 2>/dev/null || true; } | sort -r); do
        umount "$m" 2>/dev/null || true
    done
    rm -rf "$dir"
}

case "${1:-}" in
    start) [ $# -ge 2 ] || die "usage: $0 start DIR [WATCH_PID]"; start "$2" "${3:-}" ;;
    stop) [ $# -ge 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) die "usage: $0 start DIR [WATCH_PID] | stop DIR" ;;
esac
