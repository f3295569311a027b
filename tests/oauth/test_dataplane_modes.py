"""Data-plane authentication in each `auth_mode` with credentials issued the
real way (authorization code + PKCE through the IdP, and the browser login of
a proxy), not minted by the admin test-token endpoint. A backend that echoes
the headers it received shows what the proxy let through."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from helpers import jwt_parts
from test_security import DataPlane, _start_proxy_login


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _protected(server, echo: str, host: str, mode: str) -> DataPlane:
    r = server.admin("POST", "/api/v1/proxy/targets/", json={
        "hostname": host, "target_url": echo, "enable_https": False, "auth_enabled": True, "auth_mode": mode})
    assert r.status_code in (200, 201), r.text
    dp = DataPlane(server, host)
    # a new proxy reaches the data plane by change event
    deadline = time.monotonic() + 15
    with httpx.Client(timeout=30) as c:
        while dp.get(c, "/").status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)
    return dp


def _seen(r: httpx.Response) -> dict:
    """The headers the backend received (the response must come from it)."""
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def _send(dp: DataPlane, headers: dict) -> httpx.Response:
    with httpx.Client(timeout=30, follow_redirects=False) as c:
        return c.get(f"{dp.base}/page", headers={"Host": dp.host, **headers})


def test_forward_mode_with_a_token_from_the_code_flow(flows, server, echo):
    dp = _protected(server, echo, "fwd-real.test", "forward")
    r = _send(dp, {})
    assert r.status_code == 401
    assert 'resource_metadata="http://fwd-real.test/.well-known/oauth-protected-resource"' in r.headers["www-authenticate"]
    reg = flows.register()
    tok = flows.tokens(reg, login="alice", resource="https://fwd-real.test")
    seen = _seen(_send(dp, {"Authorization": f"Bearer {tok['access_token']}", "X-Auth-User": "mallory"}))
    assert seen["x-auth-user"] == "alice", seen
    assert "authorization" not in seen, "the token is passed only with auth_pass_token"
    # the same real flow for another registered resource is refused here: audience, not signature, decides
    other = flows.tokens(reg, login="alice")
    r = _send(dp, {"Authorization": f"Bearer {other['access_token']}"})
    assert r.status_code == 401 and "audience" in r.text, r.text


def test_redirect_mode_with_the_browser_login_of_the_proxy(flows, server, echo):
    dp = _protected(server, echo, "redir-real.test", "redirect")
    r = _send(dp, {"Accept": "text/html"})
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"].startswith("/_portcullis/login?"), r.headers["location"]
    # the login the redirect leads to, completed by the same browser: a session cookie
    callback, name, value = _start_proxy_login(flows, dp, "/page")
    with httpx.Client(follow_redirects=False, timeout=30) as c:
        r = c.get(f"{dp.base}{callback}", headers={"Host": dp.host, "Cookie": f"{name}={value}"})
    assert r.status_code in (302, 303) and r.headers["location"] == "/page", r.text
    session = next(v.split(";")[0] for k, v in r.headers.multi_items() if k.lower() == "set-cookie" and v.startswith("unified_auth_token="))
    seen = _seen(_send(dp, {"Accept": "text/html", "Cookie": session}))
    assert seen["x-auth-user"] == "alice", seen
    assert "unified_auth_token" not in seen.get("cookie", ""), "the session cookie is not forwarded to the backend"


def test_passthrough_mode_with_and_without_a_token_from_the_code_flow(flows, server, echo):
    dp = _protected(server, echo, "pass-real.test", "passthrough")
    # anonymous requests pass, but never with an identity, forged or otherwise
    seen = _seen(_send(dp, {"X-Auth-User": "mallory", "X_Auth_User": "mallory"}))
    assert not any(k.startswith(("x-auth-", "x_auth_")) for k in seen), seen
    reg = flows.register()
    tok = flows.tokens(reg, login="alice", resource="https://pass-real.test")
    seen = _seen(_send(dp, {"Authorization": f"Bearer {tok['access_token']}"}))
    assert seen["x-auth-user"] == "alice", seen


def test_proxy_sessions_list_only_the_tokens_issued_for_that_proxy(flows, server, echo):
    _protected(server, echo, "sess-a.test", "forward")
    _protected(server, echo, "sess-b.test", "forward")
    reg = flows.register()
    a = flows.tokens(reg, login="alice", resource="https://sess-a.test")
    b = flows.tokens(reg, login="bob", resource="https://sess-b.test")
    ja, jb = (jwt_parts(t["access_token"])[1]["jti"] for t in (a, b))

    def listed(host: str) -> list[dict]:
        r = server.admin("GET", f"/api/v1/oauth/proxies/{host}/sessions")
        assert r.status_code == 200, r.text
        return r.json()

    on_a = listed("sess-a.test")
    assert ja in {t["jti"] for t in on_a} and jb not in {t["jti"] for t in on_a}, on_a
    assert next(t for t in on_a if t["jti"] == ja)["username"] == "alice"
    assert jb in {t["jti"] for t in listed("sess-b.test")}
    assert server.admin("GET", "/api/v1/oauth/proxies/no-such.test/sessions").status_code == 404
    # revoking the session ends the token on the data plane, and the list shows it no more
    fam = next(t for t in on_a if t["jti"] == ja)["family"]
    assert fam in {s["session_id"] for s in server.admin("GET", "/api/v1/oauth/sessions").json()}
    assert server.admin("DELETE", f"/api/v1/oauth/sessions/{fam}").status_code == 200
    dp = DataPlane(server, "sess-a.test")
    deadline = time.monotonic() + 5
    while _send(dp, {"Authorization": f"Bearer {a['access_token']}"}).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _send(dp, {"Authorization": f"Bearer {a['access_token']}"}).status_code == 401
    assert ja not in {t["jti"] for t in listed("sess-a.test")}
