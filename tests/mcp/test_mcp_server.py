"""Issue 16 items 1-3: the /mcp management server, reached through the data
plane on `localhost` by the official MCP Python SDK with tokens from the
real OAuth flow (discovery from the 401, dynamic registration, PKCE,
resource indicator, login through the GitHub stand-in), and by raw HTTP for
what the SDK would never send (mismatched headers, foreign origins, a
session moved to another instance)."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

from conftest import free_port
from sdk_flow import Browser, MemoryStorage, jwt_claims

REFERENCE_TOOLS = {"echo", "health_check", "list_proxies", "create_proxy", "delete_proxy", "list_certificates", "list_services", "get_logs"}
STATELESS = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": STATELESS,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def local_mcp(portcullis) -> str:
    """/mcp through the data plane: the `localhost` proxy forwards to the control plane."""
    return f"http://localhost:{portcullis.http_port}/mcp"


@dataclass
class Flow:
    """What one SDK session did."""

    url: str
    first: tuple[int, dict] = (0, {})
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    browser: Browser | None = None
    protocol_version: str = ""
    tools: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)


async def sdk_flow(url: str, calls: list[tuple[str, str, dict]], auth: str | None = None) -> Flow:
    """Logs in (OAuth, or `auth` as a static bearer token), lists the tools and makes `calls`
    (label, tool, arguments); results by label."""
    flow = Flow(url)
    flow.browser = Browser(f"http://127.0.0.1:{free_port()}/callback")
    statuses: list[tuple[int, dict]] = []

    async def on_response(resp: httpx2.Response) -> None:
        if str(resp.request.url) == url:
            statuses.append((resp.status_code, {k.lower(): v for k, v in resp.headers.items()}))

    if auth is None:
        provider = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                client_name="portcullis /mcp test",
                redirect_uris=[flow.browser.redirect_uri],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=flow.storage,
            redirect_handler=flow.browser.redirect_handler,
            callback_handler=flow.browser.callback_handler,
        )
        client = httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60), event_hooks={"response": [on_response]})
    else:
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {auth}"}, timeout=30, event_hooks={"response": [on_response]})
    async with client:
        with anyio.fail_after(90):
            async with streamable_http_client(url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    flow.protocol_version = str(getattr(init, "protocol_version", getattr(init, "protocolVersion", "")))
                    flow.tools = {t.name: t for t in (await session.list_tools()).tools}
                    for label, tool, args in calls:
                        flow.results[label] = await session.call_tool(tool, args)
    flow.first = statuses[0] if statuses else (0, {})
    return flow


def structured(result) -> dict:
    assert not result.is_error, result
    return result.structured_content


def error_text(result) -> str:
    assert result.is_error, result
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


@pytest.fixture(scope="module")
def admin_flow(portcullis, github) -> Flow:
    github.next_login = "octocat"
    calls = [
        ("list", "list_proxies", {}),
        ("create", "create_proxy", {"hostname": "made-by-mcp.test", "target_url": "http://192.0.2.10:8080", "enable_https": False}),
        ("show", "show_proxy", {"hostname": "made-by-mcp.test"}),
        ("health", "health_check", {}),
        ("logs", "get_logs", {"limit": 5}),
    ]
    return anyio.run(sdk_flow, local_mcp(portcullis), calls)


def test_sdk_discovers_authorizes_and_administers_through_the_data_plane(admin_flow: Flow, portcullis):
    url = admin_flow.url
    # 1. the first request was refused with the pointer to our metadata, on the host the client used
    status, headers = admin_flow.first
    assert status == 401, admin_flow.first
    meta_url = f"http://localhost:{portcullis.http_port}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{meta_url}"' in headers["www-authenticate"], headers
    doc = httpx.get(meta_url, timeout=10).json()
    assert doc["resource"] == url and doc["authorization_servers"] == [portcullis.issuer], doc
    # 2. the token is ours, for this endpoint, with the scopes octocat is entitled to
    q = parse_qs(urlsplit(admin_flow.browser.authorization_url).query)
    assert q["resource"] == [url], q
    claims = jwt_claims(admin_flow.storage.tokens.access_token)
    assert claims["aud"] == [url] and claims["preferred_username"] == "octocat", claims
    assert {"mcp", "admin"} <= set(claims["scope"].split()), claims
    # 3. the tools, with schemas and truthful annotations
    assert REFERENCE_TOOLS <= set(admin_flow.tools), sorted(admin_flow.tools)
    assert "run_command" not in admin_flow.tools
    lp, cp = admin_flow.tools["list_proxies"], admin_flow.tools["create_proxy"]
    assert lp.annotations.read_only_hint is True and cp.annotations.read_only_hint is False
    assert admin_flow.tools["delete_proxy"].annotations.destructive_hint is True
    assert cp.input_schema["type"] == "object" and {"hostname", "target_url"} <= set(cp.input_schema["required"])
    assert lp.output_schema["type"] == "object"
    # 4. a read tool and a write tool, with structured results
    hosts = [p["hostname"] for p in structured(admin_flow.results["list"])["proxies"]]
    assert "localhost" in hosts, hosts
    created = structured(admin_flow.results["create"])
    assert created["hostname"] == "made-by-mcp.test" and created["created_by"] == "octocat", created
    assert structured(admin_flow.results["show"])["target_url"] == "http://192.0.2.10:8080"
    assert structured(admin_flow.results["health"])["status"] == "healthy"
    assert isinstance(structured(admin_flow.results["logs"])["records"], list)
    # the same record REST serves: one implementation
    r = portcullis.admin("GET", "/api/v1/proxy/targets/made-by-mcp.test")
    assert r.status_code == 200 and r.json()["created_by"] == "octocat", r.text


@pytest.fixture(scope="module")
def mcp_only_flow(portcullis, github) -> Flow:
    github.next_login = "mona"
    try:
        return anyio.run(sdk_flow, local_mcp(portcullis), [("list", "list_proxies", {}), ("echo", "echo", {"message": "hi"})])
    finally:
        github.next_login = "octocat"


def test_an_mcp_scope_token_reads_but_is_refused_the_write_tools(mcp_only_flow: Flow, portcullis):
    token = mcp_only_flow.storage.tokens.access_token
    claims = jwt_claims(token)
    assert claims["preferred_username"] == "mona" and "admin" not in claims["scope"].split(), claims
    # reads work, and show what mona owns: nothing
    assert structured(mcp_only_flow.results["list"]) == {"proxies": []}
    assert structured(mcp_only_flow.results["echo"]) == {"message": "hi"}
    # a write tool: 403 insufficient_scope naming admin, and nothing is created
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "create_proxy", "arguments": {"hostname": "mona.test", "target_url": "http://192.0.2.1"}, "_meta": META}}
    hdrs = {**ACCEPT, "Authorization": f"Bearer {token}", "MCP-Protocol-Version": STATELESS, "Mcp-Method": "tools/call", "Mcp-Name": "create_proxy"}
    r = httpx.post(mcp_only_flow.url, json=body, headers=hdrs, timeout=10)
    assert r.status_code == 403, r.text
    www = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in www and 'scope="admin"' in www, www
    assert r.json()["id"] == 9 and r.json()["error"]["code"] < 0, r.text
    assert portcullis.admin("GET", "/api/v1/proxy/targets/mona.test").status_code == 404


def test_a_user_api_token_sees_and_changes_only_its_own_proxies(portcullis):
    name = "mcp-user-" + secrets.token_hex(4)
    r = portcullis.admin("POST", "/api/v1/tokens/", json={"name": name, "scope": "user"})
    assert r.status_code in (200, 201), r.text
    user_token = r.json()["token"]
    own = {"hostname": f"{name}.test", "target_url": "http://192.0.2.20:8080", "enable_https": False}
    r = httpx.post(f"{portcullis.issuer}/api/v1/proxy/targets/", json=own, headers={"Authorization": f"Bearer {user_token}"}, timeout=10)
    assert r.status_code == 201, r.text
    other = {"hostname": f"admin-of-{name}.test", "target_url": "http://192.0.2.21:8080", "enable_https": False}
    assert portcullis.admin("POST", "/api/v1/proxy/targets/", json=other).status_code == 201
    calls = [
        ("list", "list_proxies", {}),
        ("show_other", "show_proxy", {"hostname": other["hostname"]}),
        ("delete_other", "delete_proxy", {"hostname": other["hostname"]}),
        ("update_own", "update_proxy", {"hostname": own["hostname"], "patch": {"enabled": False}}),
    ]
    flow = anyio.run(sdk_flow, local_mcp(portcullis), calls, user_token)
    assert [p["hostname"] for p in structured(flow.results["list"])["proxies"]] == [own["hostname"]]
    assert "not found" in error_text(flow.results["show_other"])
    assert "not found" in error_text(flow.results["delete_other"])
    assert structured(flow.results["update_own"])["enabled"] is False
    assert portcullis.admin("GET", f"/api/v1/proxy/targets/{other['hostname']}").status_code == 200, "another owner's proxy was deleted"


def raw(url: str, token: str, body: dict, **headers) -> httpx.Response:
    return httpx.post(url, json=body, headers={**ACCEPT, "Authorization": f"Bearer {token}", **headers}, timeout=10)


def test_stateless_headers_must_agree_with_the_body(portcullis):
    from conftest import ADMIN_TOKEN

    url = local_mcp(portcullis)
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}, "_meta": META}}
    ok = raw(url, ADMIN_TOKEN, call, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
    assert ok.status_code == 200, ok.text
    res = ok.json()["result"]
    assert res["structuredContent"] == {"message": "x"} and res["resultType"] == "complete", res
    for hdrs in (
        {"Mcp-Method": "tools/list", "Mcp-Name": "echo"},
        {"Mcp-Method": "tools/call", "Mcp-Name": "delete_proxy"},
        {"Mcp-Method": "tools/call"},
        {"Mcp-Name": "echo"},
    ):
        r = raw(url, ADMIN_TOKEN, call, **{"MCP-Protocol-Version": STATELESS, **hdrs})
        assert r.status_code == 400, (hdrs, r.text)
        assert r.json()["error"]["code"] == -32020 and r.json()["id"] == 3, r.text
    # an unsupported revision
    r = raw(url, ADMIN_TOKEN, call, **{"MCP-Protocol-Version": "2024-01-01", "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
    assert r.status_code == 400 and r.json()["error"]["data"]["requested"] == "2024-01-01", r.text
    # missing _meta fields
    bare = {"jsonrpc": "2.0", "id": 4, "method": "server/discover", "params": {}}
    r = raw(url, ADMIN_TOKEN, bare, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "server/discover"})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32602, r.text
    # discovery
    disc = {**bare, "params": {"_meta": META}}
    r = raw(url, ADMIN_TOKEN, disc, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "server/discover"})
    assert r.status_code == 200 and STATELESS in r.json()["result"]["supportedVersions"], r.text
    # a notification: 202, no body
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": META}}
    r = raw(url, ADMIN_TOKEN, note, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "notifications/cancelled"})
    assert r.status_code == 202 and r.content == b"", r.text
    # a browser page of another site, and a rebound DNS name
    r = raw(url, ADMIN_TOKEN, disc, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "server/discover", "Origin": "https://evil.example"})
    assert r.status_code == 403, r.text
    r = raw(f"{portcullis.issuer}/mcp", ADMIN_TOKEN, disc, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "server/discover", "Host": "evil.example"})
    assert r.status_code == 403, r.text
    # SSE when the client accepts only that
    r = raw(url, ADMIN_TOKEN, disc, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "server/discover", "Accept": "text/event-stream"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.headers
    assert r.text.startswith("event: message\ndata: {") and '"supportedVersions"' in r.text, r.text


def test_a_session_survives_a_request_served_by_another_instance(portcullis, second_portcullis):
    from conftest import ADMIN_TOKEN

    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    r = raw(f"{portcullis.issuer}/mcp", ADMIN_TOKEN, init)
    assert r.status_code == 200 and r.json()["result"]["protocolVersion"] == "2025-06-18", r.text
    sid = r.headers["mcp-session-id"]
    session = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}
    r = raw(f"{portcullis.issuer}/mcp", ADMIN_TOKEN, {"jsonrpc": "2.0", "method": "notifications/initialized"}, **session)
    assert r.status_code == 202, r.text
    # the second instance knows the session from the store
    other = f"{second_portcullis.issuer}/mcp"
    r = raw(other, ADMIN_TOKEN, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, **session)
    assert r.status_code == 200 and any(t["name"] == "list_proxies" for t in r.json()["result"]["tools"]), r.text
    # another credential cannot use it
    r = portcullis.admin("POST", "/api/v1/tokens/", json={"name": "mcp-thief", "scope": "admin"})
    thief = r.json()["token"]
    r = raw(other, thief, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, **session)
    assert r.status_code == 404, r.text
    # without a session, a dated revision is refused
    r = raw(other, ADMIN_TOKEN, {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}, **{"MCP-Protocol-Version": "2025-06-18"})
    assert r.status_code == 400, r.text
    # ended on the second instance, gone on the first
    r = httpx.delete(other, headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **session}, timeout=10)
    assert r.status_code == 204, r.text
    r = raw(f"{portcullis.issuer}/mcp", ADMIN_TOKEN, {"jsonrpc": "2.0", "id": 5, "method": "ping"}, **session)
    assert r.status_code == 404, r.text


def jwt_header(token: str) -> dict:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def call_tool(url: str, token: str, name: str, arguments: dict) -> dict:
    """tools/call in 2026-07-28 (no session): the JSON-RPC result."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments, "_meta": META}}
    r = raw(url, token, body, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "tools/call", "Mcp-Name": name})
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_oauth_admin_tools_list_revoke_rotate_and_delete(admin_flow: Flow, mcp_only_flow: Flow, portcullis):
    """Issue 16 item 3: OAuth clients, tokens and sessions (admin only), over manage::oauth_admin."""
    from conftest import ADMIN_TOKEN

    url = local_mcp(portcullis)
    tools = admin_flow.tools
    for name in ("list_oauth_clients", "show_oauth_client", "list_oauth_tokens", "list_oauth_sessions"):
        assert tools[name].annotations.read_only_hint is True, name
    for name in ("delete_oauth_client", "revoke_oauth_token", "revoke_oauth_session"):
        a = tools[name].annotations
        assert a.read_only_hint is False and a.destructive_hint is True and a.idempotent_hint is True, name
    assert tools["rotate_oauth_keys"].annotations.read_only_hint is False
    assert tools["revoke_oauth_token"].input_schema["required"] == ["jti"], tools["revoke_oauth_token"].input_schema
    # a user-scope API token is refused every one of them, and sees no client
    r = portcullis.admin("POST", "/api/v1/tokens/", json={"name": "mcp-oauth-user", "scope": "user"})
    user = r.json()["token"]
    res = call_tool(url, user, "list_oauth_clients", {})
    assert res["isError"] is True and "structuredContent" not in res, res
    assert call_tool(url, user, "rotate_oauth_keys", {})["isError"] is True
    # the admin sees the SDK's client, octocat's token (by jti only) and session
    octocat = jwt_claims(admin_flow.storage.tokens.access_token)
    mona_token = mcp_only_flow.storage.tokens.access_token
    mona = jwt_claims(mona_token)
    clients = call_tool(url, ADMIN_TOKEN, "list_oauth_clients", {})["structuredContent"]["clients"]
    mine = [c for c in clients if c["client_id"] == mona["client_id"]]
    assert mine and mine[0]["client_name"] == "portcullis /mcp test", clients
    assert not any("secret" in k for c in clients for k in c if k != "client_secret_expires_at"), clients
    shown = call_tool(url, ADMIN_TOKEN, "show_oauth_client", {"client_id": mona["client_id"]})["structuredContent"]
    assert shown["client_id"] == mona["client_id"], shown
    listed = call_tool(url, ADMIN_TOKEN, "list_oauth_tokens", {})["structuredContent"]
    jtis = {t["jti"] for t in listed["tokens"]}
    assert {octocat["jti"], mona["jti"]} <= jtis, listed
    assert admin_flow.storage.tokens.access_token not in str(listed) and mona_token not in str(listed)
    sessions = call_tool(url, ADMIN_TOKEN, "list_oauth_sessions", {})["structuredContent"]["sessions"]
    assert {"octocat", "mona"} <= {s["username"] for s in sessions}, sessions
    # revoking mona's token: her next request is refused
    before = call_tool(url, mona_token, "echo", {"message": "still here"})
    assert before["structuredContent"] == {"message": "still here"}, before
    out = call_tool(url, ADMIN_TOKEN, "revoke_oauth_token", {"jti": mona["jti"]})["structuredContent"]
    assert out == {"status": "revoked", "jti": mona["jti"]}, out
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}}
    r = raw(url, mona_token, body, **{"MCP-Protocol-Version": STATELESS, "Mcp-Method": "tools/list"})
    assert r.status_code == 401, r.text
    # a session by id; an unknown jti is a tool error naming it
    mona_session = next(s["session_id"] for s in sessions if s["username"] == "mona")
    out = call_tool(url, ADMIN_TOKEN, "revoke_oauth_session", {"session_id": mona_session})["structuredContent"]
    assert out == {"status": "revoked", "session_id": mona_session}, out
    res = call_tool(url, ADMIN_TOKEN, "revoke_oauth_token", {"jti": "no-such-jti"})
    assert res["isError"] is True and "not found" in res["content"][0]["text"], res
    res = call_tool(url, ADMIN_TOKEN, "revoke_oauth_token", {"jti": "x", "extra": 1})
    assert res["isError"] is True and "extra" in res["content"][0]["text"], res
    # key rotation: a new current key, the old one still published
    rotated = call_tool(url, ADMIN_TOKEN, "rotate_oauth_keys", {})["structuredContent"]
    kids = {k["kid"] for k in rotated["jwks"]["keys"]}
    old_kid = jwt_header(admin_flow.storage.tokens.access_token)["kid"]
    assert rotated["status"] == "rotated" and rotated["current_kid"] != old_kid and {old_kid, rotated["current_kid"]} <= kids, rotated
    # deleting the client: gone for show and list
    out = call_tool(url, ADMIN_TOKEN, "delete_oauth_client", {"client_id": mona["client_id"]})["structuredContent"]
    assert out == {"status": "deleted", "client_id": mona["client_id"]}, out
    res = call_tool(url, ADMIN_TOKEN, "show_oauth_client", {"client_id": mona["client_id"]})
    assert res["isError"] is True and "not found" in res["content"][0]["text"], res
