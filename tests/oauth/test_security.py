"""Regression tests of the OAuth security audit (issue 20, and issue 13 items
1, 7, 8 and the /introspect part of 9), each driven black-box through the
real servers: the real oidc-provider or the GitHub stand-in upstream, the
data plane for proxy logins, and a browser-like client following the HTML
pages and forms."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from conftest import ADMIN_TOKEN, MCP_RESOURCE, Portcullis
from github_standin import GithubUser
from helpers import DEVICE_GRANT, Browser, add_query, decision_form, jwt_parts, pkce_pair, query, unused_loopback_redirect

CLI = "portcullis-cli"


def auth_url(flows, reg, resource: str | None = MCP_RESOURCE, scope: str | None = None, **extra) -> tuple[str, str, str]:
    """An authorization URL for `reg`: (url, state, verifier)."""
    c = flows.client(reg, scope=scope)
    verifier, _ = pkce_pair()
    url, state = c.create_authorization_url(f"{flows.issuer}/authorize", code_verifier=verifier, **extra)
    c.close()
    if resource:
        url = add_query(url, [("resource", resource)])
    return url, state, verifier


def submit(b: Browser, page: httpx.Response, decision: str, **override) -> httpx.Response:
    """Submits our consent / device page's `decision` form from browser `b`."""
    form = decision_form(page.text, decision)
    assert form, f"no {decision} form on the page: {page.text[:500]}"
    data = {n: v for n, v, _ in form["inputs"]}
    data.update(override)
    return b.http.post(urljoin(str(page.url), form["action"]), data=data)


def exchange(flows, reg, redirect: str, verifier: str, **extra) -> httpx.Response:
    code = query(redirect)["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": reg["redirect_uris"][0], "code_verifier": verifier, **extra}
    if reg.get("client_secret"):
        return httpx.post(f"{flows.issuer}/token", data=data, auth=(reg["client_id"], reg["client_secret"]))
    return httpx.post(f"{flows.issuer}/token", data={**data, "client_id": reg["client_id"]})


# -- issue 13 item 1: privileges only from the server's configuration ---------------


