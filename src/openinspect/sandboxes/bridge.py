"""The control plane's end of the sandbox bridge: authenticate runtimes, route their messages.

Mounting (in the web layer, which this module does not import)::

    async def sandbox_bridge(websocket: WebSocket) -> None:
        await hub.handle(websocket, websocket.headers)  # the hub accepts, not the route

    WebSocketRoute("/sandbox/bridge", sandbox_bridge)  # served on Settings().bridge_socket

The hub authenticates the handshake before accepting it: an unknown sandbox id, a wrong token or
a sandbox already marked lost is refused with HTTP 403 and never upgraded, and the runtime exits
for good. An accepted connection is then held to everything :mod:`.connection` checks (one at a
time, our ``hello`` first, validated and paced messages). The wire format and its limits are
documented in :mod:`openinspect.runtime.protocol`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from openinspect.runtime.protocol import CLOSE_GONE, CLOSE_UNAUTHORIZED, SANDBOX_ID_HEADER
from openinspect.secrets.redact import EMPTY, Redactor

from .connection import DEFAULT_HEARTBEAT_TIMEOUT_S, ExecResult, SandboxConnection
from .pacing import BridgeLimits
from .socket import BridgeSocket, close_quietly

__all__ = ["BridgeHub", "BridgeSocket", "ExecResult", "SandboxConnection"]

_BEARER = "bearer"
_UNKNOWN_TOKEN_HASH = hashlib.sha256(b"").digest()


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class BridgeHub:
    """Every registered sandbox's :class:`SandboxConnection`, by sandbox id.

    Only the SHA-256 of each token is kept. One hub serves the whole process; the session engine
    registers a sandbox before its provider starts it and unregisters it when it is destroyed.
    """

    def __init__(
        self,
        *,
        heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S,
        limits: BridgeLimits | None = None,
    ) -> None:
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._limits = limits or BridgeLimits()
        self._connections: dict[str, SandboxConnection] = {}

    def register(
        self, sandbox_id: str, token: str, *, redactor: Redactor = EMPTY
    ) -> SandboxConnection:
        """Expect a runtime for ``sandbox_id`` authenticating with ``token``; everything it
        sends is redacted with ``redactor`` (the secret values the box is given).

        Registering an id again replaces the old connection, which becomes lost.
        """
        previous = self._connections.get(sandbox_id)
        if previous is not None:
            previous.mark_lost("replaced by a new registration")
        connection = SandboxConnection(
            sandbox_id,
            _token_hash(token),
            heartbeat_timeout_s=self._heartbeat_timeout_s,
            limits=self._limits,
            redactor=redactor,
        )
        self._connections[sandbox_id] = connection
        return connection

    def unregister(self, sandbox_id: str) -> None:
        """Forget a sandbox; its connection becomes lost and its runtime is disconnected."""
        connection = self._connections.pop(sandbox_id, None)
        if connection is not None:
            connection.mark_lost("unregistered")

    def get(self, sandbox_id: str) -> SandboxConnection | None:
        """The connection of a registered sandbox."""
        return self._connections.get(sandbox_id)

    def identify(self, token: str) -> str | None:
        """The id of the registered, not lost sandbox whose token this is (used by the git
        proxy, which gets the token from the box's forwarder but no sandbox id)."""
        digest = _token_hash(token)
        found: str | None = None
        for sandbox_id, connection in list(self._connections.items()):
            # Every entry is compared, so the time taken does not tell which one matched.
            if hmac.compare_digest(digest, connection.token_hash) and connection.status != "lost":
                found = sandbox_id
        return found

    async def close(self) -> None:
        """Unregister every sandbox (on server shutdown)."""
        for sandbox_id in list(self._connections):
            self.unregister(sandbox_id)

    async def handle(self, socket: BridgeSocket, headers: Mapping[str, str]) -> None:
        """Authenticate, accept and serve one runtime WebSocket until it disconnects.

        ``socket`` must not be accepted yet; ``headers`` are the handshake's (any case). A
        refused handshake is closed before accepting (HTTP 403). A second connection while one of
        the same sandbox is open is closed with ``CLOSE_BUSY``; calls waiting for an answer stay
        pending across a reconnect.
        """
        lowered = {key.lower(): value for key, value in headers.items()}
        sandbox_id = lowered.get(SANDBOX_ID_HEADER.lower(), "")
        scheme, _, token = lowered.get("authorization", "").partition(" ")
        connection = self._connections.get(sandbox_id)
        expected = connection.token_hash if connection is not None else _UNKNOWN_TOKEN_HASH
        # Compare even for an unknown id, so timing does not tell which ids exist.
        token_ok = hmac.compare_digest(_token_hash(token.strip()), expected)
        if connection is None or not token_ok or scheme.lower() != _BEARER:
            await close_quietly(socket, CLOSE_UNAUTHORIZED, "unknown sandbox or invalid token")
            return
        if connection.status == "lost":
            await close_quietly(socket, CLOSE_GONE, f"sandbox was lost: {connection.lost_reason}")
            return
        await socket.accept()
        await connection.serve(socket)
