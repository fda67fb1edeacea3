"""A small async client of the public API (REST + session WebSocket), used by the CLI.

It imports httpx (and websockets when a session is watched) and nothing of the server: every
client command's start-up time is the interpreter's plus these.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openinspect.cli.credentials import Credentials
from openinspect.cli.local import ADMIN_TOKEN_FILE, DEFAULT_PORT, SERVER_FILE, home_dir
from openinspect.errors import AuthError, ConfigError, OpenInspectError

# httpx imports its own command-line tool (pygments, rich.syntax, rich.progress: a quarter of a
# second) whenever click and rich are installed, as they are here; nothing uses it. A None entry
# makes that optional import fail, and httpx carries on without it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
import httpx  # noqa: E402

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

HTTP_TIMEOUT_S = 60.0


_SIGN_IN_AGAIN_HINT = (
    "Sign in again with `openinspect login`, or mint a token with `openinspect tokens create`"
)


class ApiError(OpenInspectError):
    """An error envelope returned by the server."""

    def __init__(self, status: int, code: str, message: str, hint: str | None) -> None:
        super().__init__(message, hint=hint)
        self.http_status = status
        self.api_code = code


@dataclass(frozen=True)
class Target:
    url: str
    token: str


def discover(home: Path | None = None) -> Target:
    """Where the server is and which token to use: OPENINSPECT_URL / OPENINSPECT_TOKEN, else
    the server and token of ``openinspect login`` (``credentials.json``), else the files the
    server writes in OPENINSPECT_HOME on this machine."""
    home = home or home_dir()
    credentials = Credentials.load(home)
    url = os.environ.get("OPENINSPECT_URL") or credentials.current
    if not url:
        info = home / SERVER_FILE
        url = json.loads(info.read_text())["url"] if info.exists() else None
    url = url or f"http://127.0.0.1:{DEFAULT_PORT}"
    token = os.environ.get("OPENINSPECT_TOKEN") or credentials.token_for(url)
    token_file = home / ADMIN_TOKEN_FILE
    if not token and token_file.exists():
        token = token_file.read_text().strip()
    if not token:
        raise ConfigError(
            "No API token found",
            hint=f"Run `openinspect login`, set OPENINSPECT_TOKEN, or start `openinspect serve` "
            f"once so that {Path(token_file)} exists",
        )
    return Target(url.rstrip("/"), token)


def _tls_for(url: str) -> ssl.SSLContext | bool:
    """TLS settings for a server URL. Loading the CA bundle costs a fifth of a second of every
    start, and a plain-http server (the local default) never uses it: for one, a context that
    trusts no CA at all, so that any https it could meet fails instead of being trusted."""
    if url.startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


class Client:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._http = httpx.AsyncClient(
            base_url=target.url,
            timeout=HTTP_TIMEOUT_S,
            headers={"Authorization": f"Bearer {target.token}"},
            verify=_tls_for(target.url),
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ConfigError(
                f"Cannot reach the server at {self.target.url}",
                hint="Start it with `openinspect serve` or set OPENINSPECT_URL",
            ) from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": response.text[:500], "hint": None}
            if response.status_code == 401:
                raise AuthError(error["message"], hint=_SIGN_IN_AGAIN_HINT)
            raise ApiError(response.status_code, error["code"], error["message"], error.get("hint"))
        return response.json() if response.content else None

    async def create_session(self, **body: Any) -> dict[str, Any]:
        """Create a session; it records the CLI as its origin."""
        body.setdefault("origin", "cli")
        result: dict[str, Any] = await self.request("POST", "/api/sessions", json=body)
        return result

    async def post_prompt(self, session_id: str, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "POST", f"/api/sessions/{session_id}/prompts", json=body
        )
        return result

    async def events(self, session_id: str, *, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Every durable event from ``after_seq`` on, page by page."""
        while True:
            page = await self.request(
                "GET",
                f"/api/sessions/{session_id}/events",
                params={"after_seq": after_seq, "limit": 500},
            )
            for event in page["events"]:
                after_seq = event["seq"]
                yield event
            if not page["has_more"]:
                return

    async def connect(self, session_id: str, since_seq: int | None = None) -> ClientConnection:
        """An authenticated, subscribed session WebSocket (the ``subscribed`` reply is left
        for the caller to read)."""
        import websockets  # only the commands that watch a session pay for it

        minted = await self.request("POST", f"/api/sessions/{session_id}/ws-token")
        ws = await websockets.connect(minted["url"], max_size=16 * 1024 * 1024)
        await ws.send(
            json.dumps({"type": "subscribe", "token": minted["token"], "since_seq": since_seq})
        )
        return ws
