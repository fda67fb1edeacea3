"""The public API and its session WebSocket, driven in this process over ASGI: no port, no server.

:class:`InApp` puts the app (``api.app.create_app``) on a :class:`ControlPlane` the test opened
and talks to it through httpx's ASGI transport, and to the session WebSocket through
``httpx-ws``'s ASGI WebSocket transport: the real routes, dependencies, error envelope and
socket handler run on the test's own event loop, so a test can look at the control plane (the
store, the manager, the event log) between two frames. What this leaves out is the HTTP server
itself (uvicorn's frame size limit, its UTF-8 checks, TCP back-pressure): tests of those keep a
real server (``tests/security/conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from openinspect.api.app import create_app
from openinspect.controlplane import ControlPlane
from openinspect.domain.models import User

BASE_URL = "http://openinspect.test"
RECV_TIMEOUT_S = 10.0
BROADCASTS = ("event", "presence")
"""Frames the server pushes on its own, as opposed to answers to what the client sent."""


class Socket:
    """A client of the session WebSocket, speaking the protocol's JSON frames."""

    def __init__(self, ws: AsyncWebSocketSession) -> None:
        self.ws = ws
        self._pending: deque[dict[str, Any]] = deque()
        self.batches = 0
        """How many ``batch`` messages came (their frames are returned one by one)."""

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(message))

    async def send_text(self, text: str) -> None:
        await self.ws.send_text(text)

    async def recv(self, timeout_s: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        """The next frame. Raises ``TimeoutError`` when none comes in time, and
        ``WebSocketDisconnect`` (with the server's close code) when the server closed."""
        if not self._pending:
            with anyio.fail_after(timeout_s):
                message: dict[str, Any] = json.loads(await self.ws.receive_text())
            if message.get("type") != "batch":
                return message
            self.batches += 1
            self._pending.extend(message["frames"])
        return self._pending.popleft()

    async def reply(self, timeout_s: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        """The next frame that is not a broadcast (an event or a presence update)."""
        return await self.until(lambda f: f["type"] not in BROADCASTS, timeout_s)

    async def until(
        self, wanted: Callable[[dict[str, Any]], bool], timeout_s: float = RECV_TIMEOUT_S
    ) -> dict[str, Any]:
        """The first frame ``wanted`` accepts; the ones before it are dropped."""
        with anyio.fail_after(timeout_s):
            while True:
                frame = await self.recv(timeout_s)
                if wanted(frame):
                    return frame

    async def close_code(self, timeout_s: float = RECV_TIMEOUT_S) -> int:
        """Read until the server closes the socket; the close code it sent."""
        try:
            with anyio.fail_after(timeout_s):
                while True:
                    await self.ws.receive_text()
        except WebSocketDisconnect as closed:
            return closed.code
        raise AssertionError("unreachable: the loop ends by the disconnect or the timeout")


@dataclass(frozen=True)
class Caller:
    """Someone signed in with an API token."""

    app: InApp
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.app.http.request(method, path, headers=headers, **kw)

    async def session(self, **body: Any) -> dict[str, Any]:
        """A new session (``POST /api/sessions``): its JSON."""
        made = await self.call("POST", "/api/sessions", json=body)
        if made.status_code != 201:
            raise AssertionError(f"session create answered {made.status_code}: {made.text}")
        session: dict[str, Any] = made.json()["session"]
        return session

    async def ws_token(self, session_id: str) -> str:
        minted = await self.call("POST", f"/api/sessions/{session_id}/ws-token")
        if minted.status_code != 200:
            raise AssertionError(f"ws-token answered {minted.status_code}: {minted.text}")
        token: str = minted.json()["token"]
        return token

    @asynccontextmanager
    async def socket(
        self,
        session_id: str,
        *,
        since_seq: int | None = None,
        subscribe: bool = True,
        batch: bool = False,
    ) -> AsyncIterator[tuple[Socket, dict[str, Any]]]:
        """The session's WebSocket and, when ``subscribe``, the ``subscribed`` frame it
        answered (an empty dict when not subscribed). ``batch``: subscribe as a client that
        reads ``batch`` messages (the socket hands their frames out one by one)."""
        async with self.app.connect(session_id) as ws:
            if not subscribe:
                yield ws, {}
                return
            token = await self.ws_token(session_id)
            message: dict[str, Any] = {"type": "subscribe", "token": token}
            if since_seq is not None:
                message["since_seq"] = since_seq
            if batch:
                message["batch"] = True
            await ws.send(message)
            first = await ws.reply()
            if first["type"] != "subscribed":
                raise AssertionError(f"the subscribe was answered with {first}")
            yield ws, first


class InApp:
    """The API on one control plane, in this process (see the module docstring)."""

    def __init__(self, plane: ControlPlane, http: httpx.AsyncClient) -> None:
        self.plane = plane
        self.http = http

    @classmethod
    @asynccontextmanager
    async def open(cls, plane: ControlPlane) -> AsyncIterator[InApp]:
        """The app on ``plane``. The WebSocket transport's task group (where each socket's
        handler runs) is entered and left by a task of its own: an async fixture sets up and
        tears down in two different tasks, and a task group must be left by the task that
        entered it."""
        transport = ASGIWebSocketTransport(app=create_app(plane.settings, plane))
        entered = asyncio.get_running_loop().create_future()
        leave = asyncio.Event()

        async def hold() -> None:
            async with transport:
                entered.set_result(None)
                await leave.wait()

        holder = asyncio.create_task(hold(), name="in-app transport")
        # Not ``async with``: the client would leave the transport itself, from this task.
        http = httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30)
        try:
            await asyncio.wait({holder, entered}, return_when=asyncio.FIRST_COMPLETED)
            if holder.done():
                await holder  # it failed to enter: raise its error
            yield cls(plane, http)
        finally:
            await http.aclose()
            leave.set()
            await holder

    def admin(self) -> Caller:
        """The admin the control plane made on its first start."""
        boot = self.plane.bootstrap
        if boot.user is None or boot.token is None:
            raise AssertionError("this control plane has no bootstrap admin")
        return Caller(self, boot.user, boot.token)

    async def member(self, name: str) -> Caller:
        """A new member with an API token."""
        users = self.plane.store.users
        user = await users.create(name=name, email=f"{name}@example.com", role="member")
        return Caller(self, user, await users.create_token(user.id, f"{name}'s token"))

    @asynccontextmanager
    async def connect(self, session_id: str) -> AsyncIterator[Socket]:
        """A raw session WebSocket, not subscribed."""
        async with aconnect_ws(
            f"{BASE_URL}/api/sessions/{session_id}/ws",
            self.http,
            keepalive_ping_interval_seconds=None,
            session_class=AsyncWebSocketSession,
        ) as ws:
            yield Socket(ws)
