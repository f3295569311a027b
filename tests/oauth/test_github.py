"""The GitHub login adapter against a stand-in serving GitHub's documented
shapes; the login allowlist; scopes from the user lists and the admin API
accepting the access tokens."""

import httpx
import pytest

from conftest import MCP_RESOURCE
from helpers import jwt_parts


def test_github_adapter_user_email_orgs_and_teams(gh_flows, gh_server, github):
    before = len(github.requests)
    reg = gh_flows.register()
    c, res, verifier, state = gh_flows.authorize(reg, login="alice")
    p = res.params
    assert p.get("code"), p
    assert p["iss"] == gh_server.issuer and p["state"] == state
    tok = c.fetch_token(f"{gh_server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
    _, claims = jwt_parts(tok["access_token"])
    assert claims["sub"] == "github:1001"
    assert claims["preferred_username"] == "alice"
    # /user has "email": null (private): the primary, verified address from /user/emails
    assert claims["email"] == "alice@users.test"
    assert set(claims["groups"]) == {"acme", "widgets", "acme/platform", "widgets/core"}
    assert claims["aud"] == [MCP_RESOURCE]

    # what the server sent to "GitHub"
    reqs = github.requests[before:]
    auth = [r for r in reqs if r["path"] == "/login/oauth/authorize"][-1]
    assert auth["query"]["client_id"] == [github.client_id]
    assert auth["query"]["redirect_uri"] == [f"{gh_server.issuer}/callback"]
    assert "user:email" in auth["query"]["scope"][0] and "read:org" in auth["query"]["scope"][0]
    exch = [r for r in reqs if r["path"] == "/login/oauth/access_token"][-1]
    assert exch["method"] == "POST"
    assert "application/json" in exch["headers"].get("accept", "")
    assert exch["form"]["client_id"] == [github.client_id] and exch["form"]["client_secret"] == [github.client_secret]
    for path in ("/user", "/user/emails", "/user/orgs", "/user/teams"):
        calls = [r for r in reqs if r["path"] == path]
        assert calls, f"{path} was not called"
        assert calls[-1]["headers"].get("user-agent"), "GitHub's API requires a User-Agent"
        assert calls[-1]["headers"]["authorization"].split()[0].lower() in ("bearer", "token")


def test_github_public_email_from_user(gh_flows, github):
    reg = gh_flows.register()
    tok = gh_flows.tokens(reg, login="carol")
    _, claims = jwt_parts(tok["access_token"])
    assert claims["email"] == "carol@users.test"
    assert claims["groups"] == ["acme"]
    assert claims["sub"] == "github:1003"


def test_allowlist_refuses_other_users(gh_flows, gh_server):
    reg = gh_flows.register()
    c, res, verifier, state = gh_flows.authorize(reg, login="bob")  # bob is not in OAUTH_ALLOWED_GITHUB_USERS
    assert res.redirect, f"{res.response.status_code} {res.response.text}"
    p = res.params
    assert p["error"] == "access_denied"
    assert "code" not in p
    assert p["iss"] == gh_server.issuer and p["state"] == state


def test_admin_scope_token_drives_the_admin_api(gh_flows, gh_server):
    reg = gh_flows.register()
    # the admin API's resource named explicitly: the audience is the issuer itself, which the admin API requires
    tok = gh_flows.tokens(reg, login="alice", resource=gh_server.issuer)
    _, claims = jwt_parts(tok["access_token"])
    assert claims["aud"] == [gh_server.issuer]
    assert "admin" in claims["scope"].split()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    r = httpx.get(f"{gh_server.url}/api/v1/proxy/targets/", headers=h)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{gh_server.url}/api/v1/proxy/targets/", headers=h, json={"hostname": "alice-made.test", "target_url": "http://127.0.0.1:9", "enable_https": False})
    assert r.status_code == 201, r.text
    # the proxy is owned by alice's OAuth identity, not by the bootstrap admin
    made = gh_server.admin("GET", "/api/v1/proxy/targets/alice-made.test").json()
    assert made["owner_token_hash"] == f"oauth:{claims['sub']}", made
    assert made["owner_token_hash"] != gh_server.admin("GET", "/api/v1/proxy/targets/localhost").json()["owner_token_hash"]
    r = httpx.delete(f"{gh_server.url}/api/v1/proxy/targets/alice-made.test", headers=h)
    assert r.status_code == 200, r.text


def test_user_scope_token_reads_but_cannot_write(gh_flows, gh_server):
    reg = gh_flows.register()
    tok = gh_flows.tokens(reg, login="carol", resource=gh_server.issuer)  # carol is in OAUTH_USER_USERS only
    scopes = tok["scope"].split()
    assert "user" in scopes and "admin" not in scopes
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    assert httpx.get(f"{gh_server.url}/api/v1/proxy/targets/", headers=h).status_code == 200
    r = httpx.post(f"{gh_server.url}/api/v1/proxy/targets/", headers=h, json={"hostname": "carol-made.test", "target_url": "http://127.0.0.1:9", "enable_https": False})
    assert r.status_code == 403, r.text


def test_admin_api_refuses_tokens_for_another_audience(gh_flows, gh_server):
    reg = gh_flows.register()
    tok = gh_flows.tokens(reg, login="alice", resource=MCP_RESOURCE)
    r = httpx.get(f"{gh_server.url}/api/v1/proxy/targets/", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 401, r.text


def test_verify_headers_with_github_identity(gh_flows, gh_server):
    reg = gh_flows.register()
    at = gh_flows.tokens(reg, login="alice")["access_token"]
    _, claims = jwt_parts(at)
    r = httpx.get(f"{gh_server.issuer}/verify", params={"resource": MCP_RESOURCE}, headers={"Authorization": f"Bearer {at}"})
    assert r.status_code == 200
    assert r.headers["x-auth-user"] == "alice"
    assert r.headers["x-auth-email"] == "alice@users.test"
    assert r.headers["x-auth-scopes"] == claims["scope"]
    r = httpx.get(f"{gh_server.issuer}/verify")
    assert r.status_code == 401 and r.headers["www-authenticate"].lower().startswith("bearer")


def test_per_proxy_github_app_allowlist_and_scopes(gh_flows, gh_server, github):
    github.add_app("team-app-id", "team-app-secret")
    r = gh_server.admin("POST", "/api/v1/proxy/targets/", json={
        "hostname": "team.test", "target_url": "http://127.0.0.1:9", "enable_https": False,
        "github_client_id": "team-app-id", "github_client_secret": "team-app-secret",
        "auth_required_users": ["carol"], "oauth_admin_users": ["carol"],
    })
    assert r.status_code in (200, 201), r.text
    assert "team-app-secret" not in r.text
    for path in ("/api/v1/proxy/targets/team.test", "/api/v1/proxy/targets/"):
        r = gh_server.admin("GET", path)
        assert r.status_code == 200 and "team-app-secret" not in r.text, r.text

    reg = gh_flows.register()
    before = len(github.requests)
    c, res, verifier, state = gh_flows.authorize(reg, login="carol", proxy_hostname="team.test")
    assert res.params.get("code"), res.params
    tok = c.fetch_token(f"{gh_server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
    # the proxy's own GitHub app was used; its admin list only narrows (issue 13 item 1: it used to grant
    # carol `admin`, which only OAUTH_ADMIN_USERS may): carol keeps her configured `user` scope
    reqs = github.requests[before:]
    assert [r["query"]["client_id"] for r in reqs if r["path"] == "/login/oauth/authorize"] == [["team-app-id"]]
    assert [r["form"]["client_secret"] for r in reqs if r["path"] == "/login/oauth/access_token"] == [["team-app-secret"]]
    assert "admin" not in tok["scope"].split() and "user" in tok["scope"].split(), tok["scope"]

    # alice may log in globally, but not where the proxy's auth_required_users leaves her out
    _, res, _, state = gh_flows.authorize(reg, login="alice", proxy_hostname="team.test")
    assert res.params["error"] == "access_denied" and res.params["iss"] == gh_server.issuer


def test_user_scope_token_cannot_reveal_api_tokens(gh_flows, gh_server):
    r = gh_server.admin("POST", "/api/v1/tokens", json={"name": "ops-secret", "scope": "admin"})
    assert r.status_code in (200, 201), r.text
    secret = r.json()["token"]
    tok = gh_flows.tokens(gh_flows.register(), login="carol", resource=gh_server.issuer)  # user scope only
    r = httpx.get(f"{gh_server.url}/api/v1/tokens/ops-secret/reveal", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert secret not in r.text
    assert r.status_code == 403, r.text


def test_user_scope_token_cannot_read_the_oauth_admin_api(gh_flows, gh_server):
    tok = gh_flows.tokens(gh_flows.register(), login="carol", resource=gh_server.issuer)
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    for path in ("/api/v1/oauth/tokens", "/api/v1/oauth/clients/", "/api/v1/oauth/sessions"):
        r = httpx.get(f"{gh_server.url}{path}", headers=h)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])


def test_oauth_admin_api(gh_flows, gh_server):
    reg = gh_flows.register(client_name="seen-by-admin")
    tok = gh_flows.tokens(reg, login="carol")
    _, claims = jwt_parts(tok["access_token"])
    clients = gh_server.admin("GET", "/api/v1/oauth/clients/")
    assert clients.status_code == 200
    mine = [c for c in clients.json() if c["client_id"] == reg["client_id"]]
    assert mine and mine[0]["client_name"] == "seen-by-admin"
    assert reg["client_secret"] not in clients.text and reg["registration_access_token"] not in clients.text
    assert "secret_hash" not in clients.text and "token_hash" not in clients.text

    toks = gh_server.admin("GET", f"/api/v1/oauth/clients/{reg['client_id']}/tokens")
    assert toks.status_code == 200 and [t["jti"] for t in toks.json()] == [claims["jti"]]
    assert tok["access_token"] not in toks.text

    sessions = gh_server.admin("GET", "/api/v1/oauth/sessions").json()
    sess = [s for s in sessions if s["client_id"] == reg["client_id"]]
    assert len(sess) == 1
    r = gh_server.admin("DELETE", f"/api/v1/oauth/sessions/{sess[0]['session_id']}")
    assert r.status_code == 200
    # the whole session is gone: access token and refresh token
    assert httpx.get(f"{gh_server.issuer}/verify", params={"resource": MCP_RESOURCE},
                     headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 401
    r = httpx.post(f"{gh_server.issuer}/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=(reg["client_id"], reg["client_secret"]))
    assert r.json()["error"] == "invalid_grant"

    h = gh_server.admin("GET", "/api/v1/oauth/health")
    assert h.status_code == 200 and h.json()["issuer"] == gh_server.issuer and h.json()["login_provider"] == "github"
    m = gh_server.admin("GET", "/api/v1/oauth/metrics")
    assert m.status_code == 200 and m.json()["registered_clients"] >= 1
    assert gh_server.http.get(f"{gh_server.url}/api/v1/oauth/clients/").status_code == 401
