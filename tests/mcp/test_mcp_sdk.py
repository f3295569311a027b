"""Issue 6 acceptance: the official MCP Python SDK client (PyPI `mcp`)
discovers the protected resource metadata from a 401 on an MCP backend behind
the proxy, registers itself, runs the authorization code flow (PKCE, resource
indicator) against our authorization server, logging in through the GitHub
stand-in, and calls a tool through the proxy; the backend gets the caller's
identity and never the bearer token."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata, OAuthToken

from conftest import free_port
from sdk_flow import Browser, MemoryStorage, jwt_claims

LOGIN = "octocat"


@dataclass
class Seen:
    """One request the SDK's HTTP client sent, and the answer."""

    method: str
    url: str
    body: bytes
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Run:
    seen: list[Seen]
    browser: Browser
    storage: MemoryStorage
    tools: list[str]
    add_result: object
    echo_result: object
    first_tokens: OAuthToken
    after_refresh: object


async def sdk_session(mcp_url: str, storage: MemoryStorage, browser: Browser, seen: list[Seen]) -> Run:
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="portcullis MCP SDK test",
            redirect_uris=[browser.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )

    async def on_request(req: httpx2.Request) -> None:
        try:
            body = req.content
        except httpx2.RequestNotRead:
            body = b""
        seen.append(Seen(req.method, str(req.url), body))

    async def on_response(resp: httpx2.Response) -> None:
        for s in reversed(seen):
            if s.url == str(resp.request.url) and s.method == resp.request.method and s.status == 0:
                s.status = resp.status_code
                s.headers = {k.lower(): v for k, v in resp.headers.items()}
                break

    client = httpx2.AsyncClient(
        auth=provider,
        timeout=httpx2.Timeout(30, read=60),
        # A forged identity header: the proxy must replace it.
        headers={"X-Auth-User": "mallory"},
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    async with client:
        with anyio.fail_after(60):
            async with streamable_http_client(mcp_url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = [t.name for t in (await session.list_tools()).tools]
                    add = await session.call_tool("add", {"a": 2, "b": 3})
                    echo = await session.call_tool("echo", {"text": "through the proxy"})
                    # The access token runs out: the SDK refreshes it at our /token
                    # before the next request, and the call goes on with the new one.
                    first = storage.tokens
                    provider.context.token_expiry_time = time.time() - 1
                    again = await session.call_tool("add", {"a": 40, "b": 2})
    return Run(seen, browser, storage, tools, add, echo, first, again)


@pytest.fixture(scope="module")
def run(mcp_url) -> Run:
    browser = Browser(f"http://127.0.0.1:{free_port()}/callback")
    seen: list[Seen] = []
    try:
        return anyio.run(sdk_session, mcp_url, MemoryStorage(), browser, seen)
    except BaseException as e:
        trace = "\n".join(f"  {s.method} {s.url} -> {s.status}" for s in seen)
        pytest.fail(f"MCP SDK flow failed: {e!r}\nrequests:\n{trace}\nbrowser hops: {browser.hops}")


def text_of(result) -> str:
    assert not result.is_error, result
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def test_sdk_client_authorizes_through_portcullis_and_calls_a_tool(run: Run, portcullis, mcp_url, github):
    assert {"add", "echo"} <= set(run.tools)
    assert text_of(run.add_result) == "5"
    assert text_of(run.echo_result) == "through the proxy"

    api = portcullis.issuer
    http_origin = f"http://127.0.0.1:{portcullis.http_port}"
    by = lambda method, url: [s for s in run.seen if s.method == method and s.url.split("?")[0] == url]  # noqa: E731

    # 1. the first MCP request was refused with a pointer to the metadata
    first = run.seen[0]
    assert (first.method, first.url, first.status) == ("POST", mcp_url, 401), first
    www = first.headers["www-authenticate"]
    meta_url = f"{http_origin}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{meta_url}"' in www, www
    # 2. the SDK fetched exactly that metadata document first, then the server's metadata
    assert run.seen[1].url == meta_url and run.seen[1].status == 200, run.seen[1]
    asm = by("GET", f"{api}/.well-known/oauth-authorization-server")
    assert asm and asm[0].status == 200, [(s.method, s.url, s.status) for s in run.seen]
    # 3. dynamic client registration at our /register
    reg = by("POST", f"{api}/register")
    assert len(reg) == 1 and reg[0].status == 201, reg
    assert json.loads(reg[0].body)["redirect_uris"] == [run.browser.redirect_uri]
    client_id = run.storage.client_info.client_id
    assert client_id
    # 4. the authorization request names the resource, PKCE S256 and the scope from the metadata
    q = parse_qs(urlsplit(run.browser.authorization_url).query)
    assert run.browser.authorization_url.startswith(f"{api}/authorize?")
    assert q["resource"] == [mcp_url], q
    assert q["code_challenge_method"] == ["S256"] and q["client_id"] == [client_id]
    assert q["scope"] == ["mcp"], q
    # the login went through the GitHub stand-in and back to our /callback
    hop_urls = [u for _, u in run.browser.hops]
    assert any(u.startswith(f"{github.url}/login/oauth/authorize?") for u in hop_urls), hop_urls
    assert any(u.startswith(f"{api}/callback?") for u in hop_urls), hop_urls
    assert github.requests_to("/login/oauth/authorize")[-1]["query"]["redirect_uri"] == [f"{api}/callback"]
    assert github.requests_to("/user")
    # RFC 9207: the authorization response carried our issuer
    assert run.browser.result.iss == api
    # 5. the token request sent the code, the verifier and the resource
    tok = [s for s in by("POST", f"{api}/token") if s.form().get("grant_type") == ["authorization_code"]]
    assert len(tok) == 1 and tok[0].status == 200, tok
    form = tok[0].form()
    assert form["grant_type"] == ["authorization_code"] and form["resource"] == [mcp_url] and "code_verifier" in form, form
    # 6. the access token is ours, for this user, with the MCP resource as audience
    claims = jwt_claims(run.storage.tokens.access_token)
    assert claims["iss"] == api
    assert claims["aud"] == [mcp_url], claims
    assert claims["preferred_username"] == LOGIN
    assert claims["client_id"] == client_id
    assert "mcp" in claims["scope"].split()
    # 7. then every MCP request carried that token and passed
    mcp_calls = [s for s in run.seen if s.url == mcp_url]
    assert mcp_calls[-1].status in (200, 202, 204), [(s.method, s.status) for s in mcp_calls]
    assert all(s.status != 401 for s in mcp_calls[1:]), [(s.method, s.status) for s in mcp_calls]


def test_sdk_refreshes_the_token_and_keeps_calling(run: Run, portcullis, mcp_url):
    api = portcullis.issuer
    refresh = [s for s in run.seen if s.method == "POST" and s.url == f"{api}/token" and s.form().get("grant_type") == ["refresh_token"]]
    assert len(refresh) == 1 and refresh[0].status == 200, [(s.status, s.form()) for s in refresh]
    form = refresh[0].form()
    assert form["refresh_token"] == [run.first_tokens.refresh_token]
    assert form["resource"] == [mcp_url], form
    new = run.storage.tokens
    assert new.access_token != run.first_tokens.access_token
    assert new.refresh_token and new.refresh_token != run.first_tokens.refresh_token, "refresh token not rotated"
    claims = jwt_claims(new.access_token)
    assert claims["aud"] == [mcp_url] and claims["preferred_username"] == LOGIN, claims
    assert text_of(run.after_refresh) == "42"
    # the call after the refresh carried the new token and passed
    last_posts = [s for s in run.seen if s.method == "POST" and s.url == mcp_url]
    assert last_posts[-1].status == 200


def test_backend_gets_identity_but_never_the_bearer_token(run: Run, backend):
    reqs = [r for r in backend.seen() if r["path"] == "/mcp"]
    assert reqs, "the backend saw no MCP request"
    methods = {r["method"] for r in reqs}
    assert "POST" in methods, methods
    for r in reqs:
        h = r["headers"]
        assert "authorization" not in h, f"bearer token passed to the backend: {r}"
        assert h.get("x-auth-user") == [LOGIN], f"identity header missing or forged: {r}"
        assert "mcp" in h.get("x-auth-scopes", [""])[0].split(), r
        assert h.get("x-auth-email"), r
        assert h.get("x-auth-user-id"), r


def test_requests_without_a_token_are_refused_before_the_backend(run: Run, mcp_url, backend, portcullis):
    before = len(backend.seen())
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    hdrs = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    r = httpx.post(mcp_url, json=init, headers=hdrs, timeout=10)
    assert r.status_code == 401, r.text
    www = r.headers["www-authenticate"]
    assert "resource_metadata=" in www and "error=" not in www, www
    # a made-up token: 401 invalid_token
    r = httpx.post(mcp_url, json=init, headers={**hdrs, "Authorization": "Bearer not.a.token"}, timeout=10)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], (r.status_code, r.headers)
    # the SSE stream (GET) is refused too, before any stream starts
    r = httpx.get(mcp_url, headers={"Accept": "text/event-stream"}, timeout=10)
    assert r.status_code == 401
    assert len(backend.seen()) == before, "an unauthenticated request reached the backend"
    # the metadata stays public
    meta = httpx.get(f"http://127.0.0.1:{portcullis.http_port}/.well-known/oauth-protected-resource/mcp", timeout=10)
    assert meta.status_code == 200
    doc = meta.json()
    assert doc["resource"] == mcp_url
    assert doc["authorization_servers"] == [portcullis.issuer]
    assert doc["scopes_supported"] == ["mcp"]
