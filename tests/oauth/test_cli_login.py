"""`portcullis login` / `whoami` / `logout` end to end (issue 19): the real
CLI binary runs the device flow against the real server while a person (the
test browser) approves it at the real IdP; the stored credentials file is
owner-only, later commands use it, refresh it when it is about to expire,
and `logout` removes it."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import threading
import time

from procs import portcullis_bin


def _cli(server, creds, *args, timeout=60):
    env = {"PATH": os.environ.get("PATH", ""), "PORTCULLIS_CREDENTIALS": str(creds), "API_URL": server.url}
    return subprocess.run([portcullis_bin(), *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _login(flows, server, creds, user="alice"):
    """Runs `portcullis login` until it prints the complete verification URI,
    approves it in the test browser as `user`, and waits for the CLI."""
    env = {"PATH": os.environ.get("PATH", ""), "PORTCULLIS_CREDENTIALS": str(creds), "API_URL": server.url}
    p = subprocess.Popen([portcullis_bin(), "login", "--issuer", server.issuer], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, stdin=subprocess.DEVNULL)
    err_lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read_stderr():
        for line in p.stderr:
            err_lines.append(line)
            m = re.search(r"\(or open (\S+) ,", line)
            if m and not url:
                url.append(m.group(1))
                found.set()

    t = threading.Thread(target=read_stderr, daemon=True)
    t.start()
    assert found.wait(20), "".join(err_lines)
    with flows.browser(user) as b:
        res = b.open(url[0])
    assert "Device connected" in res.response.text, res.response.text[:500]
    out, _ = p.communicate(timeout=60)
    t.join(5)
    return p.returncode, out, "".join(err_lines)


def test_login_whoami_refresh_and_logout(flows, server, tmp_path):
    creds = tmp_path / "cfg" / "credentials.json"
    code, out, err = _login(flows, server, creds)
    assert code == 0, err
    assert "alice" in out, out

    # The file is the owner's alone.
    mode = stat.S_IMODE(os.stat(creds).st_mode)
    assert mode == 0o600, oct(mode)
    stored = json.loads(creds.read_text())
    assert stored["issuer"] == server.issuer and stored["refresh_token"] and stored["access_token"]

    # whoami reads it; --json carries the claims.
    r = _cli(server, creds, "whoami", "--json")
    assert r.returncode == 0, r.stderr
    who = json.loads(r.stdout)
    assert who["claims"]["preferred_username"] == "alice" and who["expired"] is False and who["refreshable"] is True

    # Another command uses the stored login (no ADMIN_TOKEN anywhere).
    r = _cli(server, creds, "proxy", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), list)

    # Near expiry the next command refreshes first: new tokens are stored.
    stored["expires_at"] = int(time.time()) + 30  # inside the 60 s refresh margin
    creds.write_text(json.dumps(stored))
    os.chmod(creds, 0o600)
    r = _cli(server, creds, "proxy", "list", "--json")
    assert r.returncode == 0, r.stderr
    after = json.loads(creds.read_text())
    assert after["access_token"] != stored["access_token"], "no refresh near expiry"
    assert after["refresh_token"] != stored["refresh_token"], "the refresh token was not rotated"
    assert after["expires_at"] > stored["expires_at"]
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600

    # logout deletes the file; whoami then says so and fails.
    r = _cli(server, creds, "logout")
    assert r.returncode == 0 and "logged out" in r.stdout, r.stdout + r.stderr
    assert not creds.exists()
    r = _cli(server, creds, "whoami")
    assert r.returncode == 1 and "not logged in" in r.stderr, r.stderr
    r = _cli(server, creds, "logout")
    assert r.returncode == 0 and "not logged in" in r.stdout
