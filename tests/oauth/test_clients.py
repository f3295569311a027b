"""Dynamic client registration (RFC 7591/7592) and Client ID Metadata Documents."""

import socket
import threading
import time

import httpx
import pytest

from conftest import MCP_RESOURCE
from helpers import add_query, jwt_parts, pkce_pair, unused_loopback_redirect, without_query

# -- dynamic client registration ------------------------------------------------------


def test_registration_of_a_confidential_client(server):
    redirect = unused_loopback_redirect()
    r = httpx.post(f"{server.issuer}/register", json={"client_name": "conf", "redirect_uris": [redirect, "https://app.example/cb"],
                                                      "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
    assert r.status_code == 201, r.text
    assert "no-store" in r.headers.get("cache-control", "")
    b = r.json()
    assert b["client_id"] and b["client_secret"]
    assert b["registration_access_token"]
    assert b["registration_client_uri"] == f"{server.issuer}/register/{b['client_id']}"
    assert b["redirect_uris"] == [redirect, "https://app.example/cb"]
    assert b["client_name"] == "conf"
    assert b["token_endpoint_auth_method"] in ("client_secret_basic", "client_secret_post")
    assert b["client_id_issued_at"] <= time.time() + 5
    # OAUTH_CLIENT_LIFETIME (default 90 days) bounds the secret: never 0 ("never expires")
    ninety_days = 90 * 86400
    assert time.time() + ninety_days - 60 <= b["client_secret_expires_at"] <= time.time() + ninety_days + 5, b


def test_registration_of_a_public_client(server):
    r = httpx.post(f"{server.issuer}/register", json={"redirect_uris": [unused_loopback_redirect()], "token_endpoint_auth_method": "none"})
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["client_id"] and "client_secret" not in b
    assert b["token_endpoint_auth_method"] == "none"
    assert b["registration_access_token"] and b["registration_client_uri"]


def test_registration_management_with_the_registration_token(flows, server):
    reg = flows.register(client_name="managed")
    uri, rat = reg["registration_client_uri"], reg["registration_access_token"]
    bearer = {"Authorization": f"Bearer {rat}"}

    r = httpx.get(uri, headers=bearer)
    assert r.status_code == 200, r.text
    assert r.json()["client_id"] == reg["client_id"] and r.json()["client_name"] == "managed"
    assert "no-store" in r.headers.get("cache-control", "")

    other = flows.register()
    for h in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Bearer {other['registration_access_token']}"},
              {"Authorization": f"Bearer {reg['client_secret']}"}):
        assert httpx.get(uri, headers=h).status_code == 401, h
        assert httpx.put(uri, headers=h, json={"redirect_uris": ["https://evil.example/cb"]}).status_code == 401, h
        assert httpx.delete(uri, headers=h).status_code == 401, h

    new_redirect = unused_loopback_redirect("/new")
    r = httpx.put(uri, headers=bearer, json={"client_id": reg["client_id"], "client_name": "renamed", "redirect_uris": ["https://app.example/new"],
                                             "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
    assert r.status_code == 200, r.text
    assert r.json()["client_name"] == "renamed" and r.json()["redirect_uris"] == ["https://app.example/new"]
    assert httpx.get(uri, headers=bearer).json()["client_name"] == "renamed"
    # the old redirect URI is no longer accepted, the new one is
    _, ch = pkce_pair()
    base = {"response_type": "code", "client_id": reg["client_id"], "code_challenge": ch, "code_challenge_method": "S256"}
    r = httpx.get(add_query(f"{server.issuer}/authorize", base | {"redirect_uri": reg["redirect_uris"][0]}))
    assert r.status_code == 400 and "location" not in r.headers
    r = httpx.get(add_query(f"{server.issuer}/authorize", base | {"redirect_uri": "https://app.example/new", "resource": MCP_RESOURCE}))
    assert r.status_code in (302, 303) and not r.headers["location"].startswith("https://app.example/new")
    # the secret is unchanged after the update
    assert httpx.post(f"{server.issuer}/revoke", data={"token": "x"}, auth=(reg["client_id"], reg["client_secret"])).status_code == 200

    r = httpx.delete(uri, headers=bearer)
    assert r.status_code == 204, r.text
    assert httpx.get(uri, headers=bearer).status_code == 401
    # a deleted client can no longer authenticate nor authorize
    assert httpx.post(f"{server.issuer}/revoke", data={"token": "x"}, auth=(reg["client_id"], reg["client_secret"])).status_code == 401
    r = httpx.get(add_query(f"{server.issuer}/authorize", base | {"redirect_uri": "https://app.example/new"}))
    assert r.status_code == 400 and "location" not in r.headers
    del new_redirect


@pytest.mark.parametrize("meta,error", [
    ({"grant_types": ["implicit"], "response_types": ["token"]}, "invalid_client_metadata"),
    ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ({"grant_types": ["authorization_code", "implicit"]}, "invalid_client_metadata"),
    ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
    ({"response_types": ["token"]}, "invalid_client_metadata"),
    ({"response_types": ["code id_token"]}, "invalid_client_metadata"),
    ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["http://192.0.2.10/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["not a uri"]}, "invalid_redirect_uri"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"redirect_uris": "https://app.example/cb"}, "invalid_client_metadata"),
    ({"scope": "admin root"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
], ids=lambda v: str(v) if isinstance(v, str) else next(iter(v)) + "=" + str(next(iter(v.values()))))
def test_registration_refuses_bad_metadata(server, meta, error):
    body = {"redirect_uris": ["https://app.example/cb"]} | meta
    r = httpx.post(f"{server.issuer}/register", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error, r.text


def test_registration_refuses_malformed_bodies(server):
    for raw in [b"{", b"[]", b'"x"', b""]:
        r = httpx.post(f"{server.issuer}/register", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (raw, r.text)
        assert r.json()["error"] == "invalid_client_metadata"


def test_registration_rate_limit(rate_limited_server):
    url = f"{rate_limited_server.issuer}/register"
    codes = [httpx.post(url, json={"redirect_uris": [unused_loopback_redirect()]}).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429], codes


def test_registered_secret_is_required_at_the_token_endpoint(flows, server):
    reg = flows.register()
    c, res, verifier, state = flows.authorize(reg, login="dave")
    data = {"grant_type": "authorization_code", "code": res.params["code"], "redirect_uri": reg["redirect_uris"][0], "code_verifier": verifier}
    r = httpx.post(f"{server.issuer}/token", data=data, auth=(reg["client_id"], "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "www-authenticate" in r.headers
    r = httpx.post(f"{server.issuer}/token", data=data | {"client_id": reg["client_id"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # client_secret_post also works (the code is still unused: failed client auth does not consume it)
    r = httpx.post(f"{server.issuer}/token", data=data | {"client_id": reg["client_id"], "client_secret": reg["client_secret"]})
    assert r.status_code == 200, r.text


# -- Client ID Metadata Documents ------------------------------------------------------------


def _cimd(doc_server, path, redirect, **extra):
    url = f"{doc_server.base}{path}"
    doc = {"client_id": url, "client_name": "CIMD test app", "redirect_uris": [redirect], "grant_types": ["authorization_code", "refresh_token"],
           "response_types": ["code"], "token_endpoint_auth_method": "none"}
    doc.update(extra)
    doc_server.docs[path] = doc
    return url, doc


def test_cimd_client_completes_an_authorization(flows, server, doc_server):
    redirect = unused_loopback_redirect()
    url, doc = _cimd(doc_server, "/clients/app.json", redirect)
    reg = {"client_id": url, "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}
    c, res, verifier, state = flows.authorize(reg, login="dave")
    assert "/clients/app.json" in doc_server.hits
    p = res.params
    assert p.get("code") and p["iss"] == server.issuer and without_query(res.redirect) == redirect
    tok = c.fetch_token(f"{server.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
    _, claims = jwt_parts(tok["access_token"])
    assert claims["azp"] == url
    assert claims["aud"] == [MCP_RESOURCE]
    # a redirect URI that is not in the document is refused without redirect
    _, ch = pkce_pair()
    r = httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": url, "redirect_uri": "https://elsewhere.example/cb",
                                                             "code_challenge": ch, "code_challenge_method": "S256"}))
    assert r.status_code == 400 and "location" not in r.headers


def test_cimd_document_with_another_client_id_is_refused(server, doc_server):
    redirect = unused_loopback_redirect()
    url, _ = _cimd(doc_server, "/clients/mismatch.json", redirect, client_id=f"{doc_server.base}/clients/other.json")
    _, ch = pkce_pair()
    r = httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": url, "redirect_uri": redirect,
                                                             "code_challenge": ch, "code_challenge_method": "S256", "state": "s"}))
    assert "/clients/mismatch.json" in doc_server.hits
    assert r.status_code == 400, r.text
    assert "location" not in r.headers


def test_cimd_document_missing_or_not_json_is_refused(server, doc_server):
    _, ch = pkce_pair()
    doc_server.docs["/clients/html.json"] = b"<html><body>not a client</body></html>"
    doc_server.docs["/clients/truncated.json"] = b'{"client_id": "https://'
    doc_server.docs["/clients/array.json"] = []
    for path in ["/clients/absent.json", "/clients/html.json", "/clients/truncated.json", "/clients/array.json"]:
        before = len(doc_server.hits)
        r = httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": f"{doc_server.base}{path}",
                                                                 "redirect_uri": "http://127.0.0.1:5555/cb", "code_challenge": ch, "code_challenge_method": "S256"}))
        assert path in doc_server.hits[before:], f"{path} was never fetched: the refusal proves nothing"
        assert r.status_code == 400 and "location" not in r.headers, (path, r.status_code, r.text)


class _Listener:
    """Listens on `host`:port (port 0: a free one) and counts accepted connections."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except (socket.timeout, OSError):
                pass

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()


def test_cimd_ssrf_to_a_private_port_is_refused_without_connecting(server, doc_server):
    # A private service of our own on a free port, on both loopback
    # families: the check runs everywhere (it used port 22 and turned
    # itself off where that could not be bound).
    watch = _Listener(0)
    watch6 = _Listener(watch.port, "::1")
    try:
        _, ch = pkce_pair()
        port = watch.port
        for client_id in [f"https://127.0.0.1:{port}/x", f"https://localhost:{port}/client.json", f"https://[::1]:{port}/x"]:
            r = httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:5555/cb",
                                                                     "code_challenge": ch, "code_challenge_method": "S256", "state": "s"}))
            assert r.status_code == 400, (client_id, r.text)
            assert "location" not in r.headers
        time.sleep(0.5)
        assert (watch.accepted, watch6.accepted) == (0, 0), f"the server connected to the private port {port}"
    finally:
        watch.close()
        watch6.close()
    # the allowed host is host:port exact: the same document server under another name is refused, unfetched
    hits = len(doc_server.hits)
    alias = f"https://localhost:{doc_server.port}/clients/alias.json"
    doc_server.docs["/clients/alias.json"] = {"client_id": alias, "redirect_uris": ["http://127.0.0.1:5555/cb"], "token_endpoint_auth_method": "none"}
    r = httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": alias, "redirect_uri": "http://127.0.0.1:5555/cb",
                                                             "code_challenge": ch, "code_challenge_method": "S256"}))
    assert r.status_code == 400 and "location" not in r.headers
    assert len(doc_server.hits) == hits, "the server fetched a document from a host that is not allowed"


def test_cimd_client_id_must_be_https_with_a_path(server):
    _, ch = pkce_pair()
    for client_id in ["http://127.0.0.1:5555/client.json", "https://127.0.0.1:5555", "https://127.0.0.1:5555/"]:
        r = httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:5555/cb",
                                                                 "code_challenge": ch, "code_challenge_method": "S256"}))
        assert r.status_code == 400 and "location" not in r.headers, client_id


def test_cimd_limits_size_and_redirects(server, doc_server):
    _, ch = pkce_pair()
    redirect = "http://127.0.0.1:5555/cb"

    def authorize(client_id):
        return httpx.get(add_query(f"{server.issuer}/authorize", {"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                                                                    "code_challenge": ch, "code_challenge_method": "S256"}))

    big, _ = _cimd(doc_server, "/clients/big.json", redirect, padding="x" * 70_000)  # over 64 KiB
    r = authorize(big)
    assert r.status_code == 400 and "location" not in r.headers
    # a redirect is not followed, even to a valid document
    good, _ = _cimd(doc_server, "/clients/target.json", redirect)
    doc_server.redirects["/clients/moved.json"] = "/clients/target.json"
    moved = f"{doc_server.base}/clients/moved.json"
    hits = len(doc_server.hits)
    r = authorize(moved)
    assert r.status_code == 400 and "location" not in r.headers
    assert doc_server.hits[hits:] == ["/clients/moved.json"]
    # a document asking for a client secret method is refused
    conf, _ = _cimd(doc_server, "/clients/confidential.json", redirect, token_endpoint_auth_method="client_secret_basic")
    r = authorize(conf)
    assert r.status_code == 400 and "location" not in r.headers


def test_client_secrets_and_tokens_are_not_stored_in_the_clear(flows, server):
    reg = flows.register()
    tok = flows.tokens(reg, login="dave")
    dump = server.redis.dump(server.db)
    assert reg["client_id"] in dump  # the dump does see the client
    for name, secret in [("client_secret", reg["client_secret"]), ("registration_access_token", reg["registration_access_token"]),
                         ("refresh_token", tok["refresh_token"]), ("access_token", tok["access_token"])]:
        assert secret not in dump, f"the {name} is stored in the clear in Redis"
