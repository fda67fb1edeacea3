"""The bridge client: dials the control plane, keeps dialling, never loses a final answer.

Outgoing messages go through an :class:`Outbox` that outlives connections: a message leaves it
only once a connection accepted it, so results produced while disconnected are delivered after
the reconnect. Output chunks and log lines may be dropped when the outbox is full and no
connection drains it; results, errors and boot events never are.

No message leaves bigger than :data:`~.protocol.MAX_FRAME_BYTES` (the control plane would close
the connection, and the reconnect would re-send it forever): an oversize answer becomes a
``too_large`` error, anything else oversize is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .address import BridgeAddress
from .protocol import (
    MAX_FRAME_BYTES,
    PERMANENT_CLOSE_CODES,
    PERMANENT_HTTP_STATUSES,
    SANDBOX_ID_HEADER,
    HeartbeatMessage,
    HelloMessage,
)

logger = logging.getLogger("openinspect.runtime.bridge")

OUTBOX_LIMIT_CHARS = 8 * 1024 * 1024
"""Droppable messages wait (connected) or are dropped (disconnected) past this much backlog."""
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0
STABLE_CONNECTION_S = 5.0
"""A connection that lasted this long resets the reconnect backoff."""
OPEN_TIMEOUT_S = 10.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def dial(
    address: BridgeAddress,
    uri: str,
    *,
    headers: Mapping[str, str],
    tls: ssl.SSLContext | None,
    max_size: int,
    compression: str | None,
    ping_interval: float | None = 20.0,
) -> connect:
    """A WebSocket connection attempt (an async context manager) to ``uri`` where the bridge
    at ``address`` listens: over its Unix socket, or TCP (TLS for ``wss``, the system's CAs when
    ``tls`` is None). Never through an environment proxy: the bridge is dialled directly."""
    if address.scheme == "unix":
        return unix_connect(
            address.path,
            uri=uri,
            additional_headers=headers,
            compression=compression,
            max_size=max_size,
            open_timeout=OPEN_TIMEOUT_S,
            proxy=None,
            ping_interval=ping_interval,
        )
    context = (tls or ssl.create_default_context()) if address.scheme == "wss" else None
    return connect(
        uri,
        additional_headers=headers,
        compression=compression,
        max_size=max_size,
        open_timeout=OPEN_TIMEOUT_S,
        proxy=None,
        ping_interval=ping_interval,
        ssl=context,
    )


class BridgeRejected(Exception):
    """The control plane refused this sandbox for good (bad token, lost, replaced)."""


class Outbox:
    """Serialized messages waiting to be sent, kept across reconnects."""

    def __init__(self, limit_chars: int = OUTBOX_LIMIT_CHARS) -> None:
        self._items: collections.deque[str] = collections.deque()
        self._size = 0
        self._limit = limit_chars
        self._connected = False
        self._cond = asyncio.Condition()

    async def put(self, message: Mapping[str, object], *, droppable: bool = False) -> bool:
        """Queue ``message``; returns False if it was droppable and had to be dropped.

        A droppable message waits for room while connected (backpressure on a chatty command)
        and is dropped when there is no room and no connection.
        """
        text = _encode_within_frame(message)
        if text is None:
            return False
        async with self._cond:
            while droppable and self._items and self._size + len(text) > self._limit:
                if not self._connected:
                    return False
                await self._cond.wait()
            self._items.append(text)
            self._size += len(text)
            self._cond.notify_all()
        return True

    async def peek(self) -> str:
        """The oldest message, waiting for one if the outbox is empty."""
        async with self._cond:
            await self._cond.wait_for(lambda: bool(self._items))
            return self._items[0]

    async def pop(self) -> None:
        """Remove the oldest message once it was sent."""
        async with self._cond:
            self._size -= len(self._items.popleft())
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        """Whether nothing but heartbeats waits to be sent (a heartbeat may be lost)."""
        return all(item == _HEARTBEAT_TEXT for item in self._items)

    async def set_connected(self, connected: bool) -> None:
        """Record whether a connection drains the outbox (waiting droppables re-check)."""
        async with self._cond:
            self._connected = connected
            self._cond.notify_all()


def _encode(message: Mapping[str, object]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


_HEARTBEAT_TEXT = _encode({"type": "heartbeat"})


def _frame_bytes(text: str) -> int:
    # UTF-8 takes at most 4 bytes a character: only a long text needs measuring.
    return len(text) if len(text) * 4 <= MAX_FRAME_BYTES else len(text.encode())


def _encode_within_frame(message: Mapping[str, object]) -> str | None:
    """``message`` as sent, or its ``too_large`` replacement, or None to drop it."""
    text = _encode(message)
    size = _frame_bytes(text)
    if size <= MAX_FRAME_BYTES:
        return text
    rid = message.get("id")
    if isinstance(rid, str) and ("result" in message or "error" in message):
        logger.warning("answer to %s is %d bytes; sending too_large instead", rid, size)
        return _encode(
            {
                "id": rid,
                "error": {
                    "code": "too_large",
                    "message": f"the result is {size} bytes; the bridge carries at most "
                    f"{MAX_FRAME_BYTES} (ask for less: a smaller window or pattern)",
                },
            }
        )
    logger.warning("dropping a %d-byte message over the %d-byte frame limit", size, MAX_FRAME_BYTES)
    return None


class BridgeClient:
    """One sandbox's connection to the control plane, re-dialled with exponential backoff.

    ``address`` is where the bridge is (a Unix socket, or ``ws``/``wss`` for a remote box;
    ``tls`` is the context of a ``wss`` one). ``hello`` builds the first message of every
    connection; ``on_message`` gets every other control-plane message except ``shutdown``,
    which ends :meth:`run`.
    """

    def __init__(
        self,
        address: BridgeAddress,
        sandbox_id: str,
        token: str,
        outbox: Outbox,
        *,
        hello: Callable[[], HelloMessage],
        on_message: Callable[[dict[str, object]], None],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._address = address
        self._tls = tls
        self._headers = {"Authorization": f"Bearer {token}", SANDBOX_ID_HEADER: sandbox_id}
        self._outbox = outbox
        self._hello = hello
        self._on_message = on_message
        self.connected = asyncio.Event()
        self.ever_connected = asyncio.Event()

    async def run(self) -> None:
        """Stay connected until a ``shutdown`` message; raises :class:`BridgeRejected`."""
        delay_s = BACKOFF_INITIAL_S
        while True:
            started = time.monotonic()
            close_code: int | None = None
            try:
                async with self._dial() as ws:
                    if await self._serve(ws):
                        return
                    close_code = ws.close_code
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in PERMANENT_HTTP_STATUSES:
                    raise BridgeRejected(
                        f"the control plane refused the bridge handshake with HTTP {status}"
                    ) from exc
                logger.warning("bridge handshake failed: %s", exc)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                logger.info("bridge unavailable (%s); retrying in %.1f s", exc, delay_s)
            finally:
                self.connected.clear()
                await self._outbox.set_connected(False)
            if close_code in PERMANENT_CLOSE_CODES:
                raise BridgeRejected(f"the control plane closed the bridge with code {close_code}")
            if time.monotonic() - started >= STABLE_CONNECTION_S:
                delay_s = BACKOFF_INITIAL_S
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, BACKOFF_MAX_S)

    def _dial(self) -> connect:
        """A connection attempt to the bridge (an async context manager)."""
        local = self._address.scheme == "unix"
        return dial(
            self._address,
            self._address.ws_uri,
            headers=self._headers,
            tls=self._tls,
            max_size=MAX_MESSAGE_BYTES,
            # a local socket: deflate would only cost CPU
            compression=None if local else "deflate",
        )

    async def heartbeat(self, interval_s: float) -> None:
        """Send a heartbeat every ``interval_s`` while connected (not buffered while not)."""
        beat: HeartbeatMessage = {"type": "heartbeat"}
        while True:
            await asyncio.sleep(interval_s)
            if self.connected.is_set():
                await self._outbox.put(beat, droppable=True)

    async def _serve(self, ws: ClientConnection) -> bool:
        """Pump one connection; True when the control plane asked to shut down."""
        await ws.send(json.dumps(self._hello()))
        self.connected.set()
        self.ever_connected.set()
        await self._outbox.set_connected(True)
        logger.info("bridge connected")
        receiver = asyncio.create_task(self._receive(ws))
        sender = asyncio.create_task(self._send(ws))
        try:
            done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, sender):
                task.cancel()
            await asyncio.gather(receiver, sender, return_exceptions=True)
        for name, finished in (("receiver", receiver), ("sender", sender)):
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                logger.error("bridge %s failed", name, exc_info=exc)
        if receiver not in done or receiver.cancelled() or receiver.exception() is not None:
            return False
        return receiver.result()

    async def _receive(self, ws: ClientConnection) -> bool:
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    logger.warning("ignoring a bridge message that is not JSON: %.200r", raw)
                    continue
                if not isinstance(message, dict):
                    logger.warning("ignoring a bridge message that is not an object")
                    continue
                if message.get("type") == "shutdown":
                    return True
                if message.get("type") == "wake":  # for a hibernated runtime: we are awake
                    continue
                self._on_message(message)
        except ConnectionClosed:
            pass
        return False

    async def _send(self, ws: ClientConnection) -> None:
        try:
            while True:
                text = await self._outbox.peek()
                await ws.send(text)
                # Popped only after the connection took it: a drop mid-send keeps it queued.
                await self._outbox.pop()
        except ConnectionClosed:
            return
