"""The OAuth side of the MCP SDK client, shared by the suites here: token
storage in memory and a browser that walks the authorization URL through
our /authorize, the GitHub stand-in, /callback and the consent page."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from mcp.client.auth import AuthorizationCodeResult
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """The user agent: follows the authorization URL through our /authorize,
    the GitHub stand-in and our /callback until the redirect reaches the
    client's redirect URI (which nothing listens on), and keeps the code."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.authorization_url: str | None = None
        self.hops: list[tuple[int, str]] = []
        self.result: AuthorizationCodeResult | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_url = authorization_url
        url = authorization_url
        async with httpx.AsyncClient(follow_redirects=False, timeout=30) as c:
            for _ in range(10):
                r = await c.get(url)
                self.hops.append((r.status_code, url))
                consent = re.search(r'<form method=post action="([^"]+/consent)">(.*?)</form>', r.text) if r.status_code == 200 else None
                if consent and 'value="approve"' in consent.group(2):
                    # the consent page for a self-registered client (issue 13 item 8): the person approves
                    fields = dict(re.findall(r'name=(\w+) value="([^"]*)"', consent.group(2)))
                    r = await c.post(html.unescape(consent.group(1)), data=fields)
                    self.hops.append((r.status_code, consent.group(1)))
                loc = r.headers.get("location")
                assert r.status_code in (302, 303, 307), f"GET {url} answered {r.status_code}: {r.text[:2000]}"
                assert loc, f"GET {url} redirected without Location"
                url = urljoin(url, loc)
                if url.startswith(self.redirect_uri):
                    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                    assert "code" in q, f"authorization failed: {q}"
                    self.result = AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))
                    return
        raise AssertionError(f"too many redirects: {self.hops}")

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
