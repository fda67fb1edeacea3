"""Socket Mode: the WebSocket ``apps.connections.open`` hands out, as Slack runs it.

A ticket in the URL is good for one connection. On connect the fake sends ``hello``; events and
interactions then go out as envelopes and the app acks each with ``{"envelope_id": …}``. The
delivery worker (another thread) sends through :meth:`SocketHub.send`, which waits for the ack.
``disconnect`` sends ``{"type":"disconnect"}``, lets the client open its next connection (as
slack_sdk does on that message) and closes the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from starlette.websockets import WebSocket

from openinspect.testing.slack.state import SlackState

MAX_FRAME_CHARS = 64 * 1024
"""Frames from the app larger than this are ignored (an ack is a few dozen bytes)."""
SEND_TIMEOUT_S = 5.0
DISCONNECT_GRACE_S = 2.0
"""How long an old connection stays open after ``disconnect`` while the client reconnects."""
SendResult = Literal["acked", "timeout", "closed"]


@dataclass(eq=False)
class _Conn:
    ws: WebSocket
    loop: asyncio.AbstractEventLoop
    number: int
    open: bool = True


class SocketHub:
    def __init__(self, state: SlackState) -> None:
        self.state = state
        self._cond = threading.Condition()
        self._tickets: set[str] = set()
        self._conns: list[_Conn] = []
        self._acks: dict[str, dict[str, Any] | None] = {}
        self._waiting: set[str] = set()
        self._frames: list[dict[str, Any]] = []
        self.connects = 0
        """Connections accepted so far (a reconnect makes it grow)."""

    # ------------------------------------------------------------------ tickets

    def issue_ticket(self) -> str:
        ticket = secrets.token_urlsafe(24)
        with self._cond:
            self._tickets.add(ticket)
        return ticket

    def _take_ticket(self, ticket: str | None) -> bool:
        with self._cond:
            if ticket is None or ticket not in self._tickets:
                return False
            self._tickets.discard(ticket)
            return True

    # ------------------------------------------------------------------ the endpoint

    async def endpoint(self, ws: WebSocket) -> None:
        if not self._take_ticket(ws.query_params.get("ticket")):
            await ws.close(code=1008)  # before accept: the handshake is refused (HTTP 403)
            return
        await ws.accept()
        with self._cond:
            self.connects += 1
            conn = _Conn(ws=ws, loop=asyncio.get_running_loop(), number=self.connects)
            count = len(self._conns) + 1
        hello = {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": "fake-slack",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.state.identity.app_id},
        }
        await ws.send_text(json.dumps(hello))
        with self._cond:
            self._conns.append(conn)
            self._cond.notify_all()
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    raw = message.get("bytes") or b""
                    text = raw.decode("utf-8", errors="replace")
                self._on_frame(conn, text)
        finally:
            with self._cond:
                conn.open = False
                if conn in self._conns:
                    self._conns.remove(conn)
                self._cond.notify_all()

    def _on_frame(self, conn: _Conn, text: str) -> None:
        if len(text) > MAX_FRAME_CHARS:
            return
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        envelope_id = frame.get("envelope_id")
        with self._cond:
            self._frames.append(frame)
            if isinstance(envelope_id, str) and envelope_id in self._waiting:
                payload = frame.get("payload")
                self._acks[envelope_id] = payload if isinstance(payload, dict) else None
                self._cond.notify_all()

    # ------------------------------------------------------------------ used by the fake

    @property
    def connected(self) -> bool:
        with self._cond:
            return bool(self._conns)

    @property
    def open_connections(self) -> int:
        with self._cond:
            return len(self._conns)

    def wait_connected(self, timeout_s: float, *, connects: int | None = None) -> None:
        """Until a connection is open (and at least ``connects`` were accepted in all)."""

        def ready() -> bool:
            return bool(self._conns) and (connects is None or self.connects >= connects)

        with self._cond:
            if not self._cond.wait_for(ready, timeout=timeout_s):
                raise TimeoutError(
                    f"no Socket Mode connection within {timeout_s}s "
                    f"(open: {len(self._conns)}, accepted so far: {self.connects}, "
                    f"wanted: {connects or 1})"
                )

    def send(self, envelope: dict[str, Any], ack_timeout_s: float) -> SendResult:
        """Send on the newest connection and wait for the app's ack."""
        envelope_id = str(envelope["envelope_id"])
        with self._cond:
            if not self._conns:
                return "closed"
            conn = self._conns[-1]
            self._waiting.add(envelope_id)
        try:
            future = asyncio.run_coroutine_threadsafe(
                conn.ws.send_text(json.dumps(envelope)), conn.loop
            )
            try:
                future.result(SEND_TIMEOUT_S)
            except Exception:  # a closing socket, or no answer in time
                return "closed"
            with self._cond:
                acked = self._cond.wait_for(lambda: envelope_id in self._acks, ack_timeout_s)
                return "acked" if acked else "timeout"
        finally:
            with self._cond:
                self._waiting.discard(envelope_id)
                self._acks.pop(envelope_id, None)

    def disconnect(self, reason: str) -> int:
        """Send ``disconnect`` on every open connection and close each once the client has
        opened a newer one (or after a grace period). Returns how many were told."""
        with self._cond:
            conns = list(self._conns)
        frame = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        )
        for conn in conns:
            future = asyncio.run_coroutine_threadsafe(self._disconnect(conn, frame), conn.loop)
            del future  # runs on the server's loop; the close follows later
        return len(conns)

    async def _disconnect(self, conn: _Conn, frame: str) -> None:
        try:
            await conn.ws.send_text(frame)
        except Exception:
            return
        deadline = time.monotonic() + DISCONNECT_GRACE_S
        while time.monotonic() < deadline:
            with self._cond:
                if any(c.number > conn.number for c in self._conns) or not conn.open:
                    break
            await asyncio.sleep(0.02)
        if conn.open:
            with contextlib.suppress(Exception):  # the client closed it first
                await conn.ws.close(code=1001)

    def close_all(self) -> None:
        """Close every connection (the fake is stopping)."""
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            future = asyncio.run_coroutine_threadsafe(conn.ws.close(code=1001), conn.loop)
            with contextlib.suppress(Exception):  # closed already
                future.result(SEND_TIMEOUT_S)

    def frames(self) -> list[dict[str, Any]]:
        """Every JSON frame the app sent, over all connections so far (acks mostly)."""
        with self._cond:
            return list(self._frames)
