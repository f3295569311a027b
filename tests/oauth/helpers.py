"""Helpers of the OAuth black-box tests: a browser-like client that walks the
login pages, loopback redirect URIs, PKCE and small OAuth shortcuts."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import json
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from procs import free_port

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def unused_loopback_redirect(path: str = "/cb") -> str:
    """A loopback redirect URI on a port nobody listens on: the browser never
    connects there, the test only reads the Location pointing at it."""
    return f"http://127.0.0.1:{free_port()}{path}"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(url: str) -> dict[str, str]:
    """Single-valued query parameters of a URL (repeated ones: the last)."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def query_multi(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def without_query(url: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, p.path, "", ""))


def add_query(url: str, params: list[tuple[str, str]] | dict) -> str:
    p = urlsplit(url)
    items = list(params.items()) if isinstance(params, dict) else params
    q = p.query + ("&" if p.query and items else "") + urlencode(items)
    return urlunsplit((p.scheme, p.netloc, p.path, q, ""))


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_parts(token: str) -> tuple[dict, dict]:
    """Header and claims of a JWT, unverified (verification is done with authlib.jose)."""
    h, c, _ = token.split(".")
    return b64url_json(h), b64url_json(c)


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._cur: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._cur = {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(), "inputs": []}
            self.forms.append(self._cur)
        elif tag in ("input", "button") and self._cur is not None and a.get("name"):
            if tag == "button" and (a.get("type") or "submit") != "submit":
                return
            self._cur["inputs"].append((a["name"], a.get("value") or "", (a.get("type") or "text").lower()))

    def handle_endtag(self, tag):
        if tag == "form":
            self._cur = None


def parse_forms(html: str) -> list[dict]:
    p = _Forms()
    p.feed(html)
    return p.forms


@dataclass
class BrowserResult:
    # The redirect that left the servers the browser follows (the client's
    # redirect_uri with code/state/iss or error), or None.
    redirect: str | None
    # The last response received.
    response: httpx.Response
    # Every URL visited, in order.
    visited: list[str] = field(default_factory=list)
    # Our consent / device approval pages shown on the way.
    decision_pages: list[httpx.Response] = field(default_factory=list)

    @property
    def params(self) -> dict[str, str]:
        assert self.redirect, f"no redirect to the client; last response {self.response.status_code}: {self.response.text[:500]}"
        return query(self.redirect)


class Browser:
    """A browser-like client: follows redirects among the servers it knows
    (our issuer, the IdP, the GitHub fixture), fills the IdP's login form with
    a name and submits its consent form, and stops at the first redirect that
    leaves them (the client's redirect_uri), without connecting there.
    A new Browser is a new browser profile: no cookies, so a new login."""

    def __init__(self, follow: list[str], login: str = "alice", github: str | None = None, cancel: bool = False,
                 decide: str | None = "approve"):
        self.follow = {urlsplit(u).netloc for u in follow}
        self.login = login
        # the answer to our consent / device approval page ("approve", "deny"),
        # submitted through its HTML form; None stops on that page
        self.decide = decide
        self.decision_pages: list[httpx.Response] = []
        # press the IdP's "Cancel" link instead of signing in
        self.cancel = cancel
        self.github = urlsplit(github).netloc if github else None
        self.http = httpx.Client(follow_redirects=False, timeout=30, headers={"User-Agent": "Mozilla/5.0 (portcullis tests)"})

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self, url: str, max_steps: int = 30) -> BrowserResult:
        visited: list[str] = []
        method, data = "GET", None
        resp = None
        for _ in range(max_steps):
            if method == "GET" and self.github and urlsplit(url).netloc == self.github and urlsplit(url).path == "/login/oauth/authorize":
                # GitHub's `login` parameter: which account signs in.
                url = add_query(url, {"login": self.login})
            visited.append(url)
            resp = self.http.request(method, url, data=data)
            method, data = "GET", None
            if resp.is_redirect:
                nxt = urljoin(url, resp.headers["location"])
                if urlsplit(nxt).netloc not in self.follow:
                    return BrowserResult(nxt, resp, visited, list(self.decision_pages))
                url = nxt
                continue
            ctype = resp.headers.get("content-type", "")
            if resp.status_code == 200 and "html" in ctype:
                forms = [f for f in parse_forms(resp.text) if f["method"] == "post"]
                cancel = re.search(r'<a href="([^"]+)">\[ Cancel \]</a>', resp.text)
                if self.cancel and cancel and "/interaction/" in urlsplit(url).path:
                    url = urljoin(url, html.unescape(cancel.group(1)))
                    continue
                decision = decision_form(resp.text, self.decide) if self.decide else None
                if forms and decision is None and any(f["action"].endswith("/consent") for f in forms):
                    self.decision_pages.append(resp)
                if decision is not None and urlsplit(url).netloc in self.follow:
                    self.decision_pages.append(resp)
                    url = urljoin(url, decision["action"])
                    method, data = "POST", {n: v for n, v, _ in decision["inputs"]}
                    continue
                if forms and urlsplit(url).netloc in self.follow and "/interaction/" in urlsplit(url).path:
                    form = forms[0]
                    fields = {}
                    for name, value, typ in form["inputs"]:
                        if name == "login":
                            value = self.login
                        elif typ == "password":
                            value = "any-password"
                        fields[name] = value
                    url = urljoin(url, form["action"])
                    method, data = "POST", fields
                    continue
            return BrowserResult(None, resp, visited, list(self.decision_pages))
        raise AssertionError(f"too many steps: {visited}")


def decision_form(page: str, decision: str) -> dict | None:
    """The form of our consent / device approval page that answers `decision`."""
    for f in parse_forms(page):
        if f["method"] == "post" and f["action"].endswith("/consent") and ("decision", decision) in [(n, v) for n, v, _ in f["inputs"]]:
            return f
    return None


def register_client(http: httpx.Client, issuer: str, **meta) -> dict:
    """POST /register (RFC 7591); returns the registration response."""
    body = {"client_name": "pytest client", "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}
    body.update(meta)
    r = http.post(f"{issuer}/register", json=body)
    assert r.status_code == 201, f"registration failed: {r.status_code} {r.text}"
    return r.json()
