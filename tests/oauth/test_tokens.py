"""Codes, refresh rotation, introspection (RFC 7662), revocation (RFC 7009), /verify."""

import threading
import time

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.jose import JsonWebKey, jwt

from conftest import ADMIN_TOKEN, MCP_RESOURCE
from helpers import jwt_parts


def _refresh(server, reg, rt) -> httpx.Response:
    return httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": rt}, auth=(reg["client_id"], reg["client_secret"]))


def _active(flows, token) -> bool:
    r = flows.introspect(token)
    assert r.status_code == 200, r.text
    return r.json()["active"]


def test_replayed_code_is_refused_and_revokes_its_tokens(flows, server):
    reg = flows.register()
    c, res, verifier, state = flows.authorize(reg, login="dave")
    tok = c.fetch_token(f"{server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
    at, rt = tok["access_token"], tok["refresh_token"]
    assert _active(flows, at)
    assert flows.verify(at).status_code == 200

    with pytest.raises(OAuthError) as e:
        c.fetch_token(f"{server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
    assert e.value.error == "invalid_grant"
    assert flows.last_response.status_code == 400

    r = flows.introspect(at)
    assert r.json() == {"active": False}
    v = flows.verify(at)
    assert v.status_code == 401
    assert "bearer" in v.headers.get("www-authenticate", "").lower()
    # the refresh token minted from the first use died too
    assert _refresh(server, reg, rt).json()["error"] == "invalid_grant"


def test_refresh_rotation_grace_window_and_family_revocation(flows, server):
    reg = flows.register()
    tok0 = flows.tokens(reg, login="dave")
    at0, rt0 = tok0["access_token"], tok0["refresh_token"]

    # rotation through authlib: a new refresh token each time
    c = flows.client(reg)
    rotated_rt0 = time.monotonic()
    tok1 = dict(c.refresh_token(f"{server.issuer}/token", refresh_token=rt0))
    assert "no-store" in flows.last_response.headers.get("cache-control", "")
    at1, rt1 = tok1["access_token"], tok1["refresh_token"]
    assert rt1 != rt0 and at1 != at0
    _, claims1 = jwt_parts(at1)
    assert claims1["aud"] == [MCP_RESOURCE]

    # within the grace window a retry with the old refresh token gets the same response
    retry = _refresh(server, reg, rt0)
    assert retry.status_code == 200, retry.text
    assert retry.json()["access_token"] == at1 and retry.json()["refresh_token"] == rt1

    # two concurrent uses of rt1: both get the same, single rotation
    out: list[httpx.Response] = []
    ts = [threading.Thread(target=lambda: out.append(_refresh(server, reg, rt1))) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert [r.status_code for r in out] == [200, 200], [r.text for r in out]
    assert out[0].json()["refresh_token"] == out[1].json()["refresh_token"]
    assert out[0].json()["access_token"] == out[1].json()["access_token"]
    at2, rt2 = out[0].json()["access_token"], out[0].json()["refresh_token"]
    assert rt2 not in (rt0, rt1)
    assert _active(flows, at2)

    # The README promises a 10 s grace window after a rotation. Retries inside
    # it replay the same answer and change nothing, so poll until the reuse is
    # refused: not before 10 s after the rotation of rt0, and soon after it.
    while True:
        reuse = _refresh(server, reg, rt0)
        if reuse.status_code != 200 or time.monotonic() - rotated_rt0 > 30:
            break
        assert reuse.json()["access_token"] == at1, "a retry inside the grace window replays the same answer"
        time.sleep(0.5)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant", reuse.text
    assert time.monotonic() - rotated_rt0 >= 9, "the grace window ended early"
    # the whole family is dead: the newest refresh token and every access token
    assert _refresh(server, reg, rt2).json()["error"] == "invalid_grant"
    for at in (at0, at1, at2):
        assert flows.introspect(at).json() == {"active": False}
        assert flows.verify(at).status_code == 401
    c.close()


def test_refresh_token_is_bound_to_its_client(flows, server):
    a, b = flows.register(), flows.register()
    tok = flows.tokens(a, login="dave")
    r = _refresh(server, b, tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # and a could still use it
    assert _refresh(server, a, tok["refresh_token"]).status_code == 200


def test_refresh_cannot_widen_scope_or_resource(flows, server):
    server.create_proxy("wider.test")
    reg = flows.register()
    tok = flows.tokens(reg, login="dave", scope="mcp")
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "scope": "mcp admin"},
                   auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    tok = flows.tokens(reg, login="dave", scope="mcp")  # a fresh grant: see the next test
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "resource": "https://wider.test/x"},
                   auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"
    # narrowing is fine
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": flows.tokens(reg, login="alice", scope="mcp user")["refresh_token"],
                                                   "scope": "mcp"}, auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 200 and r.json()["scope"] == "mcp"


def test_refused_refresh_leaves_the_refresh_token_usable(flows, server):
    reg = flows.register()
    tok = flows.tokens(reg, login="dave", scope="mcp")
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "scope": "mcp admin"},
                   auth=(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = _refresh(server, reg, tok["refresh_token"])
    assert r.status_code == 200, r.text


# -- introspection -------------------------------------------------------------------


def test_introspection_requires_authentication(flows, server, introspector):
    reg = flows.register()
    at = flows.tokens(reg, login="dave")["access_token"]
    url = f"{server.issuer}/introspect"
    r = httpx.post(url, data={"token": at})
    assert r.status_code == 401
    assert "active" not in r.text
    r = httpx.post(url, data={"token": at}, auth=(introspector["client_id"], "wrong-secret"))
    assert r.status_code == 401
    r = httpx.post(url, data={"token": at}, headers={"Authorization": "Bearer not-the-admin-token"})
    assert r.status_code == 401
    # an access token is not a credential for introspection
    r = httpx.post(url, data={"token": at}, headers={"Authorization": f"Bearer {at}"})
    assert r.status_code == 401
    # a public client cannot authenticate, so it cannot introspect
    pub = flows.register(token_endpoint_auth_method="none")
    r = httpx.post(url, data={"token": at, "client_id": pub["client_id"]})
    assert r.status_code == 401


def test_introspection_by_confidential_client(flows, server, introspector):
    reg = flows.register()
    tok = flows.tokens(reg, login="dave")
    at = tok["access_token"]
    _, claims = jwt_parts(at)
    r = flows.introspect(at, introspector)
    assert r.status_code == 200
    body = r.json()
    assert body["active"] is True
    assert body["client_id"] == reg["client_id"]
    assert body["sub"] == claims["sub"] and body["scope"] == claims["scope"] and body["exp"] == claims["exp"]
    assert body["aud"] == [MCP_RESOURCE] and body["iss"] == server.issuer
    # client_secret_post works too
    r = httpx.post(f"{server.issuer}/introspect", data={"token": at, "client_id": introspector["client_id"], "client_secret": introspector["client_secret"]})
    assert r.json()["active"] is True
    # inactive is exactly {"active": false}
    for junk in ["garbage", "a.b.c", at[:-4] + "AAAA", tok["refresh_token"] + "x"]:
        r = flows.introspect(junk, introspector)
        assert r.status_code == 200 and r.json() == {"active": False}, (junk, r.text)
    # the refresh token introspects too
    r = flows.introspect(tok["refresh_token"], introspector)
    assert r.json()["active"] is True and r.json()["client_id"] == reg["client_id"]


def test_introspection_with_admin_token(flows):
    reg = flows.register()
    at = flows.tokens(reg, login="dave")["access_token"]
    r = flows.introspect(at)  # Authorization: Bearer ADMIN_TOKEN
    assert r.status_code == 200 and r.json()["active"] is True
    assert flows.introspect("nope").json() == {"active": False}


def test_introspection_with_user_api_token_is_refused(flows, server):
    r = server.admin("POST", "/api/v1/tokens", json={"name": "introspect-user"})
    assert r.status_code in (200, 201), r.text
    user_token = r.json()["token"]
    reg = flows.register()
    at = flows.tokens(reg, login="dave")["access_token"]
    r = httpx.post(f"{server.issuer}/introspect", data={"token": at}, headers={"Authorization": f"Bearer {user_token}"})
    assert r.status_code == 401


# -- revocation ----------------------------------------------------------------------


def test_revocation_only_by_the_owning_client(flows, server):
    a, b = flows.register(), flows.register()
    tok = flows.tokens(a, login="dave")
    at, rt = tok["access_token"], tok["refresh_token"]
    url = f"{server.issuer}/revoke"

    for t in (at, rt):
        r = httpx.post(url, data={"token": t}, auth=(b["client_id"], b["client_secret"]))
        assert 400 <= r.status_code < 500, r.text
    assert _active(flows, at)
    assert _active(flows, rt)

    r = httpx.post(url, data={"token": at, "token_type_hint": "access_token"}, auth=(a["client_id"], a["client_secret"]))
    assert r.status_code == 200
    assert flows.introspect(at).json() == {"active": False}
    assert flows.verify(at).status_code == 401


def test_revoking_a_refresh_token_kills_its_grant(flows, server):
    a = flows.register()
    tok = flows.tokens(a, login="dave")
    r = httpx.post(f"{server.issuer}/revoke", data={"token": tok["refresh_token"], "token_type_hint": "refresh_token"}, auth=(a["client_id"], a["client_secret"]))
    assert r.status_code == 200
    assert _refresh(server, a, tok["refresh_token"]).json()["error"] == "invalid_grant"
    assert flows.introspect(tok["access_token"]).json() == {"active": False}


def test_revocation_of_unknown_token_is_200_and_needs_client_auth(flows, server):
    a = flows.register()
    url = f"{server.issuer}/revoke"
    for t in ["unknown-token", "prt_unknown", "x.y.z"]:
        r = httpx.post(url, data={"token": t}, auth=(a["client_id"], a["client_secret"]))
        assert r.status_code == 200, (t, r.text)
    assert httpx.post(url, data={"token": "unknown-token"}).status_code == 401
    assert httpx.post(url, data={"token": "unknown-token"}, auth=(a["client_id"], "wrong")).status_code == 401


def test_public_client_revokes_its_own_token(flows, server):
    pub = flows.register(token_endpoint_auth_method="none")
    tok = flows.tokens(pub, login="dave")
    r = httpx.post(f"{server.issuer}/revoke", data={"token": tok["access_token"], "client_id": pub["client_id"]})
    assert r.status_code == 200
    assert flows.introspect(tok["access_token"]).json() == {"active": False}


# -- /verify ---------------------------------------------------------------------------


def test_verify(flows, server):
    reg = flows.register()
    at = flows.tokens(reg, login="alice")["access_token"]
    _, claims = jwt_parts(at)
    for method in ("GET", "POST"):
        r = httpx.request(method, f"{server.issuer}/verify", params={"resource": MCP_RESOURCE}, headers={"Authorization": f"Bearer {at}"})
        assert r.status_code == 200
        assert r.headers["x-auth-user"] == "alice"
        assert r.headers["x-auth-scopes"] == claims["scope"]
        assert "x-auth-email" in r.headers
    # the session cookie works as well
    r = httpx.get(f"{server.issuer}/verify", params={"resource": MCP_RESOURCE}, headers={"Cookie": f"unified_auth_token={at}"})
    assert r.status_code == 200 and r.headers["x-auth-user"] == "alice"

    r = httpx.get(f"{server.issuer}/verify")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].lower().startswith("bearer")
    assert "x-auth-user" not in r.headers
    for bad in ["garbage", at[:-6] + "AAAAAA", "Basic Zm9vOmJhcg=="]:
        r = httpx.get(f"{server.issuer}/verify", params={"resource": MCP_RESOURCE}, headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and "www-authenticate" in r.headers


def test_verify_refuses_expired_tokens(flows, server):
    # minted through the server's own signing code (admin test-token endpoint), expired beyond the leeway
    r = server.admin("POST", "/api/v1/oauth/test-token", json={"username": "old", "scope": "user", "expires_in": -120})
    assert r.status_code == 201, r.text
    at = r.json()["access_token"]
    assert flows.verify(at).status_code == 401
    assert flows.introspect(at).json() == {"active": False}
    fresh = server.admin("POST", "/api/v1/oauth/test-token", json={"username": "new", "scope": "user"}).json()["access_token"]
    assert flows.verify(fresh, resource=server.issuer).status_code == 200


def test_verify_refuses_forged_tokens(flows, server):
    reg = flows.register()
    at = flows.tokens(reg, login="dave")["access_token"]
    header, claims = jwt_parts(at)
    # the same claims signed by another key under our kid
    other = JsonWebKey.generate_key("RSA", 2048, is_private=True)
    forged = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": header["kid"]}, claims | {"scope": "admin user mcp"}, other).decode()
    assert flows.verify(forged).status_code == 401
    # alg none
    import base64
    import json

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    none = f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': header['kid']})}.{b64(claims)}."
    assert flows.verify(none).status_code == 401
    # HS256 with the public key as secret (algorithm confusion)
    jwks = httpx.get(f"{server.issuer}/jwks").json()
    pub = [k for k in jwks["keys"] if k["kid"] == header["kid"]][0]
    hs = jwt.encode({"alg": "HS256", "kid": header["kid"]}, claims, pub["n"].encode()).decode()
    assert flows.verify(hs).status_code == 401
    assert flows.introspect(forged).json() == {"active": False}
