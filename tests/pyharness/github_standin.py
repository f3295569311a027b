"""A stand-in for github.com and api.github.com serving exactly the documented
shapes the GitHub login adapter reads (GitHub itself cannot be reached from
the test machines), shared by tests/oauth and tests/mcp; the Python mirror of
tests/it/harness/github.rs:

- ``GET  /login/oauth/authorize`` (client_id, redirect_uri, scope, state):
  "the user approves" at once, 302 to ``redirect_uri?code=..&state=..``.
  The user is the ``login`` query parameter when present (GitHub's own
  "suggest a specific account" parameter), else ``GithubFixture.next_login``.
- ``POST /login/oauth/access_token`` (form: client_id, client_secret, code,
  redirect_uri): form-encoded answer unless ``Accept: application/json``;
  errors are 200 with ``error``/``error_description``/``error_uri`` as GitHub does.
- ``GET /user``, ``/user/emails``, ``/user/orgs``, ``/user/teams`` with
  ``Authorization: Bearer|token <access token>``; 401 ``{"message": "Bad credentials"}`` otherwise.

Every request is recorded in ``requests`` for assertions.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit


@dataclass
class GithubUser:
    login: str
    id: int
    name: str | None = None
    # The public e-mail on the profile; None when the user keeps it private
    # (then /user has "email": null and the address is in /user/emails).
    email: str | None = None
    emails: list[dict] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    # (org login, team slug, team name)
    teams: list[tuple[str, str, str]] = field(default_factory=list)


def _org(login: str, oid: int) -> dict:
    return {
        "login": login,
        "id": oid,
        "node_id": f"O_{oid}",
        "url": f"https://api.github.com/orgs/{login}",
        "repos_url": f"https://api.github.com/orgs/{login}/repos",
        "events_url": f"https://api.github.com/orgs/{login}/events",
        "hooks_url": f"https://api.github.com/orgs/{login}/hooks",
        "issues_url": f"https://api.github.com/orgs/{login}/issues",
        "members_url": f"https://api.github.com/orgs/{login}/members{{/member}}",
        "public_members_url": f"https://api.github.com/orgs/{login}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{oid}?v=4",
        "description": None,
    }


class GithubFixture:
    def __init__(self, client_id: str, client_secret: str):
        self.client_id = client_id
        self.client_secret = client_secret
        # OAuth apps: client_id -> client_secret (the global one, plus per-proxy apps)
        self.apps: dict[str, str] = {client_id: client_secret}
        self.users: dict[str, GithubUser] = {}
        self.next_login: str | None = None
        self.codes: dict[str, tuple[str, str, str]] = {}  # code -> (login, redirect_uri, client_id)
        self.tokens: dict[str, str] = {}  # access token -> login
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add_app(self, client_id: str, client_secret: str) -> None:
        self.apps[client_id] = client_secret

    def add_user(self, user: GithubUser) -> None:
        self.users[user.login] = user

    def start(self) -> "GithubFixture":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def env(self) -> dict[str, str]:
        """The portcullis settings that log in through this stand-in."""
        return {
            "OAUTH_LOGIN_PROVIDER": "github",
            "GITHUB_CLIENT_ID": self.client_id,
            "GITHUB_CLIENT_SECRET": self.client_secret,
            "GITHUB_AUTHORIZE_URL": f"{self.url}/login/oauth/authorize",
            "GITHUB_TOKEN_URL": f"{self.url}/login/oauth/access_token",
            "GITHUB_API_URL": self.url,
        }

    def requests_to(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    # -- HTTP ------------------------------------------------------------------

    def _handler(self):
        fx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj):
                self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

            def _record(self, body: bytes = b""):
                u = urlsplit(self.path)
                rec = {
                    "method": self.command,
                    "path": u.path,
                    "query": parse_qs(u.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "form": parse_qs(body.decode("latin-1")) if body else {},
                }
                with fx._lock:
                    fx.requests.append(rec)
                return rec

            def _user(self) -> GithubUser | None:
                auth = self.headers.get("Authorization", "")
                scheme, _, tok = auth.partition(" ")
                if scheme.lower() not in ("bearer", "token"):
                    return None
                login = fx.tokens.get(tok.strip())
                return fx.users.get(login) if login else None

            def do_GET(self):
                rec = self._record()
                path, q = rec["path"], {k: v[0] for k, v in rec["query"].items()}
                if path == "/login/oauth/authorize":
                    if q.get("client_id") not in fx.apps:
                        return self._send(404, b"Not Found", "text/plain")
                    login = q.get("login") or fx.next_login
                    if login not in fx.users:
                        return self._send(200, b"<html>Sign in to GitHub</html>", "text/html")
                    redirect = q["redirect_uri"]
                    code = secrets.token_hex(10)
                    fx.codes[code] = (login, redirect, q["client_id"])
                    parts = urlsplit(redirect)
                    query = parts.query + ("&" if parts.query else "") + urlencode({"code": code, "state": q.get("state", "")})
                    loc = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
                    return self._send(302, b"", "text/html", {"Location": loc})
                if not path.startswith("/user"):
                    return self._json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
                user = self._user()
                if user is None:
                    return self._json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
                if path == "/user":
                    return self._json(200, {
                        "login": user.login,
                        "id": user.id,
                        "node_id": f"U_{user.id}",
                        "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
                        "gravatar_id": "",
                        "url": f"https://api.github.com/users/{user.login}",
                        "html_url": f"https://github.com/{user.login}",
                        "type": "User",
                        "site_admin": False,
                        "name": user.name,
                        "company": None,
                        "blog": "",
                        "location": None,
                        "email": user.email,
                        "hireable": None,
                        "bio": None,
                        "twitter_username": None,
                        "public_repos": 2,
                        "public_gists": 0,
                        "followers": 1,
                        "following": 0,
                        "created_at": "2008-01-14T04:33:35Z",
                        "updated_at": "2008-01-14T04:33:35Z",
                    })
                if path == "/user/emails":
                    return self._json(200, user.emails)
                if path == "/user/orgs":
                    return self._json(200, [_org(o, 1000 + i) for i, o in enumerate(user.orgs)])
                if path == "/user/teams":
                    return self._json(200, [
                        {
                            "id": 2000 + i,
                            "node_id": f"T_{2000 + i}",
                            "url": f"https://api.github.com/teams/{2000 + i}",
                            "html_url": f"https://github.com/orgs/{org}/teams/{slug}",
                            "name": name,
                            "slug": slug,
                            "description": "",
                            "privacy": "closed",
                            "notification_setting": "notifications_enabled",
                            "permission": "pull",
                            "members_url": f"https://api.github.com/teams/{2000 + i}/members{{/member}}",
                            "repositories_url": f"https://api.github.com/teams/{2000 + i}/repos",
                            "parent": None,
                            "members_count": 3,
                            "repos_count": 10,
                            "created_at": "2017-07-14T16:53:42Z",
                            "updated_at": "2017-08-17T12:37:15Z",
                            "organization": _org(org, 1000 + (user.orgs.index(org) if org in user.orgs else 99)) | {"name": org, "type": "Organization"},
                        }
                        for i, (org, slug, name) in enumerate(user.teams)
                    ])
                return self._json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rec = self._record(body)
                if rec["path"] != "/login/oauth/access_token":
                    return self._json(404, {"message": "Not Found"})
                f = {k: v[0] for k, v in rec["form"].items()}
                wants_json = "application/json" in self.headers.get("Accept", "")

                def answer(obj):
                    if wants_json:
                        return self._json(200, obj)
                    return self._send(200, urlencode(obj).encode(), "application/x-www-form-urlencoded; charset=utf-8")

                if f.get("client_id") not in fx.apps or f.get("client_secret") != fx.apps[f["client_id"]]:
                    return answer({
                        "error": "incorrect_client_credentials",
                        "error_description": "The client_id and/or client_secret passed are incorrect.",
                        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials",
                    })
                entry = fx.codes.pop(f.get("code", ""), None)
                if entry is None or entry[2] != f["client_id"]:
                    return answer({
                        "error": "bad_verification_code",
                        "error_description": "The code passed is incorrect or expired.",
                        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
                    })
                login, redirect, _ = entry
                if f.get("redirect_uri") not in (None, redirect):
                    return answer({
                        "error": "redirect_uri_mismatch",
                        "error_description": "The redirect_uri MUST match the registered callback URL for this application.",
                        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch2",
                    })
                tok = "gho_" + secrets.token_hex(18)
                fx.tokens[tok] = login
                return answer({"access_token": tok, "scope": "read:org,read:user,user:email", "token_type": "bearer"})

        return Handler
