"""OAuth 2.1 rules at /authorize: PKCE S256 only, exact redirect URIs (loopback
may vary the port), errors before the redirect URI is verified are never
redirected, `iss` in every authorization response (RFC 9207)."""

import httpx
import pytest

from conftest import MCP_RESOURCE
from helpers import add_query, origin, pkce_pair, query, unused_loopback_redirect, without_query


def _authorize_url(issuer, client_id, redirect_uri, **params):
    base = {"response_type": "code", "client_id": client_id, "state": "st-123"}
    if redirect_uri is not None:
        base["redirect_uri"] = redirect_uri
    base.update(params)
    return add_query(f"{issuer}/authorize", {k: v for k, v in base.items() if v is not None})


def _no_redirect(r: httpx.Response):
    assert r.status_code == 400, f"{r.status_code} {r.headers.get('location')} {r.text}"
    assert "location" not in r.headers, f"redirected to {r.headers['location']}"


def test_plain_pkce_is_refused_with_an_error_redirect(flows, server):
    reg = flows.register()
    verifier, _ = pkce_pair()
    url = _authorize_url(server.issuer, reg["client_id"], reg["redirect_uris"][0], code_challenge=verifier, code_challenge_method="plain", resource=MCP_RESOURCE)
    r = httpx.get(url)
    assert r.status_code in (302, 303), r.text
    loc = r.headers["location"]
    assert without_query(loc) == reg["redirect_uris"][0]
    p = query(loc)
    assert p["error"] == "invalid_request"
    assert p["state"] == "st-123"
    assert p["iss"] == server.issuer


@pytest.mark.parametrize("method", [None, "S256"], ids=["no-challenge-no-method", "method-without-challenge"])
def test_missing_pkce_is_refused(flows, server, method):
    reg = flows.register()
    r = httpx.get(_authorize_url(server.issuer, reg["client_id"], reg["redirect_uris"][0], code_challenge_method=method))
    assert r.status_code in (302, 303), r.text
    p = query(r.headers["location"])
    assert p["error"] == "invalid_request" and p["iss"] == server.issuer and p["state"] == "st-123"


def test_unsupported_response_type_redirects_with_iss(flows, server):
    reg = flows.register()
    _, ch = pkce_pair()
    r = httpx.get(_authorize_url(server.issuer, reg["client_id"], reg["redirect_uris"][0], response_type="token", code_challenge=ch, code_challenge_method="S256"))
    assert r.status_code in (302, 303), r.text
    p = query(r.headers["location"])
    assert p["error"] == "unsupported_response_type" and p["iss"] == server.issuer


@pytest.mark.parametrize("variant", [
    "https://app.example/cb/",          # trailing slash
    "https://app.example/cb2",          # different path
    "https://app.example/cb/x",         # sub-path
    "https://app.example/cb?x=1",       # extra query
    "https://evil.example/cb",          # different host
    "https://app.example.evil.test/cb",  # host suffix
    "https://app.example:8443/cb",      # different port (not loopback)
    "http://app.example/cb",            # different scheme
    "https://APP.example/CB",           # case of the path differs
    "https://unregistered.example/callback",
])
def test_redirect_uri_variants_are_refused_without_redirect(flows, server, variant):
    reg = flows.register(redirect_uris=["https://app.example/cb", unused_loopback_redirect()])
    _, ch = pkce_pair()
    r = httpx.get(_authorize_url(server.issuer, reg["client_id"], variant, code_challenge=ch, code_challenge_method="S256"))
    _no_redirect(r)


def test_loopback_variants_other_than_port_are_refused(flows, server):
    reg = flows.register(redirect_uris=["http://127.0.0.1:5555/cb"])
    _, ch = pkce_pair()
    for variant in ["http://localhost:5555/cb", "http://127.0.0.1:5555/other", "http://127.0.0.2:5555/cb", "https://127.0.0.1:5555/cb"]:
        r = httpx.get(_authorize_url(server.issuer, reg["client_id"], variant, code_challenge=ch, code_challenge_method="S256"))
        _no_redirect(r)


def test_redirect_uri_required_when_several_are_registered(flows, server):
    reg = flows.register(redirect_uris=["https://app.example/a", "https://app.example/b"])
    _, ch = pkce_pair()
    _no_redirect(httpx.get(_authorize_url(server.issuer, reg["client_id"], None, code_challenge=ch, code_challenge_method="S256")))


def test_unknown_client_is_not_redirected(server):
    _, ch = pkce_pair()
    _no_redirect(httpx.get(_authorize_url(server.issuer, "client_nope", "https://app.example/cb", code_challenge=ch, code_challenge_method="S256")))
    _no_redirect(httpx.get(_authorize_url(server.issuer, None, "https://app.example/cb", code_challenge=ch, code_challenge_method="S256")))


