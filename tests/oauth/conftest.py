"""Fixtures of the OAuth black-box tests: a real Redis, the real npm
`oidc-provider` as upstream IdP, a GitHub stand-in, an https server for
Client ID Metadata Documents, and `portcullis serve` instances, each on free
127.0.0.1 ports, all stopped at the end of the session."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

with warnings.catch_warnings():
    # authlib deprecates its httpx integration (for httpx2) and authlib.jose
    # (for joserfc) but both work; importing authlib.deprecate installs an
    # "always" filter for its warnings, so ignore again after it.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore")
    import authlib.jose  # noqa: F401
    from authlib.integrations.httpx_client import OAuth2Client

from github_standin import GithubFixture, GithubUser
from helpers import Browser, BrowserResult, pkce_pair, register_client, unused_loopback_redirect
from procs import Proc, Redis, free_port, serve_portcullis, wait_port

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "pytest-admin-token-" + secrets.token_hex(12)
MCP_RESOURCE = "https://mcp.test/mcp"


# Reports of the MCP conformance suite, printed at the end of the session.
CONFORMANCE_REPORTS: list[str] = []


def pytest_terminal_summary(terminalreporter):
    for r in CONFORMANCE_REPORTS:
        terminalreporter.section("MCP conformance suite, authorization mode")
        terminalreporter.write_line(r.rstrip())


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("oauth")


# -- Redis ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis(workdir):
    r = Redis(workdir)
    yield r
    r.proc.stop()


# -- portcullis ------------------------------------------------------------------


class Portcullis:
    """`portcullis serve` on free ports with exactly the given environment."""

    def __init__(self, name: str, redis: Redis, workdir: Path, env: dict, api_port: int | None = None):
        self.name = name
        self.api_port = api_port or free_port()
        self.issuer = f"http://127.0.0.1:{self.api_port}"
        self.url = self.issuer
        d = workdir / name
        d.mkdir()
        self.redis = redis
        self.db = redis.new_db()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "REDIS_URL": redis.url(self.db),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "SERVER_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
            "HTTPS_PORT": str(free_port()),
            "PROXY_PROTOCOL_PORT": str(free_port()),
            "API_PORT": str(self.api_port),
            "LOG_LEVEL": "DEBUG",
            "PROXY_THREADS": "2",
            "REDIS_STARTUP_TIMEOUT": "5",
            # no ACME traffic leaves the machine
            "ACME_DIRECTORY_URL": "http://127.0.0.1:9/directory",
            "ACME_STAGING_URL": "http://127.0.0.1:9/directory",
            "OAUTH_ISSUER": self.issuer,
        }
        self.env.update(env)
        # The working directory is empty: no .env is read.
        self.proc = serve_portcullis(f"portcullis-{name}", self.env, d, workdir, self.url)
        self.http = httpx.Client(timeout=30)

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        return self.http.request(method, f"{self.url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, **kw)

    def create_proxy(self, hostname: str) -> None:
        r = self.admin("POST", "/api/v1/proxy/targets/", json={"hostname": hostname, "target_url": "http://127.0.0.1:9", "enable_https": False})
        assert r.status_code in (200, 201), f"creating proxy {hostname}: {r.status_code} {r.text}"

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


# -- upstream identity providers -------------------------------------------------


def node_bin() -> str:
    """Node.js 22 from npm (tests/oauth/idp installs it), else the machine's node."""
    n = HERE / "idp" / "node_modules" / "node" / "bin" / "node"
    return str(n) if n.is_file() else (shutil.which("node") or "node")


class Idp:
    """The real `oidc-provider` with one client, `portcullis`."""

    def __init__(self, workdir: Path, redirect_uri: str):
        d = HERE / "idp"
        if not (d / "node_modules" / "oidc-provider").is_dir():
            pytest.exit(f"run `npm install` in {d} first (scripts/test.sh does)", 2)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = "portcullis"
        self.client_secret = secrets.token_hex(16)
        env = {"PATH": os.environ.get("PATH", ""), "IDP_PORT": str(self.port), "IDP_CLIENT_SECRET": self.client_secret, "IDP_REDIRECT_URI": redirect_uri,
               "NODE_NO_WARNINGS": "1"}
        self.proc = Proc("oidc-provider", [node_bin(), str(d / "server.mjs")], env, d, workdir)
        wait_port(self.port, 30, self.proc.p, "oidc-provider")


# -- https server for Client ID Metadata Documents ------------------------------


