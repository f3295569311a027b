"""The MCP conformance suite (npm @modelcontextprotocol/conformance) in its
`authorization` mode against our issuer. Its authorization-code scenario
prints an authorization URL for a person to open and waits for the callback
on http://127.0.0.1:PORT/callback: the browser-like client logs in at the IdP
and delivers the redirect there. The suite needs Node.js >= 22: the one
installed from npm in tests/oauth/idp (`npm ci` there and in
tests/oauth/conformance: scripts/test.sh does both).

The suite's own report is printed in pytest's terminal summary."""

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from conftest import CONFORMANCE_REPORTS, HERE, MCP_RESOURCE
from procs import free_port

NODE = HERE / "idp" / "node_modules" / "node" / "bin" / "node"  # Node.js 22: the suite needs >= 22
SUITE = HERE / "conformance" / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def _checks(outdir: Path) -> list[dict]:
    out = []
    for f in sorted(outdir.rglob("checks.json")):
        data = json.loads(f.read_text())
        out.extend(data if isinstance(data, list) else data.get("checks", []))
    return out


def test_mcp_conformance_authorization_mode(flows, server, workdir):
    if not (NODE.is_file() and SUITE.is_file()):
        pytest.skip(f"run `npm ci` in {HERE / 'idp'} and {HERE / 'conformance'} (scripts/test.sh does)")
    port = free_port()
    # A public client: the suite picks token_endpoint_auth_method "none" whenever the metadata lists it,
    # even when given a client secret, so a confidential client would fail its token request (401).
    reg = flows.register(client_name="mcp-conformance", redirect_uris=[f"http://127.0.0.1:{port}/callback"], token_endpoint_auth_method="none")
    outdir = workdir / "conformance-results"
    args = [str(NODE), str(SUITE), "authorization", "--url", server.issuer, "--client-id", reg["client_id"],
            "--resource", MCP_RESOURCE, "--port", str(port), "--output-dir", str(outdir)]
    env = {"PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}", "HOME": os.environ.get("HOME", "/tmp"), "NO_COLOR": "1", "NODE_NO_WARNINGS": "1"}
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=workdir)
    lines: list[str] = []
    delivered: list[str] = []

    def drive(url: str):
        # the person: open the URL, log in at the IdP, and let the browser land on the suite's callback
        with flows.browser("alice") as b:
            res = b.open(url)
        if res.redirect:
            delivered.append(res.redirect)
            httpx.get(res.redirect, timeout=30)

    def reader():
        for line in p.stdout:
            lines.append(line.rstrip("\n"))
            m = re.match(r"^(https?://\S+/authorize\?\S+)$", line.strip())
            if m:
                threading.Thread(target=drive, args=(m.group(1),), daemon=True).start()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        p.wait(180)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    t.join(5)
    output = "\n".join(lines)
    checks = _checks(outdir)
    counts: dict[str, int] = {}
    for c in checks:
        counts[c.get("status", "?")] = counts.get(c.get("status", "?"), 0) + 1
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    report = f"MCP conformance (authorization mode) against {server.issuer}: {summary or 'no checks found'}\n{output}\n"
    CONFORMANCE_REPORTS.append(report)
    assert delivered, f"the suite never printed an authorization URL that led back to it:\n{output}"
    assert checks, f"no checks in {outdir}:\n{output}"
    failed = [c for c in checks if c.get("status") == "FAILURE"]
    assert not failed, json.dumps(failed, indent=1)
    assert p.returncode == 0, output
