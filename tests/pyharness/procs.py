"""Child processes for the Python suites (tests/mcp, tests/oauth): free
loopback ports, waiting for a listener, a process whose output goes to a log
file and which is stopped by its own PID, and a private Redis."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


_GIVEN: set[int] = set()


def free_port() -> int:
    """A port that was free a moment ago, never one this process handed out before."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


class Proc:
    """A child process whose output goes to a log file; stopped by its own PID."""

    def __init__(self, name: str, args: list[str], env: dict, cwd: Path, logdir: Path):
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.p = subprocess.Popen(args, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self) -> str:
        """The output so far, without terminal colour codes."""
        try:
            return ANSI.sub("", self.log_path.read_text(errors="replace"))
        except OSError:
            return ""

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self._log.close()


def portcullis_bin() -> str:
    b = os.environ.get("PORTCULLIS_BIN") or str(ROOT / "target" / "debug" / "portcullis")
    if not Path(b).is_file():
        pytest.exit(f"portcullis binary not found at {b}: run `OPENSSL_NO_VENDOR=1 cargo build` or set PORTCULLIS_BIN", 2)
    return b


def serve_portcullis(name: str, env: dict, cwd: Path, logdir: Path, url: str) -> Proc:
    """Starts `portcullis serve` with exactly `env` in `cwd` (keep it empty: no
    .env is read there) and waits until `{url}/health` answers 200."""
    proc = Proc(name, [portcullis_bin(), "serve"], env, cwd, logdir)
    end = time.monotonic() + 90
    while True:
        if proc.p.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.p.returncode}:\n{proc.log()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > end:
            proc.stop()
            raise RuntimeError(f"{name} not healthy within 90s:\n{proc.log()[-4000:]}")
        time.sleep(0.1)


class Redis:
    """A private redis-server on a free port with a random password; tests take
    one database each (`new_db`)."""

    def __init__(self, workdir: Path):
        self.password = secrets.token_hex(16)
        d = workdir / "redis"
        d.mkdir()
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.exit("redis-server not installed (apt-get install redis-server)", 2)
        # A port free a moment ago can be taken before redis binds it (other
        # suites run beside this one): the set-up is retried on a new port.
        for attempt in range(3):
            self.port = free_port()
            self.proc = Proc(
                "redis",
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.password,
                 "--save", "", "--appendonly", "no", "--dir", str(d)],
                {"PATH": os.environ.get("PATH", "")}, d, workdir,
            )
            try:
                wait_port(self.port, 15, self.proc.p, "redis-server")
                break
            except RuntimeError:
                self.proc.stop()
                if attempt == 2:
                    raise
        self._next_db = 0

    def dump(self, db: int) -> str:
        """Every key of `db` and its value(s), as text (to look for secrets stored in the clear)."""
        cli = [shutil.which("redis-cli") or "redis-cli", "--no-auth-warning", "-a", self.password, "-p", str(self.port), "-n", str(db)]
        keys = subprocess.run(cli + ["--scan"], capture_output=True, text=True, check=True).stdout.split()
        out = []
        for k in keys:
            t = subprocess.run(cli + ["type", k], capture_output=True, text=True).stdout.strip()
            cmd = {"string": ["get"], "set": ["smembers"], "hash": ["hgetall"], "list": ["lrange"], "zset": ["zrange"]}.get(t)
            if cmd is None:
                continue
            extra = ["0", "-1"] if t in ("list", "zset") else []
            # errors="replace": some values are binary (the request log's HyperLogLogs)
            value = subprocess.run(cli + cmd + [k] + extra, capture_output=True, text=True, errors="replace").stdout
            out.append(k + " " + value)
        return "\n".join(out)

    def url(self, db: int) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    def new_db(self) -> int:
        db = self._next_db
        self._next_db += 1
        return db
