"""Issue 16 (conformance gaps): resources, resource templates, prompts and
completion on /mcp, over real data and with the REST API's ownership: a
user-scope API token reads its own proxy as a resource, never another
owner's (not even by a crafted URI), and gets completions and prompts
filled with its own data only."""

from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest

from conftest import ADMIN_TOKEN

STATELESS = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": STATELESS,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
}


def rpc(portcullis, token: str, method: str, params: dict, name: str | None = None) -> dict:
    """One stateless request through the data plane; the JSON-RPC response."""
    headers = {"Accept": "application/json", "Authorization": f"Bearer {token}",
               "MCP-Protocol-Version": STATELESS, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": META}}
    r = httpx.post(f"http://localhost:{portcullis.http_port}/mcp", json=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def owners(portcullis) -> tuple[str, str, str]:
    """A user token, its proxy's hostname and the hostname of a proxy the admin owns."""
    tag = secrets.token_hex(4)
    r = portcullis.admin("POST", "/api/v1/tokens/", json={"name": f"res-{tag}", "scope": "user"})
    assert r.status_code in (200, 201), r.text
    token = r.json()["token"]
    own, other = f"res-own-{tag}.test", f"res-other-{tag}.test"
    r = httpx.post(f"{portcullis.issuer}/api/v1/proxy/targets/", headers={"Authorization": f"Bearer {token}"},
                   json={"hostname": own, "target_url": "http://192.0.2.30:8080", "enable_https": False}, timeout=10)
    assert r.status_code == 201, r.text
    r = portcullis.admin("POST", "/api/v1/proxy/targets/", json={"hostname": other, "target_url": "http://192.0.2.31:8080", "enable_https": False})
    assert r.status_code == 201, r.text
    return token, own, other


def test_resources_list_and_read_with_the_owners_view(portcullis, owners):
    token, own, other = owners
    res = rpc(portcullis, token, "resources/list", {})["result"]
    uris = [r["uri"] for r in res["resources"]]
    assert f"portcullis://proxies/{own}" in uris and "portcullis://logs/stats" in uris, uris
    assert f"portcullis://proxies/{other}" not in uris, uris
    assert res["ttlMs"] == 0 and res["cacheScope"] == "private", res
    assert all(r["name"] and r["mimeType"] == "application/json" for r in res["resources"]), res
    read = rpc(portcullis, token, "resources/read", {"uri": f"portcullis://proxies/{own}"}, f"portcullis://proxies/{own}")["result"]
    (content,) = read["contents"]
    assert content["uri"] == f"portcullis://proxies/{own}" and json.loads(content["text"])["target_url"] == "http://192.0.2.30:8080", read
    stats = rpc(portcullis, token, "resources/read", {"uri": "portcullis://logs/stats"}, "portcullis://logs/stats")["result"]
    assert "contents" in stats and json.loads(stats["contents"][0]["text"]) is not None, stats
    # another owner's proxy, crafted URIs, other schemes: "resource not found" with the URI (SEP-2164)
    for uri in (f"portcullis://proxies/{other}", f"portcullis://proxies/{own}/../{other}", f"portcullis://proxies/%2e%2e%2f{other}",
                "portcullis://proxies/", "file:///etc/passwd", "test://static-text"):
        err = rpc(portcullis, token, "resources/read", {"uri": uri}, uri)["error"]
        assert err["code"] == -32602 and err["data"] == {"uri": uri}, (uri, err)
    # the admin reads the other proxy
    read = rpc(portcullis, ADMIN_TOKEN, "resources/read", {"uri": f"portcullis://proxies/{other}"}, f"portcullis://proxies/{other}")
    assert json.loads(read["result"]["contents"][0]["text"])["hostname"] == other, read
    # without a uri
    assert rpc(portcullis, token, "resources/read", {})["error"]["code"] == -32602
    templates = rpc(portcullis, token, "resources/templates/list", {})["result"]["resourceTemplates"]
    assert {t["uriTemplate"] for t in templates} == {"portcullis://proxies/{hostname}", "portcullis://certificates/{cert_name}"}


def test_prompts_are_filled_with_the_callers_data(portcullis, owners):
    token, own, other = owners
    prompts = rpc(portcullis, token, "prompts/list", {})["result"]["prompts"]
    assert [p["name"] for p in prompts] == ["diagnose_proxy", "review_certificates"], prompts
    assert all(p["description"] for p in prompts)
    got = rpc(portcullis, token, "prompts/get", {"name": "diagnose_proxy", "arguments": {"hostname": own}}, "diagnose_proxy")["result"]
    kinds = [m["content"]["type"] for m in got["messages"]]
    assert kinds == ["text", "resource", "text"] and all(m["role"] == "user" for m in got["messages"]), got
    assert own in got["messages"][0]["content"]["text"]
    assert got["messages"][1]["content"]["resource"]["uri"] == f"portcullis://proxies/{own}", got
    # another owner's proxy, an absent argument, an unknown prompt: -32602
    for params, name in (({"name": "diagnose_proxy", "arguments": {"hostname": other}}, "diagnose_proxy"),
                         ({"name": "diagnose_proxy", "arguments": {}}, "diagnose_proxy"),
                         ({"name": "run_shell", "arguments": {}}, "run_shell")):
        err = rpc(portcullis, token, "prompts/get", params, name)["error"]
        assert err["code"] == -32602, (params, err)
    review = rpc(portcullis, token, "prompts/get", {"name": "review_certificates"}, "review_certificates")["result"]
    assert review["messages"][0]["content"]["type"] == "text", review


def test_completion_suggests_only_the_callers_names(portcullis, owners):
    token, own, other = owners
    ref = {"type": "ref/prompt", "name": "diagnose_proxy"}
    c = rpc(portcullis, token, "completion/complete", {"ref": ref, "argument": {"name": "hostname", "value": "res-"}})["result"]
    assert c["completion"]["values"] == [own] and c["completion"]["hasMore"] is False, c
    tmpl = {"type": "ref/resource", "uri": "portcullis://proxies/{hostname}"}
    c = rpc(portcullis, ADMIN_TOKEN, "completion/complete", {"ref": tmpl, "argument": {"name": "hostname", "value": "res-other"}})["result"]
    assert other in c["completion"]["values"] and own not in c["completion"]["values"], c
    c = rpc(portcullis, token, "completion/complete", {"ref": ref, "argument": {"name": "nothing", "value": ""}})["result"]
    assert c["completion"]["values"] == [], c
    for bad in ({"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "x", "value": ""}},
                {"ref": {"type": "ref/resource", "uri": "file:///{x}"}, "argument": {"name": "x", "value": ""}},
                {"ref": {"type": "ref/other"}, "argument": {"name": "x", "value": ""}},
                {"argument": {"name": "x", "value": ""}}):
        assert rpc(portcullis, token, "completion/complete", bad)["error"]["code"] == -32602, bad


def test_dated_revisions_say_resource_not_found_with_their_code(portcullis):
    url = f"{portcullis.issuer}/mcp"
    headers = {"Accept": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    r = httpx.post(url, json=init, headers=headers, timeout=10)
    caps = r.json()["result"]["capabilities"]
    assert {"resources", "prompts", "completions", "logging", "tools"} <= set(caps) and caps["resources"]["subscribe"] is True, caps
    session = {**headers, "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
    body = {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "portcullis://proxies/none.test"}}
    r = httpx.post(url, json=body, headers=session, timeout=10)
    assert r.status_code == 200 and r.json()["error"]["code"] == -32002, r.text
    assert r.json()["error"]["data"] == {"uri": "portcullis://proxies/none.test"} and r.json()["id"] == 2, r.text


# The conformance fixtures whose names lack the `test_` prefix
# (src/mcp/conformance/tools.rs and task_tools.rs).
NOT_TEST_PREFIXED_FIXTURES = {
    "json_schema_2020_12_tool", "greet", "slow_compute", "failing_job",
    "protocol_error_job", "confirm_delete", "multi_input",
}


def test_no_conformance_fixture_is_listed_by_default(portcullis, owners):
    """The conformance suite's fixtures exist only with MCP_CONFORMANCE_FIXTURES=true."""
    token = owners[0]
    tools = [t["name"] for t in rpc(portcullis, token, "tools/list", {})["result"]["tools"]]
    prompts = [p["name"] for p in rpc(portcullis, token, "prompts/list", {})["result"]["prompts"]]
    resources = [r["uri"] for r in rpc(portcullis, token, "resources/list", {})["result"]["resources"]]
    templates = [t["uriTemplate"] for t in rpc(portcullis, token, "resources/templates/list", {})["result"]["resourceTemplates"]]
    assert tools and not [n for n in tools + prompts if n.startswith("test_") or n in NOT_TEST_PREFIXED_FIXTURES], (tools, prompts)
    assert not [u for u in resources + templates if u.startswith("test://")], (resources, templates)
    err = rpc(portcullis, token, "tools/call", {"name": "test_simple_text", "arguments": {}}, "test_simple_text")["error"]
    assert err["code"] == -32602 and "unknown tool" in err["message"], err
    caps = rpc(portcullis, token, "server/discover", {})["result"]["capabilities"]
    assert "extensions" not in caps, caps  # only fixtures run as tasks
    for name in NOT_TEST_PREFIXED_FIXTURES:
        err = rpc(portcullis, token, "tools/call", {"name": name, "arguments": {}}, name)["error"]
        assert err["code"] == -32602 and "unknown tool" in err["message"], (name, err)
    err = rpc(portcullis, token, "prompts/get", {"name": "test_simple_prompt"}, "test_simple_prompt")["error"]
    assert err["code"] == -32602, err


def test_subscribed_resources_are_announced_on_the_sessions_stream(portcullis, owners):
    """resources/subscribe in a dated-revision session, then GET /mcp: a change
    of the resource (through REST) arrives as notifications/resources/updated,
    a new proxy as notifications/resources/list_changed; a resource the
    caller may not read cannot be subscribed to."""
    token, _, other = owners
    auth = {"Authorization": f"Bearer {token}"}
    host = f"sub-{secrets.token_hex(4)}.test"
    r = httpx.post(f"{portcullis.issuer}/api/v1/proxy/targets/", headers=auth,
                   json={"hostname": host, "target_url": "http://192.0.2.40:8080", "enable_https": False}, timeout=10)
    assert r.status_code == 201, r.text
    url = f"{portcullis.issuer}/mcp"
    base = {**auth, "Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    r = httpx.post(url, json=init, headers=base, timeout=10)
    assert r.json()["result"]["capabilities"]["resources"] == {"subscribe": True, "listChanged": True}, r.text
    sess = {**base, "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}

    def call(i: int, method: str, params: dict) -> dict:
        return httpx.post(url, json={"jsonrpc": "2.0", "id": i, "method": method, "params": params}, headers=sess, timeout=10).json()

    uri = f"portcullis://proxies/{host}"
    err = call(2, "resources/subscribe", {"uri": f"portcullis://proxies/{other}"})["error"]
    assert err["code"] == -32002 and err["data"] == {"uri": f"portcullis://proxies/{other}"}, err
    assert call(3, "resources/subscribe", {"uri": uri})["result"] == {}
    r = httpx.get(url, headers={**auth, "Accept": "text/event-stream"}, timeout=10)
    assert r.status_code == 405 and r.json()["error"]["code"] == -32600, r.text  # no session, no stream
    with httpx.stream("GET", url, headers={**sess, "Accept": "text/event-stream"}, timeout=httpx.Timeout(10, read=30)) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        # one stream per session (each polls the store), as the TypeScript SDK's server answers
        r = httpx.get(url, headers={**sess, "Accept": "text/event-stream"}, timeout=10)
        assert r.status_code == 409 and r.json()["error"]["code"] == -32600, r.text
        r = httpx.put(f"{portcullis.issuer}/api/v1/proxy/targets/{host}", headers=auth,
                      json={"target_url": "http://192.0.2.41:8080"}, timeout=10)
        assert r.status_code == 200, r.text
        lines = stream.iter_lines()

        def next_notification() -> dict:
            for line in lines:
                if line.startswith("data:"):
                    return json.loads(line[5:])
            raise AssertionError("the stream ended")

        assert next_notification() == {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}
        # a new proxy of the caller changes its resource list
        r = httpx.post(f"{portcullis.issuer}/api/v1/proxy/targets/", headers=auth,
                       json={"hostname": f"new-{host}", "target_url": "http://192.0.2.42:8080", "enable_https": False}, timeout=10)
        assert r.status_code == 201, r.text
        assert next_notification()["method"] == "notifications/resources/list_changed"
    assert call(4, "resources/unsubscribe", {"uri": uri})["result"] == {}


def test_a_revoked_token_loses_its_stream(portcullis):
    """GET /mcp checks its credential again every few polls: deleting the
    API token ends the session's stream (within ~10 s), it does not keep
    receiving notifications for the session's idle hour."""
    name = f"revoked-{secrets.token_hex(4)}"
    r = portcullis.admin("POST", "/api/v1/tokens/", json={"name": name, "scope": "user"})
    assert r.status_code in (200, 201), r.text
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    url = f"{portcullis.issuer}/mcp"
    base = {**auth, "Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    r = httpx.post(url, json=init, headers=base, timeout=10)
    assert r.status_code == 200, r.text
    sess = {**base, "Accept": "text/event-stream", "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
    with httpx.stream("GET", url, headers=sess, timeout=httpx.Timeout(10, read=40)) as stream:
        assert stream.status_code == 200
        r = portcullis.admin("DELETE", f"/api/v1/tokens/{name}")
        assert r.status_code in (200, 204), r.text
        started = time.monotonic()
        for _ in stream.iter_lines():
            assert time.monotonic() - started < 35, "the stream outlived its revoked token"
    assert time.monotonic() - started < 35


def test_initialize_keeps_no_oversized_client_description(portcullis):
    """The session stores clientInfo and capabilities for its idle hour: a
    client that sends hundreds of KiB of them is refused (-32602), not stored."""
    big = {"experimental": {"x": "y" * 200_000}}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": big, "clientInfo": {"name": "raw", "version": "0"}}}
    r = httpx.post(f"{portcullis.issuer}/mcp", json=init, timeout=10,
                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json, text/event-stream"})
    assert r.status_code == 200 and r.json()["error"]["code"] == -32602, r.text
    assert "mcp-session-id" not in r.headers
