#!/usr/bin/env bash
# The OAuth black-box tests (issue 5): creates tests/oauth/.venv with the
# pinned requirements, installs oidc-provider and Node.js 22 (idp/) and the MCP
# conformance suite (conformance/) with `npm ci`, and runs pytest. Needs
# redis-server, npm and the portcullis binary (target/debug/portcullis, or
# PORTCULLIS_BIN). Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/pyharness/venv.sh
source "$here/../pyharness/venv.sh"
ensure_venv "$here"
venv="$here/.venv"
for d in idp conformance; do
  stamp="$here/$d/node_modules/.package-lock.sha"
  want="$(sha256sum "$here/$d/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$here/$d" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
done
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
