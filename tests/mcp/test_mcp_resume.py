"""SSE resumability on /mcp (2025-11-25 Streamable HTTP, SEP-1699), black
box: the fixture test_reconnection closes its POST stream after the priming
event; the session's owner gets the result by GET with Last-Event-ID. The
same id from another owner's session is ignored (that GET opens the
caller's own session stream), and older revisions never see a stream
closed early."""

from __future__ import annotations

import json
import secrets

import httpx

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_reconnection", "arguments": {}}}


def user_token(portcullis) -> str:
    r = portcullis.admin("POST", "/api/v1/tokens/", json={"name": f"resume-{secrets.token_hex(4)}", "scope": "user"})
    assert r.status_code in (200, 201), r.text
    return r.json()["token"]


def session(portcullis, token: str, version: str) -> dict:
    """Headers of a new session of `token` at `version`."""
    base = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    r = httpx.post(f"{portcullis.issuer}/mcp", json=init, headers=base, timeout=10)
    assert r.status_code == 200, r.text
    return {**base, "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": version}


def test_a_closed_stream_is_resumed_by_its_owner_only(conformance_portcullis):
    p = conformance_portcullis
    url = f"{p.issuer}/mcp"
    mine = session(p, user_token(p), "2025-11-25")
    r = httpx.post(url, json=CALL, headers=mine, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
    first = r.text.split("\n\n")[0].splitlines()
    assert first[0].startswith("id: ") and "data: " in first and any(l.startswith("retry: ") for l in first), r.text
    assert "Reconnection test completed" not in r.text, "the stream was to close before the result"
    last = first[0][4:]

    theirs = session(p, user_token(p), "2025-11-25")
    listen = {**theirs, "Accept": "text/event-stream", "Last-Event-ID": last}
    with httpx.stream("GET", url, headers=listen, timeout=httpx.Timeout(10, read=10)) as other:
        assert other.status_code == 200
        # the id was ignored: this is the other session's own stream (one per session)
        r = httpx.get(url, headers={**theirs, "Accept": "text/event-stream"}, timeout=10)
        assert r.status_code == 409, r.text

    resume = {**mine, "Accept": "text/event-stream", "Last-Event-ID": last}
    with httpx.stream("GET", url, headers=resume, timeout=httpx.Timeout(10, read=15)) as s:
        assert s.status_code == 200
        data = [json.loads(l[5:]) for l in s.iter_lines() if l.startswith("data:")]
    assert [d.get("id") for d in data] == [1], data
    assert data[0]["result"]["content"][0]["text"] == "Reconnection test completed"


def test_older_revisions_get_the_result_on_the_post(conformance_portcullis):
    p = conformance_portcullis
    r = httpx.post(f"{p.issuer}/mcp", json=CALL, headers=session(p, user_token(p), "2025-06-18"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["content"][0]["text"] == "Reconnection test completed", r.text
