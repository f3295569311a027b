"""A stand-in for GitHub's OAuth app endpoints and REST API (GitHub cannot be
reached from here), serving exactly the documented shapes; the Python mirror
of tests/it/harness/github.rs. It records what it was asked."""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

CLIENT_ID = "gh-client"
CLIENT_SECRET = "gh-secret"


@dataclass
class GithubUser:
    login: str
    id: int
    email: str | None = None


class GithubFixture:
    def __init__(self) -> None:
        self.next_user: GithubUser | None = None
        self.codes: dict[str, GithubUser] = {}
        self.tokens: dict[str, GithubUser] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.api_requests: list[str] = []
        self.lock = threading.Lock()
        fx = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _json(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _who(self) -> GithubUser | None:
                auth = self.headers.get("Authorization", "")
                parts = auth.split(" ", 1)
                if len(parts) != 2:
                    return None
                with fx.lock:
                    return fx.tokens.get(parts[1].strip())

            def do_GET(self):
                u = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                if u.path == "/login/oauth/authorize":
                    with fx.lock:
                        fx.authorize_requests.append(q)
                        user = fx.next_user
                        if user is None or q.get("client_id") != CLIENT_ID or "redirect_uri" not in q:
                            self._json(400, {"error": "bad authorize request"})
                            return
                        code = "ghcode" + secrets.token_hex(8)
                        fx.codes[code] = user
                    ru = urlsplit(q["redirect_uri"])
                    extra = urlencode({"code": code, "state": q.get("state", "")})
                    loc = urlunsplit(ru._replace(query=(ru.query + "&" if ru.query else "") + extra))
                    self.send_response(302)
                    self.send_header("Location", loc)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with fx.lock:
                    fx.api_requests.append(u.path)
                user = self._who()
                if u.path.startswith("/api/") and user is None:
                    self._json(401, {"message": "Bad credentials"})
                elif u.path == "/api/user":
                    self._json(200, {"login": user.login, "id": user.id, "email": user.email, "name": user.login})
                elif u.path == "/api/user/emails":
                    self._json(200, [{"email": f"{user.login}@users.example", "primary": True, "verified": True, "visibility": "private"}])
                elif u.path == "/api/user/orgs":
                    self._json(200, [{"login": "acme", "id": 1}])
                elif u.path == "/api/user/teams":
                    self._json(200, [{"slug": "ops", "organization": {"login": "acme"}}])
                else:
                    self._json(404, {"message": "Not Found"})

            def do_POST(self):
                u = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
                if u.path != "/login/oauth/access_token":
                    self._json(404, {"message": "Not Found"})
                    return
                with fx.lock:
                    fx.token_requests.append(form)
                    if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                        body = {"error": "incorrect_client_credentials"}
                    elif (user := fx.codes.pop(form.get("code", ""), None)) is None:
                        body = {"error": "bad_verification_code"}
                    else:
                        token = "gho_" + secrets.token_hex(16)
                        fx.tokens[token] = user
                        body = {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}
                if "json" in self.headers.get("Accept", ""):
                    self._json(200, body)
                else:
                    data = urlencode(body).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "OAUTH_LOGIN_PROVIDER": "github",
            "GITHUB_CLIENT_ID": CLIENT_ID,
            "GITHUB_CLIENT_SECRET": CLIENT_SECRET,
            "GITHUB_AUTHORIZE_URL": f"{self.base}/login/oauth/authorize",
            "GITHUB_TOKEN_URL": f"{self.base}/login/oauth/access_token",
            "GITHUB_API_URL": f"{self.base}/api",
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
