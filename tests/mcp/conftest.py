"""Peers of the MCP suites, each on free 127.0.0.1 ports and stopped by its
own PID at the end: Redis, a GitHub stand-in (the login upstream: octocat
may administer, mona has the mcp scope only), an MCP server built with the
official SDK, and `portcullis serve` (twice on the same Redis where a test
needs a second instance) with a proxy in front of that server, protected by
ForwardAuth."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import httpx
import pytest

from github_standin import GithubFixture, GithubUser
from procs import Proc, Redis, free_port, serve_portcullis, wait_port

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "mcp-sdk-admin-" + secrets.token_hex(12)


LOGS: list[Proc] = []

# The MCP conformance suite's summaries (test_mcp_conformance.py), printed at the end.
CONFORMANCE_REPORTS: list[str] = []


def pytest_terminal_summary(terminalreporter):
    for r in CONFORMANCE_REPORTS:
        terminalreporter.section("MCP conformance suite, server mode, against /mcp")
        terminalreporter.write_line(r.rstrip())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when in ("setup", "call") and rep.failed:
        for p in LOGS:
            rep.sections.append((f"{p.name} log (last 15000 chars)", p.log()[-15000:]))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mcp")


@pytest.fixture(scope="session")
def redis(workdir):
    r = Redis(workdir)
    yield r.url(r.new_db())
    r.proc.stop()


@pytest.fixture(scope="session")
def github():
    fx = GithubFixture("gh-client", "gh-secret-" + secrets.token_hex(8))
    fx.add_user(GithubUser(
        login="octocat", id=583231, name="The Octocat", email="octocat@github.example",
        emails=[{"email": "octocat@github.example", "verified": True, "primary": True, "visibility": "public"}],
    ))
    fx.add_user(GithubUser(
        login="mona", id=9919, name="Mona", email="mona@github.example",
        emails=[{"email": "mona@github.example", "verified": True, "primary": True, "visibility": "public"}],
    ))
    fx.next_login = "octocat"
    fx.start()
    yield fx
    fx.stop()


class Backend:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.proc = Proc("mcp-backend", [sys.executable, str(HERE / "mcp_backend.py"), str(self.port)], dict(os.environ), HERE, workdir)
        LOGS.append(self.proc)
        wait_port(self.port, 30, self.proc.p, "MCP backend")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seen(self) -> list[dict]:
        """Requests the backend received: method, path, headers (lowercase name → values)."""
        return httpx.get(f"{self.url}/_seen", timeout=10).json()


@pytest.fixture(scope="session")
def backend(workdir):
    b = Backend(workdir)
    yield b
    b.proc.stop()


class Portcullis:
    """`portcullis serve` on free ports, logging in through the GitHub stand-in."""

    def __init__(self, workdir: Path, redis_url: str, github: GithubFixture, name: str = "portcullis",
                 extra_env: dict | None = None):
        self.api_port, self.http_port = free_port(), free_port()
        self.issuer = f"http://127.0.0.1:{self.api_port}"
        d = workdir / name
        d.mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "REDIS_URL": redis_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "SERVER_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.http_port),
            "HTTPS_PORT": str(free_port()),
            "PROXY_PROTOCOL_PORT": str(free_port()),
            "API_PORT": str(self.api_port),
            "LOG_LEVEL": "DEBUG",
            "NO_COLOR": "1",
            "PROXY_THREADS": "2",
            # stop quickly when the tests end
            "SHUTDOWN_GRACE_PERIOD": "1",
            "OAUTH_ISSUER": self.issuer,
            "OAUTH_MCP_USERS": "*",
            "OAUTH_ADMIN_USERS": "octocat",
            # no ACME traffic leaves the machine
            "ACME_DIRECTORY_URL": "http://127.0.0.1:9/directory",
            "ACME_STAGING_URL": "http://127.0.0.1:9/directory",
            **github.env(),
            **(extra_env or {}),
        }
        # An empty working directory: no .env is read.
        self.proc = serve_portcullis(name, self.env, d, workdir, self.issuer)
        LOGS.append(self.proc)
        self.http = httpx.Client(timeout=30)

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        return self.http.request(method, f"{self.issuer}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, **kw)

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


@pytest.fixture(scope="session")
def portcullis(workdir, redis, github):
    p = Portcullis(workdir, redis, github)
    yield p
    p.stop()


@pytest.fixture(scope="session")
def conformance_portcullis(workdir, github):
    """An instance with the MCP conformance suite's fixtures
    (MCP_CONFORMANCE_FIXTURES=true), on a Redis of its own: the fixture
    tools must not show up in the other tests' lists."""
    (workdir / "conformance").mkdir()
    r = Redis(workdir / "conformance")
    p = Portcullis(workdir, r.url(r.new_db()), github, name="portcullis-conformance",
                   extra_env={"MCP_CONFORMANCE_FIXTURES": "true"})
    yield p
    p.stop()
    r.proc.stop()


@pytest.fixture(scope="session")
def second_portcullis(workdir, redis, github):
    """Another instance on the same Redis (and so the same keys and sessions)."""
    p = Portcullis(workdir, redis, github, name="portcullis-2")
    yield p
    p.stop()


@pytest.fixture(scope="session")
def mcp_url(portcullis, backend) -> str:
    """A proxy for host 127.0.0.1 in front of the MCP backend, ForwardAuth on;
    returns the URL the SDK talks to once an unauthenticated request gets the 401."""
    body = {
        "hostname": "127.0.0.1",
        "target_url": backend.url,
        "enable_https": False,
        "auth_enabled": True,
        "auth_mode": "forward",
        "resource_endpoint": "/mcp",
        "resource_scopes": ["mcp"],
        "resource_override_backend": True,
    }
    r = portcullis.admin("POST", "/api/v1/proxy/targets/", json=body)
    assert r.status_code in (200, 201), f"creating the proxy: {r.status_code} {r.text}"
    url = f"http://127.0.0.1:{portcullis.http_port}/mcp"
    end = time.monotonic() + 10
    last = None
    while time.monotonic() < end:
        try:
            last = httpx.get(url, timeout=5)
            if last.status_code == 401 and "resource_metadata" in last.headers.get("www-authenticate", ""):
                return url
        except httpx.TransportError as e:
            last = e
        time.sleep(0.1)
    pytest.fail(f"{url} never answered 401 with resource_metadata; last: {last!r} {getattr(last, 'headers', '')}")

# A skip or xfail fails the run (tests/pyharness/strict_skips.py).
pytest_plugins = ["strict_skips"]