def make_test_ca(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portcullis pytest CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = d / "ca.pem", d / "server.pem", d / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


class DocServer:
    """https://127.0.0.1:PORT serving the documents set by the tests: JSON
    of a Python value, or raw bytes."""

    def __init__(self, cert: Path, key: Path):
        self.docs: dict[str, object] = {}
        self.redirects: dict[str, str] = {}
        self.hits: list[str] = []
        srv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.hits.append(self.path)
                if self.path in srv.redirects:
                    self.send_response(302)
                    self.send_header("Location", srv.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                doc = srv.docs.get(self.path)
                # bytes are served as they are (a document that is not JSON)
                body = doc if isinstance(doc, bytes) else json.dumps(doc).encode() if doc is not None else b'{"error":"not found"}'
                self.send_response(200 if doc is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def test_ca(workdir):
    d = workdir / "ca"
    d.mkdir()
    return make_test_ca(d)


@pytest.fixture(scope="session")
def doc_server(test_ca):
    s = DocServer(test_ca[1], test_ca[2])
    yield s
    s.stop()


# -- the servers under test ------------------------------------------------------


@pytest.fixture(scope="session")
def idp_and_server(redis, workdir, test_ca, doc_server):
    """The main instance: OIDC login through oidc-provider, the mcp.test proxy
    (so https://mcp.test/mcp is a known resource), the test CA for CIMD."""
    api_port = free_port()
    idp = Idp(workdir, f"http://127.0.0.1:{api_port}/callback")
    server = None
    try:
        server = Portcullis("oidc", redis, workdir, {
            "OAUTH_LOGIN_PROVIDER": "oidc",
            "OIDC_ISSUER": idp.issuer,
            "OIDC_CLIENT_ID": idp.client_id,
            "OIDC_CLIENT_SECRET": idp.client_secret,
            "OAUTH_ADMIN_USERS": "alice",
            "OAUTH_USER_USERS": "carol",
            "OAUTH_MCP_USERS": "alice,dave",
            "OAUTH_REGISTRATIONS_PER_HOUR": "1000",
            "OAUTH_HTTP_CA_BUNDLE": str(test_ca[0]),
            "OAUTH_CIMD_ALLOWED_HOSTS": f"127.0.0.1:{doc_server.port}",
        }, api_port=api_port)
        server.create_proxy("mcp.test")
        yield idp, server
    finally:
        if server:
            server.stop()
        idp.proc.stop()


@pytest.fixture(scope="session")
def idp(idp_and_server):
    return idp_and_server[0]


@pytest.fixture(scope="session")
def server(idp_and_server):
    return idp_and_server[1]


@pytest.fixture(scope="session")
def github():
    fx = GithubFixture("gh-client-id", "gh-client-secret-" + secrets.token_hex(8))
    fx.add_user(GithubUser(
        login="alice", id=1001, name="Alice", email=None,
        emails=[
            {"email": "alice-old@users.test", "verified": True, "primary": False, "visibility": None},
            {"email": "alice@users.test", "verified": True, "primary": True, "visibility": "private"},
        ],
        orgs=["acme", "widgets"], teams=[("acme", "platform", "Platform"), ("widgets", "core", "Core")],
    ))
    fx.add_user(GithubUser(login="bob", id=1002, name="Bob", email="bob@users.test",
                           emails=[{"email": "bob@users.test", "verified": True, "primary": True, "visibility": "public"}]))
    fx.add_user(GithubUser(login="carol", id=1003, name="Carol", email="carol@users.test",
                           emails=[{"email": "carol@users.test", "verified": True, "primary": True, "visibility": "public"}], orgs=["acme"]))
    fx.start()
    yield fx
    fx.stop()


@pytest.fixture(scope="session")
def gh_server(redis, workdir, github):
    """An instance logging in through the GitHub stand-in; only alice and carol may log in."""
    s = Portcullis("github", redis, workdir, {
        **github.env(),
        "OAUTH_ALLOWED_GITHUB_USERS": "alice,carol",
        "OAUTH_ADMIN_USERS": "alice",
        "OAUTH_USER_USERS": "carol",
        "OAUTH_REGISTRATIONS_PER_HOUR": "1000",
    })
    s.create_proxy("mcp.test")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def seed_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rate_limited_server(redis, workdir, seed_key):
    """No login provider; 3 registrations per hour; signing key from OAUTH_JWT_PRIVATE_KEY_B64."""
    import base64

    from cryptography.hazmat.primitives import serialization

    pem = seed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    s = Portcullis("ratelimit", redis, workdir, {"OAUTH_REGISTRATIONS_PER_HOUR": "3", "OAUTH_JWT_PRIVATE_KEY_B64": base64.b64encode(pem).decode()})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def spare_server(redis, workdir):
    """An instance of its own for tests that disturb global state (key rotations)."""
    s = Portcullis("spare", redis, workdir, {})
    yield s
    s.stop()


# -- OAuth client side -------------------------------------------------------------


class Flows:
    """Client-side shortcuts against one server: register, authorize through
    the browser, exchange with authlib."""

    def __init__(self, server: Portcullis, upstream: str, github: str | None = None):
        self.server = server
        self.issuer = server.issuer
        self.upstream = upstream
        self.github = github
        self.http = httpx.Client(timeout=30)
        self.last_response: httpx.Response | None = None

    def close(self):
        self.http.close()

    def browser(self, login: str = "alice", cancel: bool = False, decide: str | None = "approve") -> Browser:
        return Browser([self.issuer, self.upstream], login=login, github=self.github, cancel=cancel, decide=decide)

    def register(self, **meta) -> dict:
        meta.setdefault("redirect_uris", [unused_loopback_redirect()])
        return register_client(self.http, self.issuer, **meta)

    def _keep(self, response: httpx.Response):
        self.last_response = response

    def client(self, reg: dict, redirect_uri: str | None = None, scope: str | None = None) -> OAuth2Client:
        secret = reg.get("client_secret")
        return OAuth2Client(
            client_id=reg["client_id"], client_secret=secret,
            token_endpoint_auth_method=reg.get("token_endpoint_auth_method") or ("client_secret_basic" if secret else "none"),
            redirect_uri=redirect_uri or reg["redirect_uris"][0], scope=scope, code_challenge_method="S256", timeout=30,
            event_hooks={"response": [self._keep]},
        )

    def authorize(self, reg: dict, login: str = "alice", resource: str | list[str] | None = MCP_RESOURCE, scope: str | None = None,
                  redirect_uri: str | None = None, cancel: bool = False, decide: str | None = "approve",
                  **extra) -> tuple[OAuth2Client, BrowserResult, str, str]:
        """Runs /authorize → upstream login → /callback in a fresh browser.
        Returns (authlib client, browser result, code_verifier, state)."""
        c = self.client(reg, redirect_uri, scope)
        verifier, _ = pkce_pair()
        url, state = c.create_authorization_url(f"{self.issuer}/authorize", code_verifier=verifier, **extra)
        if resource:
            from helpers import add_query
            url = add_query(url, [("resource", r) for r in ([resource] if isinstance(resource, str) else resource)])
        with self.browser(login, cancel, decide) as b:
            res = b.open(url)
        return c, res, verifier, state

    def tokens(self, reg: dict, login: str = "alice", resource: str | list[str] | None = MCP_RESOURCE, scope: str | None = None, **kw) -> dict:
        """A full authorization code + PKCE flow; the token response."""
        c, res, verifier, state = self.authorize(reg, login, resource, scope, **kw)
        assert res.redirect, f"no redirect to the client: {res.response.status_code} {res.response.text[:300]}"
        p = res.params
        assert "code" in p, f"authorization failed: {p}"
        tok = c.fetch_token(f"{self.issuer}/token", authorization_response=res.redirect, code_verifier=verifier, state=state)
        c.close()
        return dict(tok)

    def introspect(self, token: str, reg: dict | None = None) -> httpx.Response:
        if reg is None:
            return self.http.post(f"{self.issuer}/introspect", data={"token": token}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        return self.http.post(f"{self.issuer}/introspect", data={"token": token}, auth=(reg["client_id"], reg["client_secret"]))

    def verify(self, token: str, resource: str = MCP_RESOURCE) -> httpx.Response:
        """/verify asked about `resource` (the audience /verify checks)."""
        return self.http.get(f"{self.issuer}/verify", params={"resource": resource}, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def flows(server, idp):
    f = Flows(server, idp.issuer)
    yield f
    f.close()


@pytest.fixture
def gh_flows(gh_server, github):
    f = Flows(gh_server, github.url, github=github.url)
    yield f
    f.close()


@pytest.fixture(scope="session")
def introspector(server):
    """A confidential client used to introspect on the main server."""
    with httpx.Client(timeout=30) as h:
        reg = register_client(h, server.issuer, redirect_uris=[unused_loopback_redirect()], client_name="introspector")
    # only a client the admin marks as resource server introspects others' tokens
    r = server.admin("PATCH", f"/api/v1/oauth/clients/{reg['client_id']}", json={"resource_server": True})
    assert r.status_code == 200 and r.json()["resource_server"] is True, r.text
    return reg

# A skip or xfail fails the run (tests/pyharness/strict_skips.py).
pytest_plugins = ["strict_skips"]
