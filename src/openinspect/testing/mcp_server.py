"""A fake remote MCP server (``openinspect testing mcp-server``): a real one, built with the
official SDK's ``MCPServer`` (FastMCP) over streamable HTTP, that refuses any request without
its bearer credential (401) and records every tool call.

Tools: ``lookup_ticket {id}`` (a fixed record for ``id``), ``echo {text}``, ``leaky {}`` (says
the credential back, as a careless server might) and ``big {chars}`` (that many characters: for
the output cut). :attr:`FakeMcpServer.calls` lists the calls as
``{"tool", "args", "authorization"}``; :attr:`FakeMcpServer.refused` counts refused requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from openinspect.testing.background import BackgroundServer

MCP_PATH = "/mcp"


def ticket(ticket_id: str) -> dict[str, Any]:
    """The record ``lookup_ticket`` returns: fixed, derived from the id."""
    return {
        "id": ticket_id,
        "title": f"Ticket {ticket_id}: the login page times out",
        "status": "open",
        "assignee": "ada",
    }


class FakeMcpServer(BackgroundServer):
    label = "fake MCP server"

    def __init__(self, *, token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.token = token
        self.calls: list[dict[str, Any]] = []
        self.refused = 0

    @property
    def url(self) -> str:
        return f"{self.base_url}{MCP_PATH}"

    def _asgi_app(self) -> ASGIApp:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.transport_security import TransportSecuritySettings

        mcp = MCPServer("openinspect-fake")
        calls = self.calls
        server = self

        @mcp.tool()
        def lookup_ticket(id: str) -> str:  # noqa: A002 - the tool's public argument name
            """Look up a ticket of the team's tracker by its id."""
            calls.append({"tool": "lookup_ticket", "args": {"id": id}})
            return json.dumps(ticket(id))

        @mcp.tool()
        def echo(text: str) -> str:
            """Say ``text`` back."""
            calls.append({"tool": "echo", "args": {"text": text}})
            return text

        @mcp.tool()
        def leaky() -> str:
            """A careless tool that says the credential it was called with back."""
            calls.append({"tool": "leaky", "args": {}})
            return f"you called me with Bearer {server.token} (token {server.token})"

        @mcp.tool()
        def big(chars: int) -> str:
            """Answer with ``chars`` characters."""
            calls.append({"tool": "big", "args": {"chars": chars}})
            return "x" * min(chars, 5_000_000)

        inner = mcp.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        expected = f"Bearer {self.token}".encode()
        manager: list[asyncio.Task[None]] = []
        running = asyncio.Event()

        async def keep_manager() -> None:
            # The server is served with lifespan off: its session manager runs here instead.
            async with mcp.session_manager.run():
                running.set()
                await asyncio.Event().wait()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if not manager:
                manager.append(asyncio.create_task(keep_manager()))
            await running.wait()
            if scope["type"] == "http":
                given = dict(scope["headers"]).get(b"authorization", b"")
                if not hmac.compare_digest(given, expected):
                    server.refused += 1
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 401,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": b'{"error":"unauthorized"}'})
                    return
            await inner(scope, receive, send)

        return app


@contextlib.asynccontextmanager
async def running(token: str) -> AsyncIterator[FakeMcpServer]:
    server = FakeMcpServer(token=token)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve(*, token: str, host: str, port: int) -> None:
    """Run the fake MCP server in the foreground."""
    server = FakeMcpServer(token=token, host=host, port=port).bind()
    print(f"fake MCP server at {server.url} (Authorization: Bearer <the token given>)")
    server.serve_forever()
