"""Device authorization grant (RFC 8628) end to end; JWKS and key rotation."""

import base64
import time

import httpx
import pytest
from authlib.jose import JsonWebKey, jwt

from conftest import ADMIN_TOKEN, MCP_RESOURCE
from helpers import DEVICE_GRANT, jwt_parts

CLI = "portcullis-cli"


def _poll(issuer, device_code, path="/token"):
    return httpx.post(f"{issuer}{path}", data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLI})


def test_device_flow_end_to_end(flows, server):
    r = httpx.post(f"{server.issuer}/device/code", data={"client_id": CLI, "resource": MCP_RESOURCE})
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers.get("cache-control", "")
    d = r.json()
    for k in ("device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval"):
        assert k in d, k
    assert d["verification_uri"] == f"{server.issuer}/device"
    assert d["user_code"] in d["verification_uri_complete"]
    interval = d["interval"]
    assert interval >= 1

    first = _poll(server.issuer, d["device_code"])
    assert first.status_code == 400 and first.json()["error"] == "authorization_pending", first.text
    fast = _poll(server.issuer, d["device_code"])
    assert fast.status_code == 400 and fast.json()["error"] == "slow_down", fast.text
    interval += 5  # RFC 8628 §3.5: slow_down adds 5 seconds to the interval

    # the person opens the complete verification URI and logs in at the IdP
    with flows.browser("alice") as b:
        res = b.open(d["verification_uri_complete"])
    assert res.redirect is None
    assert res.response.status_code == 200
    assert "Device connected" in res.response.text
    assert any("/interaction/" in u for u in res.visited), res.visited

    # a client polling politely gets the tokens
    deadline = time.monotonic() + 30
    while True:
        time.sleep(interval)
        r = _poll(server.issuer, d["device_code"])
        if r.status_code == 200:
            break
        err = r.json()["error"]
        assert err in ("authorization_pending", "slow_down"), r.text
        if err == "slow_down":
            interval += 5
        assert time.monotonic() < deadline, "no tokens in time"
    assert "no-store" in r.headers.get("cache-control", "")
    tok = r.json()
    _, claims = jwt_parts(tok["access_token"])
    assert claims["azp"] == CLI and claims["preferred_username"] == "alice"
    assert "admin" in claims["scope"].split()
    assert flows.verify(tok["access_token"]).status_code == 200

    # the device code is single-use: once redeemed it is gone, as if expired
    again = _poll(server.issuer, d["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "expired_token", again.text

    # the CLI refreshes (public client: client_id in the body), with rotation
    r = httpx.post(f"{server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": CLI})
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] != tok["refresh_token"]


def test_device_token_alias_and_unknown_codes(server):
    d = httpx.post(f"{server.issuer}/device/code", data={"client_id": CLI}).json()
    r = _poll(server.issuer, d["device_code"], "/device/token")
    assert r.status_code == 400 and r.json()["error"] == "authorization_pending"
    # RFC 8628 §3.5: a code the server does not know (any more) is expired_token
    r = _poll(server.issuer, "no-such-device-code")
    assert r.status_code == 400 and r.json()["error"] == "expired_token", r.text
    # the page for an unknown user code does not start a login: 404, the form again, and why
    r = httpx.get(f"{server.issuer}/device", params={"user_code": "BCDF-GHJK"})
    assert r.status_code == 404 and "location" not in r.headers, r.text
    assert "user_code" in r.text and "unknown or expired" in r.text, r.text
    # the entry form
    r = httpx.get(f"{server.issuer}/device")
    assert r.status_code == 200 and "user_code" in r.text


