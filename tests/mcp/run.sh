#!/usr/bin/env bash
# The MCP SDK acceptance test (issue 6): creates tests/mcp/.venv, installs the
# pinned requirements and runs pytest. Needs redis-server and the portcullis
# binary (target/debug/portcullis, or PORTCULLIS_BIN). Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