def test_loopback_redirect_with_another_port_is_accepted(flows, server, idp):
    registered = "http://127.0.0.1:5555/cb"
    reg = flows.register(redirect_uris=[registered])
    other = unused_loopback_redirect()
    assert origin(other) != origin(registered)
    c, res, verifier, state = flows.authorize(reg, login="dave", redirect_uri=other)
    assert res.redirect and without_query(res.redirect) == other, res.redirect
    p = res.params
    assert "code" in p and p["iss"] == server.issuer
    tok = c.fetch_token(f"{server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
    assert tok["access_token"]


def test_token_request_redirect_uri_must_match_the_authorization(flows, server):
    reg = flows.register(redirect_uris=["http://127.0.0.1:5555/cb"])
    used = unused_loopback_redirect()
    c, res, verifier, state = flows.authorize(reg, login="dave", redirect_uri=used)
    code = res.params["code"]
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:5555/cb",
                                                   "code_verifier": verifier}, auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_invalid_grant(flows, server):
    reg = flows.register()
    c, res, verifier, state = flows.authorize(reg, login="dave")
    other, _ = pkce_pair()
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "authorization_code", "code": res.params["code"], "redirect_uri": reg["redirect_uris"][0],
                                                   "code_verifier": other}, auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "no-store" in r.headers.get("cache-control", "")


def test_code_is_bound_to_the_client(flows, server):
    a = flows.register()
    b = flows.register(redirect_uris=a["redirect_uris"])
    c, res, verifier, state = flows.authorize(a, login="dave")
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "authorization_code", "code": res.params["code"], "redirect_uri": a["redirect_uris"][0],
                                                   "code_verifier": verifier}, auth=(b["client_id"], b["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_implicit_and_password_grants_are_refused_at_the_token_endpoint(flows, server):
    reg = flows.register()
    for grant in ("password", "implicit", "client_credentials"):
        r = httpx.post(f"{server.issuer}/token", data={"grant_type": grant, "username": "alice", "password": "x"}, auth=(reg["client_id"], reg["client_secret"]))
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "unsupported_grant_type", r.text


def test_invalid_target_at_authorize(flows, server):
    reg = flows.register()
    for bad in ["https://unknown.test/mcp", "http://mcp.test/mcp", "https://mcp.test/mcp#frag", "not-a-uri"]:
        _, res, _, state = flows.authorize(reg, resource=bad)
        assert res.redirect, f"{bad}: {res.response.status_code} {res.response.text}"
        p = res.params
        assert p["error"] == "invalid_target", (bad, p)
        assert p["iss"] == server.issuer and p["state"] == state


def test_invalid_target_at_token(flows, server):
    server.create_proxy("other.test")
    reg = flows.register()
    for bad in ["https://unknown.test/mcp", "https://other.test/mcp"]:  # unknown; known but not authorized
        c, res, verifier, state = flows.authorize(reg, login="dave", resource=MCP_RESOURCE)
        r = httpx.post(f"{server.issuer}/token", data={"grant_type": "authorization_code", "code": res.params["code"], "redirect_uri": reg["redirect_uris"][0],
                                                       "code_verifier": verifier, "resource": bad}, auth=(reg["client_id"], reg["client_secret"]))
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_target", (bad, r.text)


def test_unknown_scope_redirects_invalid_scope_with_iss(flows, server):
    reg = flows.register()
    _, res, _, state = flows.authorize(reg, scope="mcp root")
    p = res.params
    assert p["error"] == "invalid_scope" and p["iss"] == server.issuer and p["state"] == state


def test_code_verifier_shorter_than_43_is_refused(flows, server):
    """RFC 7636 §4.1: 43 to 128 characters, even when its S256 matches the challenge."""
    import base64
    import hashlib

    reg = flows.register()
    short = "tooshort-verifier"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(short.encode()).digest()).rstrip(b"=").decode()
    url = _authorize_url(server.issuer, reg["client_id"], reg["redirect_uris"][0], code_challenge=challenge, code_challenge_method="S256", resource=MCP_RESOURCE)
    with flows.browser("dave") as b:
        res = b.open(url)
    code = res.params["code"]
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": reg["redirect_uris"][0], "code_verifier": short},
                   auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_redirect_uri_omitted_in_both_requests(flows, server):
    reg = flows.register()
    verifier, ch = pkce_pair()
    url = _authorize_url(server.issuer, reg["client_id"], None, code_challenge=ch, code_challenge_method="S256", resource=MCP_RESOURCE)
    with flows.browser("dave") as b:
        res = b.open(url)
    assert without_query(res.redirect) == reg["redirect_uris"][0]
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "authorization_code", "code": res.params["code"], "code_verifier": verifier},
                   auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 200, r.text