def test_device_code_resources(server):
    r = httpx.post(f"{server.issuer}/device/code", data={"client_id": CLI, "resource": "https://unknown.test/mcp"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"
    r = httpx.post(f"{server.issuer}/device/code", data={"client_id": CLI, "resource": "https://mcp.test/mcp", "scope": "mcp"})
    assert r.status_code == 200, r.text


def test_device_code_needs_a_client_allowed_to_use_it(flows, server):
    reg = flows.register()  # authorization_code + refresh_token only
    r = httpx.post(f"{server.issuer}/device/code", data={"client_id": reg["client_id"]}, auth=(reg["client_id"], reg["client_secret"]))
    # RFC 6749 §5.2: an authenticated client not allowed this grant is a 400
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text
    r = httpx.post(f"{server.issuer}/device/code", data={"client_id": "nobody"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_device_login_refused_by_allowlist(gh_flows, gh_server):
    d = httpx.post(f"{gh_server.issuer}/device/code", data={"client_id": CLI}).json()
    with gh_flows.browser("bob") as b:  # not in OAUTH_ALLOWED_GITHUB_USERS
        res = b.open(d["verification_uri_complete"])
    assert res.response.status_code == 403, res.response.text
    assert "Access denied" in res.response.text and "Device connected" not in res.response.text
    r = _poll(gh_server.issuer, d["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "access_denied", r.text


# -- keys ------------------------------------------------------------------------------------


def test_jwks_publishes_public_rsa_keys_only(server):
    r = httpx.get(f"{server.issuer}/jwks")
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert len(keys) >= 2, "the current and the next key are published"
    for k in keys:
        assert k["kty"] == "RSA" and k.get("alg", "RS256") == "RS256" and k.get("use", "sig") == "sig" and k["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(k), "private key material in the JWKS"
    assert len({k["kid"] for k in keys}) == len(keys)


def test_seed_signing_key_from_env(rate_limited_server, seed_key):
    """The rate-limited instance runs with OAUTH_JWT_PRIVATE_KEY_B64."""
    keys = httpx.get(f"{rate_limited_server.issuer}/jwks").json()["keys"]
    n = base64.urlsafe_b64encode(seed_key.public_key().public_numbers().n.to_bytes(256, "big")).rstrip(b"=").decode()
    assert n in [k["n"] for k in keys]


def test_key_rotation_keeps_old_tokens_valid(flows, server):
    jwks0 = httpx.get(f"{server.issuer}/jwks").json()
    kids0 = [k["kid"] for k in jwks0["keys"]]
    reg = flows.register()
    t1 = flows.tokens(reg, login="dave")["access_token"]
    k1 = jwt_parts(t1)[0]["kid"]
    assert k1 in kids0

    r = httpx.post(f"{server.issuer}/api/v1/oauth/keys/rotate", headers={"Authorization": "Bearer not-admin"})
    assert r.status_code == 401, r.text
    r = httpx.post(f"{server.issuer}/api/v1/oauth/keys/rotate", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200, r.text

    jwks1 = httpx.get(f"{server.issuer}/jwks").json()
    kids1 = [k["kid"] for k in jwks1["keys"]]
    assert k1 in kids1, "the JWKS dropped the key of live tokens"
    # a token of the old key still validates: signature, introspection, /verify
    jwt.decode(t1, JsonWebKey.import_key_set(jwks1)).validate(leeway=5)
    assert flows.introspect(t1).json()["active"] is True
    assert flows.verify(t1).status_code == 200

    t2 = flows.tokens(reg, login="dave")["access_token"]
    k2 = jwt_parts(t2)[0]["kid"]
    assert k2 != k1 and k2 in kids1
    # the new key had been published before the rotation: verifiers with a cached JWKS keep working
    assert k2 in kids0
    jwt.decode(t2, JsonWebKey.import_key_set(jwks0)).validate(leeway=5)
    assert flows.introspect(t2).json()["active"] is True


def test_second_rotation_keeps_unexpired_tokens_valid(spare_server):
    s = spare_server
    t1 = s.admin("POST", "/api/v1/oauth/test-token", json={"username": "u", "scope": "user"})
    assert t1.status_code == 201, t1.text
    t1 = t1.json()["access_token"]
    # A user-scope API token may not rotate, and the ring stays as it was.
    kids_before = [k["kid"] for k in httpx.get(f"{s.issuer}/jwks").json()["keys"]]
    user = s.admin("POST", "/api/v1/tokens/generate", json={"name": "rotator", "scope": "user"})
    assert user.status_code == 201, user.text
    r = httpx.post(f"{s.issuer}/api/v1/oauth/keys/rotate", headers={"Authorization": f"Bearer {user.json()['token']}"})
    assert r.status_code == 403, r.text
    assert [k["kid"] for k in httpx.get(f"{s.issuer}/jwks").json()["keys"]] == kids_before
    assert s.admin("POST", "/api/v1/oauth/keys/rotate").status_code == 200
    second = s.admin("POST", "/api/v1/oauth/keys/rotate")
    assert second.status_code == 200, second.text
    assert httpx.get(f"{s.issuer}/verify", params={"resource": s.issuer}, headers={"Authorization": f"Bearer {t1}"}).status_code == 200
    kid = jwt_parts(t1)[0]["kid"]
    assert kid in [k["kid"] for k in httpx.get(f"{s.issuer}/jwks").json()["keys"]]
