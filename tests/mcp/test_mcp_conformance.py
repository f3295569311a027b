"""Issue 16: the official MCP conformance suite (npm
@modelcontextprotocol/conformance, pinned in tests/oauth/conformance) in
`server` mode against our /mcp, once per protocol revision: the
requirement sets of 2025-11-25 (stateful wire) and 2026-07-28 (stateless
wire), and every active scenario at 2025-06-18 and 2025-03-26.

The suite's server mode sends no credentials; conformance/bearer.mjs,
preloaded into Node, gives its requests a user-scope API token (a real
client with a real token: nothing in Portcullis is relaxed for it).

The suite's scenarios call fixtures by name (tools, prompts and resources
named test_*, json_schema_2020_12_tool and the tasks extension's greet,
slow_compute, failing_job, protocol_error_job, confirm_delete and
multi_input; sampling, elicitation and roots round trips); they run
against an instance started with MCP_CONFORMANCE_FIXTURES=true, which
serves them beside the management tools (src/mcp/conformance), over the
endpoint's own machinery (progress and log notifications, questions to the
client on the response stream, InputRequiredResult rounds). The default
instance of the other tests does not list them
(test_mcp_resources.py::test_no_conformance_fixture_is_listed_by_default).

Every scenario of every revision runs, and every check must pass
(WARNING counts as a failure) except those of the scenarios listed in
EXPECTED_FAILURES, each with the reason; the list is empty: the suite
passes whole. The test also fails when a listed scenario passes (the list
must stay true), and a wire-schema-valid failure is never excused."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import CONFORMANCE_REPORTS, HERE

NODE = HERE.parent / "oauth" / "idp" / "node_modules" / "node" / "bin" / "node"  # Node.js 22: the suite needs >= 22
PKG = HERE.parent / "oauth" / "conformance" / "node_modules" / "@modelcontextprotocol" / "conformance"
PRELOAD = HERE / "conformance" / "bearer.mjs"

# Scenario -> why it fails against /mcp. Nothing else may fail.
EXPECTED_FAILURES: dict[str, str] = {}
PASSING = {"SUCCESS", "INFO", "SKIPPED"}

# Revision -> scenarios whose checks must not all be INFO or SKIPPED (a
# scenario passes vacuously when a fixture is missing or the server answers
# JSON where the scenario wanted a stream): SSE resumability (SEP-1699).
MUST_SUCCEED: dict[str, list[str]] = {"2025-11-25": ["server-sse-polling"]}

RUNS = {
    "2025-11-25": ["--requirements", "2025-11-25"],
    "2026-07-28": ["--requirements", "2026-07-28"],
    "2025-06-18": ["--spec-version", "2025-06-18"],
    "2025-03-26": ["--spec-version", "2025-03-26"],
}


@pytest.fixture(scope="module")
def suite_token(conformance_portcullis) -> str:
    r = conformance_portcullis.admin("POST", "/api/v1/tokens/", json={"name": "mcp-conformance", "scope": "user"})
    assert r.status_code in (200, 201), r.text
    return r.json()["token"]


def checks_of(outdir: Path) -> list[tuple[str, dict]]:
    out = []
    for f in sorted(outdir.rglob("checks.json")):
        scenario = re.sub(r"^server-|-\d{4}-\d{2}-\d{2}T.*$", "", f.parent.name)
        data = json.loads(f.read_text())
        out.extend((scenario, c) for c in (data if isinstance(data, list) else data.get("checks", [])))
    return out


@pytest.mark.parametrize("revision", list(RUNS))
def test_conformance_server_mode(revision, conformance_portcullis, suite_token, workdir):
    portcullis = conformance_portcullis
    if not (NODE.is_file() and (PKG / "dist" / "index.js").is_file()):
        pytest.fail("run tests/mcp/run.sh: it installs Node.js 22 and the suite (npm ci in tests/oauth/idp and tests/oauth/conformance)")
    outdir = workdir / f"conformance-{revision}"
    env = {
        "PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}", "HOME": os.environ.get("HOME", "/tmp"),
        "NO_COLOR": "1", "NODE_NO_WARNINGS": "1",
        "MCP_TEST_BEARER": suite_token, "MCP_TEST_ORIGIN": portcullis.issuer,
        "MCP_TEST_UNDICI_FROM": str(PKG / "package.json"),
    }
    args = [str(NODE), "--import", str(PRELOAD), str(PKG / "dist" / "index.js"), "server",
            "--url", f"{portcullis.issuer}/mcp", "--output-dir", str(outdir), *RUNS[revision]]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=workdir)
    summary = p.stdout[p.stdout.find("=== SUMMARY ==="):] if "=== SUMMARY ===" in p.stdout else p.stdout[-6000:]
    version = json.loads((PKG / "package.json").read_text())["version"]
    CONFORMANCE_REPORTS.append(f"@modelcontextprotocol/conformance {version}, {' '.join(RUNS[revision])}:\n{summary}")
    checks = checks_of(outdir)
    assert checks, f"no checks in {outdir}:\n{p.stdout[-4000:]}\n{p.stderr[-2000:]}"
    failing: dict[str, list[dict]] = {}
    for scenario, c in checks:
        failing.setdefault(scenario, [])
        if c.get("status") not in PASSING:
            failing[scenario].append(c)
    assert set(failing) - set(EXPECTED_FAILURES), f"no scenario we must pass ran: {sorted(failing)}"
    bad = []
    for scenario, cs in failing.items():
        for c in cs:
            if c.get("id") == "wire-schema-valid":
                bad.append((scenario, c))  # a schema violation on the wire is never excused
            elif scenario not in EXPECTED_FAILURES:
                bad.append((scenario, c))
    assert not bad, json.dumps([{"scenario": s, **c} for s, c in bad], indent=1)[:20000]
    if revision in MUST_SUCCEED:
        for scenario in MUST_SUCCEED[revision]:
            got = [c for s, c in checks if s == scenario]
            assert any(c.get("status") == "SUCCESS" for c in got), (
                f"{scenario} has no SUCCESS check (all INFO/SKIPPED: vacuous): {json.dumps(got, indent=1)[:4000]}")
    passing_but_listed = sorted(s for s, cs in failing.items() if s in EXPECTED_FAILURES and not cs)
    assert not passing_but_listed, f"these scenarios pass now: remove them from EXPECTED_FAILURES: {passing_but_listed}"
