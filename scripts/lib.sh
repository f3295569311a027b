# shellcheck shell=bash
# Shared helpers of scripts/run.sh and scripts/test.sh: install what a fresh
# Debian machine lacks (apt packages, a Rust toolchain) and read .env values.
# Source it; it does nothing on its own.

# Minimum Rust the crate builds with (Cargo.toml rust-version).
PORTCULLIS_MIN_RUST_MINOR=90

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (install sudo or run as root)"
    fi
}

_apt_updated=0

# ensure_packages PKG...: installs the Debian packages that are missing,
# running `apt-get update` once before the first install. Services that a
# fresh install starts (redis-server, nginx) are stopped and disabled again:
# the scripts run their own instances on their own ports.
ensure_packages() {
    local missing=() pkg
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        log "not a Debian-like system (no apt-get): make sure these are installed: $*"
        return 0
    fi
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$_apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    for pkg in "${missing[@]}"; do
        case "$pkg" in
            redis-server | nginx)
                if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
                    as_root systemctl disable --now "$pkg" >/dev/null 2>&1 || true
                elif command -v service >/dev/null 2>&1; then
                    as_root service "$pkg" stop >/dev/null 2>&1 || true
                fi
                ;;
        esac
    done
}

# ensure_rust: a cargo new enough for the crate, installing rustup if needed.
ensure_rust() {
    # shellcheck disable=SC1091
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    local minor=0
    if command -v rustc >/dev/null 2>&1; then
        minor="$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')"
    fi
    if command -v cargo >/dev/null 2>&1 && [ "${minor:-0}" -ge "$PORTCULLIS_MIN_RUST_MINOR" ] 2>/dev/null; then
        return 0
    fi
    if command -v rustup >/dev/null 2>&1; then
        log "updating the Rust toolchain (need 1.$PORTCULLIS_MIN_RUST_MINOR or newer)"
        rustup toolchain install stable --profile minimal
        rustup default stable
    else
        log "installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo is still not on PATH"
}

# ensure_rust_components NAME...: rustup components (rustfmt, clippy) that a
# minimal toolchain lacks.
ensure_rust_components() {
    command -v rustup >/dev/null 2>&1 || return 0
    local installed
    installed="$(rustup component list --installed 2>/dev/null || true)"
    for c in "$@"; do
        grep -q "^$c" <<<"$installed" || rustup component add "$c"
    done
}

# Packages every build needs (a C toolchain and OpenSSL headers for pingora/openssl-sys).
BUILD_PACKAGES=(build-essential ca-certificates curl cmake pkg-config libssl-dev)

# env_value KEY [FILE]: the process environment's KEY if set, else its last
# `KEY=value` line in FILE (default .env), quotes stripped; empty if neither.
env_value() {
    local key="$1" file="${2:-.env}" line
    if [ -n "${!key:-}" ]; then
        printf '%s' "${!key}"
        return 0
    fi
    [ -f "$file" ] || return 0
    line="$(grep -E "^[[:space:]]*(export[[:space:]]+)?${key}=" "$file" | tail -n 1 || true)"
    line="${line#*=}"
    line="${line%$'\r'}"
    case "$line" in
        \"*\") line="${line#\"}"; line="${line%\"}" ;;
        \'*\') line="${line#\'}"; line="${line%\'}" ;;
    esac
    printf '%s' "$line"
}

# random_secret [LEN]: LEN (default 40) random letters and digits.
random_secret() {
    local len="${1:-40}" out=""
    while [ "${#out}" -lt "$len" ]; do
        out="$out$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
    done
    printf '%s' "${out:0:$len}"
}
