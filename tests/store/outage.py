"""A database outage a test can cause: a TCP relay in front of the real Postgres that the test
cuts (every relayed connection dropped, new ones refused, as when the server stops) and
restores on the same port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

RELAY_CHUNK_BYTES = 65536


class Relay:
    """Relays ``127.0.0.1:<port>`` to the server of a database URL."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self._target = (parsed.host or "127.0.0.1", parsed.port or 5432)
        self._url = parsed
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The database URL, through the relay."""
        return self._url.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Drop every relayed connection and refuse new ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while chunk := await source.read(RELAY_CHUNK_BYTES):
                    sink.write(chunk)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}


@asynccontextmanager
async def relayed(url: str) -> AsyncIterator[Relay]:
    relay = Relay(url)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.cut()
