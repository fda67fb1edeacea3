"""The WebSocket the bridge hub talks to, as a Protocol (the web framework is not imported here)."""

from __future__ import annotations

import contextlib
from typing import Protocol

_CLOSE_REASON_CHARS = 120  # a close frame's reason must fit in 123 bytes


class BridgeSocket(Protocol):
    """The WebSocket the hub talks to (Starlette's ``WebSocket`` satisfies it)."""

    async def accept(self) -> None:
        """Complete the handshake (the hub calls it once the runtime is authenticated)."""
        ...

    async def receive_text(self) -> str:
        """The next text message; raises (any exception) once the peer is gone."""
        ...

    async def send_text(self, data: str) -> None:
        """Send one text message; raises (any exception) if the socket is closed."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket with a WebSocket close code; before ``accept`` this rejects the
        handshake (an HTTP 403)."""
        ...


async def close_quietly(socket: BridgeSocket, code: int, reason: str) -> None:
    """Close ``socket`` with ``code``, ignoring a socket that is already gone."""
    with contextlib.suppress(Exception):  # already closed: nothing left to tell it
        await socket.close(code, reason[:_CLOSE_REASON_CHARS])
