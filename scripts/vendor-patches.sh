#!/usr/bin/env bash
# The vendored pingora crates are their crates.io release plus the patch files
# in vendor/patches/CRATE/ (applied in name order). This re-applies them to
# the pristine release from ~/.cargo/registry (fetched with cargo when it is
# not there), pinned by the release's checksum and upstream commit in
# vendor/patches/CRATE/UPSTREAM, and diffs the result against vendor/CRATE:
# a change to vendor/ that is not in a patch file (or the reverse) fails.
#
#   scripts/vendor-patches.sh [check]       check every vendored crate
#   scripts/vendor-patches.sh update CRATE  rewrite the last patch file of
#                                           CRATE so the patches give vendor/CRATE
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# pristine CRATE VERSION: prints the directory of the unpacked crates.io release.
pristine() {
    local crate=$1 version=$2 home=${CARGO_HOME:-$HOME/.cargo} dir tmp
    dir=$(find "$home/registry/src" -maxdepth 2 -type d -name "$crate-$version" 2>/dev/null | head -n 1)
    if [ -z "$dir" ]; then
        # The workspace patches the crate, so cargo never fetched the release:
        # a throw-away package that depends on it alone does.
        tmp=$(mktemp -d)
        mkdir -p "$tmp/src"
        printf '[package]\nname = "fetch-pristine"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n%s = "=%s"\n' \
            "$crate" "$version" >"$tmp/Cargo.toml"
        echo 'fn main() {}' >"$tmp/src/main.rs"
        (cd "$tmp" && cargo fetch --quiet) >&2 || die "cannot fetch $crate $version"
        rm -rf "$tmp"
        dir=$(find "$home/registry/src" -maxdepth 2 -type d -name "$crate-$version" | head -n 1)
    fi
    [ -n "$dir" ] || die "$crate $version is not in $home/registry"
    printf '%s\n' "$dir"
}

# checksum CRATE VERSION: sha256 of the downloaded .crate (crates.io's checksum).
checksum() {
    local home=${CARGO_HOME:-$HOME/.cargo} file
    file=$(find "$home/registry/cache" -maxdepth 2 -name "$1-$2.crate" | head -n 1)
    [ -n "$file" ] || die "$1-$2.crate is not in $home/registry/cache"
    sha256sum "$file" | cut -d' ' -f1
}

# rebuild CRATE: prints a directory holding the pristine release, trimmed as
# UPSTREAM says, with every patch applied (the last one left out with
# SKIP_LAST=1), as a git repository whose one commit is the trimmed release.
rebuild() {
    local crate=$1 meta=vendor/patches/$1 src work p VERSION CHECKSUM COMMIT TRIM
    # shellcheck source=/dev/null
    . "$meta/UPSTREAM"
    src=$(pristine "$crate" "$VERSION")
    [ "$(checksum "$crate" "$VERSION")" = "$CHECKSUM" ] || die "$crate $VERSION: checksum is not the pinned $CHECKSUM"
    grep -q "\"sha1\": \"$COMMIT\"" "$src/.cargo_vcs_info.json" || die "$crate $VERSION: not built from upstream commit $COMMIT"
    work=$(mktemp -d)
    cp -R "$src/." "$work/"
    for p in $TRIM; do rm -rf "${work:?}/$p"; done
    git -C "$work" init -q
    git -C "$work" add -A
    git -C "$work" -c user.name=pristine -c user.email=pristine@localhost commit -qm "$crate $VERSION" --no-gpg-sign
    local patches=("$meta"/*.patch)
    [ "${SKIP_LAST:-0}" = 1 ] && unset 'patches[-1]'
    for p in "${patches[@]}"; do
        git -C "$work" apply --whitespace=nowarn "$PWD/$p" || die "$p does not apply to $crate $VERSION"
    done
    printf '%s\n' "$work"
}

check() {
    local meta crate work failed=0
    for meta in vendor/patches/*/; do
        crate=$(basename "$meta")
        work=$(rebuild "$crate")
        if diff -ruN --exclude=.git --exclude=PATCHED.md "$work" "vendor/$crate" >"$work.diff"; then
            printf 'vendor/%s = %s %s + %s\n' "$crate" "$crate" "$(. "$meta/UPSTREAM"; echo "$VERSION")" \
                "$(cd "$meta" && echo ./*.patch | sed 's|\./||g')"
        else
            cat "$work.diff" >&2
            printf 'error: vendor/%s differs from its release plus vendor/patches/%s (above); run scripts/vendor-patches.sh update %s\n' \
                "$crate" "$crate" "$crate" >&2
            failed=1
        fi
        rm -rf "$work" "$work.diff"
    done
    return "$failed"
}

update() {
    local crate=${1:?usage: update CRATE} work last
    [ -d "vendor/patches/$crate" ] || die "no vendor/patches/$crate"
    last=$(find "vendor/patches/$crate" -name '*.patch' | sort | tail -n 1)
    work=$(SKIP_LAST=1 rebuild "$crate")
    git -C "$work" add -A
    git -C "$work" -c user.name=pristine -c user.email=pristine@localhost commit -qm "before $last" --no-gpg-sign --allow-empty
    find "$work" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
    cp -R "vendor/$crate/." "$work/"
    rm -f "$work/PATCHED.md"
    git -C "$work" add -A
    # Keep the patch's own description (the lines before the first diff).
    { sed '/^diff --git /,$d' "$last"; git -C "$work" diff --cached --no-color HEAD; } >"$last.new"
    mv "$last.new" "$last"
    rm -rf "$work"
    printf 'rewrote %s\n' "$last"
}

case "${1:-check}" in
    check) check ;;
    update) update "${2:-}" ;;
    *) die "usage: $0 [check | update CRATE]" ;;
esac
