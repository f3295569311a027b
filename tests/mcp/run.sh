#!/usr/bin/env bash
# The MCP suites: the official MCP Python SDK through a protected proxy
# (issue 6) and against Portcullis' own /mcp (issue 16), and the MCP
# conformance suite's server mode against /mcp. Creates tests/mcp/.venv,
# installs the pinned requirements, Node.js 22 and the conformance suite
# (`npm ci` in tests/oauth/idp and tests/oauth/conformance, shared with the
# OAuth suite), and runs pytest. Needs redis-server, npm and the portcullis
# binary (target/debug/portcullis, or PORTCULLIS_BIN). Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/pyharness/venv.sh
source "$here/../pyharness/venv.sh"
ensure_venv "$here"
venv="$here/.venv"
for d in idp conformance; do
  dir="$here/../oauth/$d"
  stamp="$dir/node_modules/.package-lock.sha"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
done
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
