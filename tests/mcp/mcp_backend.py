"""An MCP server built with the official SDK (`MCPServer`, formerly FastMCP),
streamable HTTP at /mcp, with one tool. Every request's headers are recorded
and served (outside MCP) at GET /_seen, so a test can see what the proxy
forwarded.

Usage: python mcp_backend.py PORT
"""

from __future__ import annotations

import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("portcullis-test-backend")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Returns its argument."""
    return text


inner = server.streamable_http_app(streamable_http_path="/mcp")
seen: list[dict] = []


async def app(scope, receive, send):
    if scope["type"] == "http":
        headers: dict[str, list[str]] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        if scope["path"] == "/_seen":
            body = json.dumps(seen).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        seen.append({"method": scope["method"], "path": scope["path"], "headers": headers})
    await inner(scope, receive, send)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