def test_a_proxy_admin_list_never_grants_admin(flows, server):
    # A user-scope API token owns a proxy whose per-proxy lists say "everyone is admin".
    r = server.admin("POST", "/api/v1/tokens", json={"name": "escalating-user", "scope": "user"})
    assert r.status_code in (200, 201), r.text
    user_token = r.json()["token"]
    body = {"hostname": "escalate.test", "target_url": "http://127.0.0.1:9", "enable_https": False,
            "oauth_admin_users": ["*"], "oauth_user_users": ["*"], "auth_required_users": ["*"]}
    r = httpx.post(f"{server.url}/api/v1/proxy/targets/", json=body, headers={"Authorization": f"Bearer {user_token}"})
    # Only the admin sets per-proxy scope lists: the user's create is refused naming the field.
    assert r.status_code == 403, r.text
    assert r.json()["error"] and "oauth_admin_users" in r.json()["message"], r.text
    assert server.admin("POST", "/api/v1/proxy/targets/", json=body).status_code in (200, 201)
    secret = server.admin("POST", "/api/v1/tokens", json={"name": "someone-elses", "scope": "admin"}).json()["token"]

    # dave holds only `mcp` in OAUTH_MCP_USERS: asking for admin through that proxy gets nothing more
    reg = flows.register()
    for resource in (server.issuer, MCP_RESOURCE):
        c, res, verifier, state = flows.authorize(reg, login="dave", scope="admin user", resource=resource, proxy_hostname="escalate.test")
        p = res.params
        if "code" in p:
            tok = c.fetch_token(f"{server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
            scopes = tok["scope"].split()
            assert "admin" not in scopes and "user" not in scopes, tok
            r = httpx.get(f"{server.url}/api/v1/tokens/someone-elses/reveal", headers={"Authorization": f"Bearer {tok['access_token']}"})
            assert r.status_code in (401, 403) and secret not in r.text, r.text
        else:
            assert p["error"] == "access_denied", p
        c.close()
    # the per-proxy list still narrows: alice (configured admin) keeps admin only where a list names her
    server.admin("POST", "/api/v1/proxy/targets/", json={"hostname": "narrow-admin.test", "target_url": "http://127.0.0.1:9",
                                                         "enable_https": False, "oauth_admin_users": ["nobody"]})
    tok = flows.tokens(reg, login="alice", proxy_hostname="narrow-admin.test")
    assert "admin" not in tok["scope"].split(), tok["scope"]


# -- issue 20 items 3 and 4: audiences ----------------------------------------------------


def test_admin_api_needs_its_resource_named_and_an_entitled_user(flows, server):
    reg = flows.register()
    # no resource: an audience nothing accepts, even for the configured admin
    tok = flows.tokens(reg, login="alice", resource=None)
    _, claims = jwt_parts(tok["access_token"])
    assert claims["aud"] == [f"urn:portcullis:client:{reg['client_id']}"] and "admin" in claims["scope"].split()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    assert httpx.get(f"{server.url}/api/v1/proxy/targets/", headers=h).status_code == 401
    assert flows.verify(tok["access_token"], resource=server.issuer).status_code == 401
    # named explicitly: the admin API accepts it
    tok = flows.tokens(reg, login="alice", resource=server.issuer)
    assert jwt_parts(tok["access_token"])[1]["aud"] == [server.issuer]
    assert httpx.get(f"{server.url}/api/v1/proxy/targets/", headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 200
    # a user without admin or user in the configuration cannot get the admin API's audience
    _, res, _, _ = flows.authorize(reg, login="dave", resource=server.issuer)
    assert res.params["error"] == "access_denied", res.params
    # device-flow tokens follow the same rule
    d = httpx.post(f"{server.issuer}/device/code", data={"client_id": CLI}).json()
    with flows.browser("alice") as b:
        assert "Device connected" in b.open(d["verification_uri_complete"]).response.text
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": DEVICE_GRANT, "device_code": d["device_code"], "client_id": CLI})
    assert r.status_code == 200, r.text
    assert jwt_parts(r.json()["access_token"])[1]["aud"] == [f"urn:portcullis:client:{CLI}"]
    assert httpx.get(f"{server.url}/api/v1/proxy/targets/", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).status_code == 401


def test_verify_checks_the_audience_against_the_host_asked_about(flows, server):
    server.create_proxy("fa.test")
    reg = flows.register()
    at = flows.tokens(reg, login="alice", resource="https://fa.test")["access_token"]
    url = f"{server.issuer}/verify"
    h = {"Authorization": f"Bearer {at}"}
    # the calling proxy's X-Forwarded-Host
    r = httpx.get(url, headers={**h, "X-Forwarded-Host": "fa.test", "X-Forwarded-Proto": "https"})
    assert r.status_code == 200 and r.headers["x-auth-user"] == "alice", r.text
    for other in ("mcp.test", "unknown.example", "FA.test.evil.example"):
        r = httpx.get(url, headers={**h, "X-Forwarded-Host": other, "X-Forwarded-Proto": "https"})
        assert r.status_code == 401 and "x-auth-user" not in r.headers, (other, r.text)
    # the documented parameters
    assert httpx.get(url, params={"rd": "https://fa.test/some/page"}, headers=h).status_code == 200
    assert httpx.get(url, params={"rd": "https://mcp.test/some/page"}, headers=h).status_code == 401
    assert httpx.get(url, params={"resource": "https://fa.test"}, headers=h).status_code == 200
    assert httpx.get(url, params={"resource": MCP_RESOURCE}, headers=h).status_code == 401
    # nothing says which host: refused
    r = httpx.get(url, headers=h)
    assert r.status_code == 401 and "X-Forwarded-Host" in r.json()["error_description"]


# -- issue 13 item 9: introspection ------------------------------------------------------


def test_introspection_by_a_client_covers_only_its_own_tokens(flows, server):
    owner, other = flows.register(), flows.register()
    tok = flows.tokens(owner, login="dave")
    for t in (tok["access_token"], tok["refresh_token"]):
        assert flows.introspect(t, owner).json()["active"] is True
        assert flows.introspect(t, other).json() == {"active": False}
    # once the admin marks it as a resource server, it may
    r = server.admin("PATCH", f"/api/v1/oauth/clients/{other['client_id']}", json={"resource_server": True})
    assert r.status_code == 200 and r.json()["resource_server"] is True
    assert flows.introspect(tok["access_token"], other).json()["active"] is True
    assert server.admin("PATCH", f"/api/v1/oauth/clients/{other['client_id']}", json={"resource_server": "yes"}).status_code == 422


# -- issue 13 item 7 and issue 20 item 2: logins bound to the browser -----------------------


class DataPlane:
    """Requests to a proxy host through the data plane's HTTP listener."""

    def __init__(self, server: Portcullis, host: str):
        self.base = f"http://127.0.0.1:{server.env['HTTP_PORT']}"
        self.host = host

    def get(self, client: httpx.Client, path_and_query: str) -> httpx.Response:
        return client.get(f"{self.base}{path_and_query}", headers={"Host": self.host})


def _start_proxy_login(flows, dp: DataPlane, rd: str) -> tuple[str, str, str]:
    """Starts /_portcullis/login?rd= in a browser and logs in at the IdP; returns
    (the callback path the IdP login sent the browser to, the state cookie's name, its value)."""
    deadline = time.monotonic() + 15
    with httpx.Client(follow_redirects=False, timeout=30) as c:
        # a new proxy reaches the data plane by change event: poll until it serves the host
        while True:
            r = dp.get(c, f"/_portcullis/login?rd={rd}")
            if r.status_code in (302, 303) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert r.status_code in (302, 303), r.text
    cookies = [v for k, v in r.headers.multi_items() if k.lower() == "set-cookie" and v.startswith("portcullis_login_")]
    name, value = cookies[0].split(";")[0].split("=", 1) if cookies else ("no-state-cookie", "")
    assert not cookies or ("HttpOnly" in cookies[0] and "SameSite=Lax" in cookies[0]), cookies
    with flows.browser("alice") as b:
        res = b.open(r.headers["location"])
    assert res.redirect and res.redirect.startswith(f"http://{dp.host}/_portcullis/callback?"), res.redirect
    cb = urlsplit(res.redirect)
    return f"{cb.path}?{cb.query}", name, value


def test_proxy_login_callback_needs_the_browser_that_started_it(flows, server):
    server.create_proxy("login.test")
    dp = DataPlane(server, "login.test")
    # the attacker's own login, its callback URL sent to a victim: refused with an explanation, no session cookie
    callback, name, value = _start_proxy_login(flows, dp, "/after")
    with httpx.Client(follow_redirects=False, timeout=30) as victim:
        r = dp.get(victim, callback)
    assert r.status_code == 400 and "not started in this browser" in r.text, r.text
    assert "unified_auth_token" not in r.headers.get("set-cookie", "")
    # the browser that started it completes it: session cookie and a same-host return
    callback, name, value = _start_proxy_login(flows, dp, "/after?x=1")
    assert name.startswith("portcullis_login_"), "no state cookie was set"
    with httpx.Client(follow_redirects=False, timeout=30) as c:
        r = c.get(f"{dp.base}{callback}", headers={"Host": dp.host, "Cookie": f"{name}={value}"})
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"] == "/after?x=1"
    assert any(v.startswith("unified_auth_token=") for k, v in r.headers.multi_items() if k.lower() == "set-cookie")


@pytest.mark.parametrize("rd", ["/%09/evil.example", "/%0A/x", "//evil.example", "/%5Cevil.example", "/%0D%0ALocation:%20http://evil.example"])
def test_proxy_login_returns_only_to_a_same_host_path(flows, server, rd):
    server.admin("POST", "/api/v1/proxy/targets/", json={"hostname": "rd.test", "target_url": "http://127.0.0.1:9", "enable_https": False})
    dp = DataPlane(server, "rd.test")
    callback, name, value = _start_proxy_login(flows, dp, rd)
    with httpx.Client(follow_redirects=False, timeout=30) as c:
        r = c.get(f"{dp.base}{callback}", headers={"Host": dp.host, "Cookie": f"{name}={value}"})
    assert r.status_code in (302, 303), (r.status_code, r.text)
    loc = r.headers["location"]
    assert loc == "/", loc


def test_authorization_server_callback_needs_the_browser_that_started_it(flows, server, idp):
    reg = flows.register()
    url, state, _ = auth_url(flows, reg)
    with httpx.Client(follow_redirects=False, timeout=30) as attacker:
        r = attacker.get(url)
        assert r.status_code in (302, 303)
        assert any(k.lower() == "set-cookie" and v.startswith("portcullis_as_") for k, v in r.headers.multi_items()), r.headers
        # the attacker logs in at the IdP and stops before our /callback
        with Browser([idp.issuer], login="alice") as b:
            res = b.open(r.headers["location"])
        assert res.redirect and res.redirect.startswith(f"{server.issuer}/callback?"), res.redirect
    # ... and gets a victim to open it: refused, nothing sent to the client
    with httpx.Client(follow_redirects=False, timeout=30) as victim:
        r = victim.get(res.redirect)
    assert r.status_code == 400 and "not started in this browser" in r.text
    assert "location" not in r.headers


# -- issue 13 item 8: consent for self-registered clients -----------------------------------


def test_consent_page_approve_deny_remembered_and_revocable(flows, server):
    reg = flows.register(client_name="Consent <Test> App", redirect_uris=["https://consent-app.example/cb"])
    user = "dave"  # holds mcp, mcp:read, mcp:write by OAUTH_MCP_USERS

    # first authorization: the page names the client, its redirect host, the scopes and resources
    url, state, verifier = auth_url(flows, reg, scope="mcp")
    with flows.browser(user, decide=None) as b:
        res = b.open(url)
        assert res.redirect is None and res.response.status_code == 200, res.response.text[:500]
        page = res.response
        assert "Consent &lt;Test&gt; App" in page.text and "<Test>" not in page.text
        assert "consent-app.example" in page.text and "mcp" in page.text and MCP_RESOURCE in page.text
        assert page.headers.get("x-frame-options") == "DENY"
        # a forged answer (wrong CSRF token) is refused and spends the page
        r = submit(b, page, "approve", csrf="forged")
        assert r.status_code == 403 and "location" not in r.headers
    # deny: the client gets access_denied, and nothing is remembered
    url, state, verifier = auth_url(flows, reg, scope="mcp")
    with flows.browser(user, decide=None) as b:
        page = b.open(url).response
        r = submit(b, page, "deny")
    assert r.status_code in (302, 303)
    p = query(r.headers["location"])
    assert p["error"] == "access_denied" and p["state"] == state and p["iss"] == server.issuer and "code" not in p
    # an answer from another browser (no binding cookie) is refused
    url, state, verifier = auth_url(flows, reg, scope="mcp")
    with flows.browser(user, decide=None) as b:
        page = b.open(url).response
    with httpx.Client(follow_redirects=False, timeout=30) as other:
        form = decision_form(page.text, "approve")
        r = other.post(urljoin(str(page.url), form["action"]), data={n: v for n, v, _ in form["inputs"]})
    assert r.status_code == 403 and "location" not in r.headers
    # approve: a code, and a working token
    url, state, verifier = auth_url(flows, reg, scope="mcp")
    with flows.browser(user, decide=None) as b:
        page = b.open(url).response
        r = submit(b, page, "approve")
    assert r.status_code in (302, 303)
    p = query(r.headers["location"])
    assert p["state"] == state and p["code"]
    assert exchange(flows, reg, r.headers["location"], verifier).status_code == 200
    # remembered: the next authorization goes straight back to the client
    c, res, verifier, state = flows.authorize(reg, login=user, scope="mcp", decide=None)
    assert res.redirect and "code" in res.params and not res.decision_pages
    # wider than what was consented to: asked again
    c, res, _, _ = flows.authorize(reg, login=user, scope="mcp mcp:read", decide=None)
    assert res.redirect is None and res.response.status_code == 200 and decision_form(res.response.text, "approve")
    # listed and revocable in the OAuth admin API
    mine = [x for x in server.admin("GET", "/api/v1/oauth/consents").json() if x["client_id"] == reg["client_id"]]
    assert len(mine) == 1 and mine[0]["username"] == user and mine[0]["scope"] == ["mcp"]
    r = server.admin("DELETE", f"/api/v1/oauth/clients/{reg['client_id']}/consents/{mine[0]['user_id']}")
    assert r.status_code == 200, r.text
    c, res, _, _ = flows.authorize(reg, login=user, scope="mcp", decide=None)
    assert res.redirect is None and decision_form(res.response.text, "approve")
    # a client the admin marks pre-approved gets no page
    assert server.admin("PATCH", f"/api/v1/oauth/clients/{reg['client_id']}", json={"pre_approved": True}).status_code == 200
    c, res, _, _ = flows.authorize(reg, login=user, scope="mcp", decide=None)
    assert res.redirect and "code" in res.params and not res.decision_pages


# -- issue 20 item 1: device flow ---------------------------------------------------------


def _poll(issuer, device_code):
    return httpx.post(f"{issuer}/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLI})


def test_device_flow_asks_explicit_approval_once(flows, server):
    d = httpx.post(f"{server.issuer}/device/code", data={"client_id": CLI, "resource": MCP_RESOURCE}).json()
    # at least 40 bits: 10 characters of a 20-letter alphabet without vowels or look-alikes
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{5}-[BCDFGHJKLMNPQRSTVWXZ]{5}", d["user_code"]), d["user_code"]
    # the complete URI with a live upstream session: a page with the code and the client, nothing approved yet
    with flows.browser("alice", decide=None) as b:
        res = b.open(d["verification_uri_complete"])
        page = res.response
        assert page.status_code == 200 and d["user_code"] in page.text and "Portcullis CLI" in page.text, page.text[:500]
        assert "Device connected" not in page.text
        r = _poll(server.issuer, d["device_code"])
        assert r.json()["error"] == "authorization_pending", r.text
        # a forged answer is refused
        assert submit(b, page, "approve", csrf="forged").status_code == 403
    with flows.browser("alice", decide=None) as b:
        page = b.open(d["verification_uri_complete"]).response
        r = submit(b, page, "approve")
        assert r.status_code == 200 and "Device connected" in r.text, r.text
    # a second person opening the same link cannot re-approve it
    with flows.browser("mallory", decide="approve") as b:
        res = b.open(d["verification_uri_complete"])
    assert "Device connected" not in res.response.text and not res.decision_pages
    tok = None
    for _ in range(20):
        r = _poll(server.issuer, d["device_code"])
        if r.status_code == 200:
            tok = r.json()
            break
        assert r.json()["error"] in ("authorization_pending", "slow_down"), r.text
        time.sleep(5)
    assert tok, "no token"
    assert jwt_parts(tok["access_token"])[1]["preferred_username"] == "alice"


def test_device_user_code_guesses_are_throttled(server):
    url = f"{server.issuer}/device"
    # per source address (the data plane's X-Forwarded-For when the peer is loopback)
    src = {"X-Forwarded-For": "203.0.113.7"}
    codes = [f"BCDFG-HJKL{c}" for c in "BCDFGHJKLM"]
    statuses = [httpx.get(url, params={"user_code": c}, headers=src).status_code for c in codes[:8]]
    assert statuses[:5] == [404] * 5 and statuses[5:] == [429] * 3, statuses
    # per code: the same wrong code from many addresses
    statuses = [httpx.get(url, params={"user_code": "ZZZZZ-ZZZZZ"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(5)]
    assert statuses[:3] == [404] * 3 and statuses[3:] == [429] * 2, statuses
    # a real code from a fresh address still works
    d = httpx.post(f"{server.issuer}/device/code", data={"client_id": CLI}).json()
    r = httpx.get(url, params={"user_code": d["user_code"]}, headers={"X-Forwarded-For": "192.0.2.44"}, follow_redirects=False)
    assert r.status_code in (302, 303), r.text


# -- issue 20 items 5, 7, 8: refresh, grace window, client registration ----------------------


def test_refresh_keeps_the_grant_scope_when_the_access_token_is_narrowed(flows, server):
    reg = flows.register()
    tok = flows.tokens(reg, login="alice", scope="mcp user")
    auth = (reg["client_id"], reg["client_secret"])
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "scope": "mcp"}, auth=auth)
    assert r.status_code == 200 and r.json()["scope"] == "mcp", r.text
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"]}, auth=auth)
    assert r.status_code == 200 and set(r.json()["scope"].split()) == {"mcp", "user"}, r.text


def test_refresh_follows_the_client_registration(flows, server):
    reg = flows.register(scope="mcp user")
    # the registered scope bounds what the client may ask for
    _, res, _, _ = flows.authorize(reg, login="alice", scope="mcp admin")
    assert res.params["error"] == "invalid_scope", res.params
    tok = flows.tokens(reg, login="alice")
    assert set(tok["scope"].split()) == {"mcp", "user"}, tok["scope"]
    # the client re-registers (RFC 7592) without user and without the refresh grant
    h = {"Authorization": f"Bearer {reg['registration_access_token']}"}
    meta = {"redirect_uris": reg["redirect_uris"], "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "scope": "mcp"}
    assert httpx.put(f"{server.issuer}/register/{reg['client_id']}", json=meta, headers=h).status_code == 200
    auth = (reg["client_id"], reg["client_secret"])
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=auth)
    assert r.status_code == 200 and r.json()["scope"] == "mcp", r.text
    assert httpx.put(f"{server.issuer}/register/{reg['client_id']}", json={**meta, "grant_types": ["authorization_code"]}, headers=h).status_code == 200
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"]}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text
    # and a client without the refresh grant gets no refresh token at all
    url, state, verifier = auth_url(flows, reg)
    with flows.browser("alice") as b:
        res = b.open(url)
    r = exchange(flows, reg, res.redirect, verifier, resource=MCP_RESOURCE)
    assert r.status_code == 200 and "refresh_token" not in r.json(), r.text


def test_refresh_replay_by_a_public_client_revokes_the_family(flows, server):
    reg = flows.register(token_endpoint_auth_method="none")
    tok = flows.tokens(reg, login="dave")
    data = {"grant_type": "refresh_token", "client_id": reg["client_id"]}
    r1 = httpx.post(f"{server.issuer}/token", data={**data, "refresh_token": tok["refresh_token"]})
    assert r1.status_code == 200
    # a replay of the rotated token right away (inside the old grace window) gets nothing ...
    r = httpx.post(f"{server.issuer}/token", data={**data, "refresh_token": tok["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert r1.json()["access_token"] not in r.text
    # ... and the whole family is revoked, the legitimate new tokens included
    r = httpx.post(f"{server.issuer}/token", data={**data, "refresh_token": r1.json()["refresh_token"]})
    assert r.json()["error"] == "invalid_grant"
    assert flows.introspect(r1.json()["access_token"]).json() == {"active": False}


def test_deleting_a_client_revokes_its_tokens(flows, server):
    # a protected proxy: its backend (nothing listens) answers 502 once the token passes, 401 when it does not
    r = server.admin("POST", "/api/v1/proxy/targets/", json={"hostname": "revoke.test", "target_url": "http://127.0.0.1:9", "enable_https": False,
                                                            "auth_enabled": True})
    assert r.status_code in (200, 201), r.text
    dp = DataPlane(server, "revoke.test")
    reg = flows.register()
    tok = flows.tokens(reg, login="dave", resource="https://revoke.test")
    bearer = {"Host": dp.host, "Authorization": f"Bearer {tok['access_token']}"}

    def data_plane_status() -> int:
        return httpx.get(f"{dp.base}/x", headers=bearer).status_code

    deadline = time.monotonic() + 15
    while data_plane_status() == 404 and time.monotonic() < deadline:  # the new proxy reaches the data plane by event
        time.sleep(0.2)
    assert data_plane_status() == 502
    assert flows.verify(tok["access_token"], resource="https://revoke.test").status_code == 200
    assert server.admin("DELETE", f"/api/v1/oauth/clients/{reg['client_id']}").status_code == 200
    assert flows.verify(tok["access_token"], resource="https://revoke.test").status_code == 401
    # the data plane learns the revocation by change event: within the propagation time, not at expiry
    deadline = time.monotonic() + 5
    while data_plane_status() != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert data_plane_status() == 401
    assert flows.introspect(tok["access_token"]).json() == {"active": False}
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
                   auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code in (400, 401)


@pytest.fixture
def restartable(redis, workdir, github):
    """A GitHub-login instance that a test restarts with other settings on the same store."""
    github.add_user(GithubUser(login="gina", id=1007, email="gina-public@users.test",
                               emails=[{"email": "gina@users.test", "verified": False, "primary": True, "visibility": "public"}]))
    made: list[Portcullis] = []

    def start(name: str, env: dict, like: Portcullis | None = None) -> Portcullis:
        extra = {"REDIS_URL": like.env["REDIS_URL"]} if like else {}
        s = Portcullis(name, redis, workdir, {**github.env(), "OAUTH_REGISTRATIONS_PER_HOUR": "1000", **env, **extra},
                       api_port=like.api_port if like else None)
        made.append(s)
        return s

    yield start
    for s in made:
        s.stop()


def test_refresh_reevaluates_entitlements_after_a_restart(restartable, github):
    from conftest import Flows

    before = {"OAUTH_ALLOWED_GITHUB_USERS": "alice,carol", "OAUTH_ADMIN_USERS": "alice", "OAUTH_USER_USERS": "carol", "OAUTH_MCP_USERS": "alice"}
    s1 = restartable("entitle-1", before)
    s1.create_proxy("mcp.test")
    f1 = Flows(s1, github.url, github=github.url)
    reg = f1.register()
    alice, carol = f1.tokens(reg, login="alice"), f1.tokens(reg, login="carol")
    assert "admin" in alice["scope"].split() and "user" in carol["scope"].split()
    f1.close()
    s1.stop()
    # carol removed from the allowlist and every list; alice keeps only mcp
    s2 = restartable("entitle-2", {"OAUTH_ALLOWED_GITHUB_USERS": "alice", "OAUTH_ADMIN_USERS": "", "OAUTH_USER_USERS": "", "OAUTH_MCP_USERS": "alice"}, like=s1)
    auth = (reg["client_id"], reg["client_secret"])
    r = httpx.post(f"{s2.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": carol["refresh_token"]}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = httpx.post(f"{s2.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": alice["refresh_token"]}, auth=auth)
    assert r.status_code == 200, r.text
    scopes = set(r.json()["scope"].split())
    assert scopes and scopes <= {"mcp", "mcp:read", "mcp:write"}, scopes


def test_github_unverified_email_does_not_count(restartable, github):
    from conftest import Flows

    s = restartable("email-gh", {"OAUTH_MCP_USERS": "*"})
    s.create_proxy("mcp.test")
    f = Flows(s, github.url, github=github.url)
    tok = f.tokens(f.register(), login="gina")
    f.close()
    _, claims = jwt_parts(tok["access_token"])
    assert claims["preferred_username"] == "gina"
    assert "email" not in claims or claims["email"] is None, claims


def test_oidc_unverified_email_does_not_count(flows):
    reg = flows.register()
    _, claims = jwt_parts(flows.tokens(reg, login="unverified-ursula")["access_token"])
    assert claims.get("email") is None, claims
    _, claims = jwt_parts(flows.tokens(reg, login="verified-vera")["access_token"])
    assert claims["email"] == "verified-vera@idp.test"


# -- issue 20 item 8: the CIMD address guard ----------------------------------------------------


@pytest.mark.parametrize("host", ["[::7f00:1]", "[64:ff9b::7f00:1]", "[fec0::1]", "198.18.0.1", "0.0.0.1", "[::ffff:127.0.0.1]", "127.0.0.1"])
def test_cimd_guard_refuses_non_global_addresses_with_one_generic_error(server, host):
    _, ch = pkce_pair()
    r = httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": f"https://{host}:9/client.json",
                                                             "redirect_uri": "http://127.0.0.1:5555/cb", "code_challenge": ch, "code_challenge_method": "S256"}))
    assert r.status_code == 400 and "location" not in r.headers
    assert r.json()["error_description"] == "unknown client: the client metadata document could not be retrieved", r.text
