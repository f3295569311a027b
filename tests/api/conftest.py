"""Peers of the API document tests, on free 127.0.0.1 ports and stopped by
their own PIDs: Redis and `portcullis serve`, with the bootstrap admin token
and a user-scope token made through the API."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
import pytest

from procs import Proc, Redis, free_port, serve_portcullis

ADMIN_TOKEN = "api-admin-" + secrets.token_hex(12)

LOGS: list[Proc] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when in ("setup", "call") and rep.failed:
        for p in LOGS:
            rep.sections.append((f"{p.name} log (last 15000 chars)", p.log()[-15000:]))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api")


class Server:
    """`portcullis serve` with Redis; no ACME traffic leaves the machine."""

    def __init__(self, workdir: Path):
        self.redis = Redis(workdir)
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        d = workdir / "portcullis"
        d.mkdir()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "REDIS_URL": self.redis.url(self.redis.new_db()),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "SERVER_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
            "HTTPS_PORT": str(free_port()),
            "PROXY_PROTOCOL_PORT": str(free_port()),
            "API_PORT": str(self.api_port),
            "LOG_LEVEL": "INFO",
            "NO_COLOR": "1",
            "PROXY_THREADS": "2",
            "SHUTDOWN_GRACE_PERIOD": "1",
            "OAUTH_ISSUER": self.url,
            "ACME_DIRECTORY_URL": "http://127.0.0.1:9/directory",
            "ACME_STAGING_URL": "http://127.0.0.1:9/directory",
            "ACME_AUTO": "false",
        }
        self.proc = serve_portcullis("portcullis", env, d, workdir, self.url)
        LOGS.append(self.proc)
        r = httpx.post(
            f"{self.url}/api/v1/tokens/generate",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"name": "fuzz-user", "scope": "user"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        self.user_token = r.json()["token"]
        self.admin_token = ADMIN_TOKEN

    def stop(self) -> None:
        self.proc.stop()
        self.redis.proc.stop()


@pytest.fixture(scope="session")
def server(workdir):
    s = Server(workdir)
    yield s
    s.stop()


# A skip or xfail fails the run (tests/pyharness/strict_skips.py).
pytest_plugins = ["strict_skips"]
