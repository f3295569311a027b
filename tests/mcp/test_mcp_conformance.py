"""Issue 16: the official MCP conformance suite (npm
@modelcontextprotocol/conformance, pinned in tests/oauth/conformance) in
`server` mode against our /mcp, once per protocol revision: the
requirement sets of 2025-11-25 (stateful wire) and 2026-07-28 (stateless
wire), and every active scenario at 2025-06-18 and 2025-03-26.

The suite's server mode sends no credentials; conformance/bearer.mjs,
preloaded into Node, gives its requests a user-scope API token (a real
client with a real token: nothing in Portcullis is relaxed for it).

Many scenarios exercise the suite's own fixture server ("everything
server"): tools named test_*, prompts, resources, completions, tasks. A
management server has none of those, so they fail with the suite saying
the fixture is absent. Every scenario runs anyway: in the scenarios that
test the protocol itself (APPLICABLE) no check may fail except those the
suite marks "Not testable" for a missing fixture tool, and in the others a
failing check must name the absent fixture; any other failure (a schema
violation on the wire, a wrong status or error code) fails the test."""

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

# Scenarios that test the protocol and transport rather than the suite's fixture server.
APPLICABLE = {
    "server-initialize", "server-session-lifecycle", "server-stateless", "logging-set-level", "ping", "tools-list",
    "server-sse-multiple-streams", "server-sse-polling", "dns-rebinding-protection", "http-header-validation",
    "input-required-result-unsupported-methods", "input-required-result-validate-input",
}
# How the suite says that its fixture (a test_* tool, prompts, resources, completions, tasks) is not there.
FIXTURE_ABSENT = re.compile(
    r'unknown tool "|method "(prompts|resources|completion|tasks)/[a-z/]+" is not supported|^Not testable|Tool \'[a-z0-9_]+\' not found'
    r'|^Prerequisite failed|capabilities\.extensions MUST be advertised|Expected InputRequiredResult|routing-task fixture'
    r'|tasks/[a-z]+ MUST return -32021|expected -32602; got -32601|spec requires -32021|re-request'
    # no resources at all: resources/read of a missing URI is "method not found", without data.uri
    r'|Expected error code -32602 \(Invalid Params\), got -32601|Error data\.uri is undefined'
)
PASSING = {"SUCCESS", "INFO", "SKIPPED"}

RUNS = {
    "2025-11-25": ["--requirements", "2025-11-25"],
    "2026-07-28": ["--requirements", "2026-07-28"],
    "2025-06-18": ["--spec-version", "2025-06-18"],
    "2025-03-26": ["--spec-version", "2025-03-26"],
}


@pytest.fixture(scope="module")
def suite_token(portcullis) -> str:
    r = portcullis.admin("POST", "/api/v1/tokens/", json={"name": "mcp-conformance", "scope": "user"})
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
def test_conformance_server_mode(revision, portcullis, suite_token, workdir):
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
    scenarios = {s for s, _ in checks}
    assert scenarios & APPLICABLE, f"no protocol scenario ran: {sorted(scenarios)}"
    bad = []
    for scenario, c in checks:
        if c.get("status") in PASSING:
            continue
        msg = c.get("errorMessage") or ""
        if c.get("id") == "wire-schema-valid":
            bad.append((scenario, c))
        elif scenario in APPLICABLE and not msg.startswith("Not testable"):
            bad.append((scenario, c))
        elif scenario not in APPLICABLE and not FIXTURE_ABSENT.search(msg):
            bad.append((scenario, c))
    assert not bad, json.dumps([{"scenario": s, **c} for s, c in bad], indent=1)[:20000]
