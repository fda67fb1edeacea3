"""A listener on the box's loopback that serves each connection on a task of its own, and cuts
them all when it closes: what the git and egress forwarders share (:mod:`.gitforward`,
:mod:`.egressforward`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

LOOPBACK = "127.0.0.1"
_STREAM_LIMIT = 64 * 1024  # asyncio's own default


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class LoopbackListener:
    """Listens on ``host:port`` (port 0 picks a free one); ``serve`` handles one connection.
    ``limit`` is the stream reader's buffer limit (the longest line ``readuntil`` takes)."""

    label = "loopback listener"
    log = logging.getLogger("openinspect.runtime.loopback")

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        limit: int = _STREAM_LIMIT,
        inherited_fd: int | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._limit = limit
        self._inherited_fd = inherited_fd
        """A listening socket handed over by a hibernated runtime (:mod:`.hibernate`)."""
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; returns the port. Raises ``OSError`` when it cannot bind."""
        if self._inherited_fd is not None:
            sock = socket.socket(fileno=self._inherited_fd)
            sock.set_inheritable(False)
            self._server = await asyncio.start_server(self._accept, sock=sock, limit=self._limit)
        else:
            self._server = await asyncio.start_server(
                self._accept, self._host, self._port, limit=self._limit
            )
        self._port = int(self._server.sockets[0].getsockname()[1])
        self.log.info("%s on %s:%d", self.label, self._host, self._port)
        return self._port

    @property
    def port(self) -> int:
        return self._port

    @property
    def fileno(self) -> int | None:
        """The listening socket's descriptor, once listening."""
        return self._server.sockets[0].fileno() if self._server is not None else None

    @property
    def busy(self) -> bool:
        """Whether a connection is being served."""
        return bool(self._connections)

    async def close(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self.serve(reader, writer)
        except Exception:
            self.log.exception("%s: a connection failed", self.label)
        finally:
            self._connections.discard(task)
            await close_writer(writer)
