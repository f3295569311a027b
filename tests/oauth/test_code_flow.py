"""Authorization code + PKCE + resource indicators through the real
oidc-provider; metadata; token shape and signature; resource rules."""

import time

import httpx
import pytest
from authlib.jose import JsonWebKey, jwt

from conftest import MCP_RESOURCE
from helpers import jwt_parts, origin, pkce_pair, query, query_multi, without_query


def test_metadata_documents(server):
    r = httpx.get(f"{server.issuer}/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    m = r.json()
    i = server.issuer
    assert m["issuer"] == i
    assert m["authorization_endpoint"] == f"{i}/authorize"
    assert m["token_endpoint"] == f"{i}/token"
    assert m["registration_endpoint"] == f"{i}/register"
    assert m["introspection_endpoint"] == f"{i}/introspect"
    assert m["revocation_endpoint"] == f"{i}/revoke"
    assert m["device_authorization_endpoint"] == f"{i}/device/code"
    assert m["jwks_uri"] == f"{i}/jwks"
    assert m["code_challenge_methods_supported"] == ["S256"]
    assert m["authorization_response_iss_parameter_supported"] is True
    assert m["resource_indicators_supported"] is True
    assert m["client_id_metadata_document_supported"] is True
    assert m["response_types_supported"] == ["code"]
    grants = set(m["grant_types_supported"])
    assert {"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"} <= grants
    assert not grants & {"implicit", "password"}
    assert {"admin", "user", "mcp"} <= set(m["scopes_supported"])
    # RFC 8414 §3: the path-suffixed form (issuer with a path component) answers too.
    assert httpx.get(f"{i}/.well-known/oauth-authorization-server/mcp").status_code == 200

    o = httpx.get(f"{i}/.well-known/openid-configuration")
    assert o.status_code == 200
    od = o.json()
    assert od["issuer"] == i and od["jwks_uri"] == f"{i}/jwks" and od["authorization_endpoint"] == f"{i}/authorize"


def test_full_code_pkce_resource_flow_with_oidc_provider(flows, server, idp):
    reg = flows.register(client_name="full flow")
    c, res, verifier, state = flows.authorize(reg, login="alice", resource=MCP_RESOURCE)
    # the browser went through our /authorize, the IdP's login and consent pages, and our /callback
    assert any(u.startswith(f"{idp.issuer}/interaction/") for u in res.visited), res.visited
    assert any(u.startswith(f"{server.issuer}/callback") for u in res.visited), res.visited
    assert res.redirect and without_query(res.redirect) == reg["redirect_uris"][0]
    p = res.params
    assert p["state"] == state
    assert p["iss"] == server.issuer  # RFC 9207
    assert set(p) == {"code", "state", "iss"}

    tok = c.fetch_token(f"{server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
    resp = flows.last_response
    assert resp.status_code == 200
    assert "no-store" in resp.headers.get("cache-control", "")
    assert tok["token_type"].lower() == "bearer"
    assert tok["refresh_token"] and tok["expires_in"] > 0

    at = tok["access_token"]
    header, claims = jwt_parts(at)
    assert header["alg"] == "RS256"
    assert header["typ"].lower() == "at+jwt"
    assert header.get("kid")

    jwks = httpx.get(f"{server.issuer}/jwks").json()
    assert header["kid"] in [k["kid"] for k in jwks["keys"]]
    verified = jwt.decode(at, JsonWebKey.import_key_set(jwks))
    verified.validate(now=time.time(), leeway=5)
    assert verified.header["kid"] == header["kid"]
    for claim in ("iss", "sub", "aud", "azp", "exp", "iat", "jti", "scope"):
        assert claim in verified, f"{claim} missing from {dict(verified)}"
    assert verified["iss"] == server.issuer
    assert verified["aud"] == [MCP_RESOURCE]
    assert verified["azp"] == reg["client_id"]
    assert verified["sub"]
    assert verified["exp"] > verified["iat"] >= int(time.time()) - 60
    # OAUTH_ACCESS_TOKEN_LIFETIME defaults to 1800 s
    assert verified["exp"] - verified["iat"] == 1800 and tok["expires_in"] == 1800
    # alice is in OAUTH_ADMIN_USERS and OAUTH_MCP_USERS; she asked for no particular scope
    assert {"admin", "mcp"} <= set(verified["scope"].split())
    assert verified.get("preferred_username") == "alice"

    # the token works at /verify and introspects active
    v = flows.verify(at)
    assert v.status_code == 200 and v.headers["x-auth-user"] == "alice"
    i = flows.introspect(at).json()
    assert i["active"] is True and i["client_id"] == reg["client_id"] and i["aud"] == [MCP_RESOURCE]


def test_oidc_email_claim_reaches_the_token(flows):
    """oidc-provider (like most OPs) returns scope-requested claims such as
    email from the UserInfo endpoint, not in the ID token (OIDC Core §5.4)."""
    reg = flows.register()
    tok = flows.tokens(reg, login="dave")
    _, claims = jwt_parts(tok["access_token"])
    assert claims.get("preferred_username") == "dave"
    assert claims.get("email") == "dave@idp.test"
    v = flows.verify(tok["access_token"])
    assert v.headers.get("x-auth-email") == "dave@idp.test"


def test_public_client_flow_and_multiple_resources(flows, server):
    server.create_proxy("tools.test")
    reg = flows.register(token_endpoint_auth_method="none")
    assert "client_secret" not in reg
    tok = flows.tokens(reg, login="dave", resource=[MCP_RESOURCE, "https://tools.test/api"])
    _, claims = jwt_parts(tok["access_token"])
    assert sorted(claims["aud"]) == sorted([MCP_RESOURCE, "https://tools.test/api"])
    assert claims["azp"] == reg["client_id"]


def test_resource_is_canonicalized_in_aud(flows):
    reg = flows.register()
    tok = flows.tokens(reg, login="dave", resource="https://MCP.test/mcp/")
    _, claims = jwt_parts(tok["access_token"])
    assert claims["aud"] == [MCP_RESOURCE]


def test_token_request_may_narrow_resources(flows, server):
    server.create_proxy("narrow.test")
    reg = flows.register()
    c, res, verifier, state = flows.authorize(reg, login="dave", resource=[MCP_RESOURCE, "https://narrow.test/x"])
    tok = c.fetch_token(f"{server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state, resource="https://narrow.test/x")
    _, claims = jwt_parts(tok["access_token"])
    assert claims["aud"] == ["https://narrow.test/x"]


def test_too_many_resources_is_invalid_target(flows):
    reg = flows.register()
    many = [f"{MCP_RESOURCE}/{i}" for i in range(6)]  # MCP_MAX_RESOURCES_PER_TOKEN defaults to 5
    _, res, _, state = flows.authorize(reg, resource=many)
    p = res.params
    assert p["error"] == "invalid_target" and p["iss"] == flows.issuer and p["state"] == state


def test_no_resource_gives_an_audience_nothing_accepts(flows, server):
    # issue 20 item 3: this used to be the issuer (an admin API credential)
    reg = flows.register()
    tok = flows.tokens(reg, login="alice", resource=None)
    _, claims = jwt_parts(tok["access_token"])
    assert claims["aud"] == [f"urn:portcullis:client:{reg['client_id']}"]
    r = httpx.get(f"{server.url}/api/v1/proxy/targets/", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 401, r.text


def test_scope_request_is_narrowed_to_entitlement(flows):
    reg = flows.register(scope="mcp user admin")
    tok = flows.tokens(reg, login="dave", scope="mcp admin")
    # dave is only in OAUTH_MCP_USERS: he asked for admin too and gets mcp alone
    assert tok["scope"].split() == ["mcp"]
    _, claims = jwt_parts(tok["access_token"])
    assert claims["scope"] == "mcp"


def test_upstream_cancel_is_relayed_with_iss(flows, server):
    reg = flows.register()
    _, res, _, state = flows.authorize(reg, login="dave", cancel=True)
    assert res.redirect and without_query(res.redirect) == reg["redirect_uris"][0], res.visited
    p = res.params
    assert p["error"] == "access_denied" and "code" not in p
    assert p["iss"] == server.issuer and p["state"] == state


def test_callback_with_unknown_or_replayed_state(flows, server, idp):
    r = httpx.get(f"{server.issuer}/callback", params={"state": "forged", "code": "x"})
    assert r.status_code == 400 and "location" not in r.headers
    # replaying a completed callback URL does not mint a second code
    reg = flows.register()
    _, res, _, _ = flows.authorize(reg, login="dave")
    cb = [u for u in res.visited if u.startswith(f"{server.issuer}/callback")][-1]
    r = httpx.get(cb)
    assert r.status_code == 400 and "location" not in r.headers


def test_issuer_never_comes_from_request_headers(server):
    h = {"Host": "evil.test", "X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "https", "Forwarded": "host=evil.test;proto=https"}
    m = httpx.get(f"{server.issuer}/.well-known/oauth-authorization-server", headers=h).json()
    assert m["issuer"] == server.issuer and "evil" not in str(m)


def test_endpoints_through_the_data_plane(server):
    dp = f"http://127.0.0.1:{server.env['HTTP_PORT']}"
    # The OAuth endpoints are built in on the auth proxy and on proxies that opt in.
    r = server.admin("PUT", "/api/v1/proxy/targets/mcp.test", json={"oauth_endpoints": True})
    assert r.status_code == 200, r.text
    for host in ("auth.localhost", "mcp.test"):
        deadline = time.monotonic() + 10
        while True:
            r = httpx.get(f"{dp}/.well-known/oauth-authorization-server", headers={"Host": host})
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, (host, r.status_code, r.text[:200])
        assert r.json()["issuer"] == server.issuer
        assert httpx.get(f"{dp}/jwks", headers={"Host": host}).json()["keys"]
        r = httpx.post(f"{dp}/register", headers={"Host": host}, json={"redirect_uris": ["https://app.example/cb"]})
        assert r.status_code == 201, r.text
        r = httpx.post(f"{dp}/token", headers={"Host": host}, data={"grant_type": "authorization_code", "code": "x"}, auth=(r.json()["client_id"], r.json()["client_secret"]))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
