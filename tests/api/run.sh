#!/usr/bin/env bash
# The API document tests (issue 15): creates tests/api/.venv with the pinned
# requirements (openapi-spec-validator, schemathesis) and runs pytest: the
# document validates as OpenAPI 3.1, and schemathesis fuzzes the live API
# with an admin and a user token. Needs redis-server and the portcullis
# binary (target/debug/portcullis, or PORTCULLIS_BIN). Extra args go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/pyharness/venv.sh
source "$here/../pyharness/venv.sh"
ensure_venv "$here"
venv="$here/.venv"
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
