#!/usr/bin/env bash
# The MCP SDK acceptance test (issue 6): creates tests/mcp/.venv, installs the
# pinned requirements and runs pytest. Needs redis-server and the portcullis
# binary (target/debug/portcullis, or PORTCULLIS_BIN). Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/pyharness/venv.sh
source "$here/../pyharness/venv.sh"
ensure_venv "$here"
venv="$here/.venv"
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
