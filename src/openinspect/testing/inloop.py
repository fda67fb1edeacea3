"""Serving an ASGI app on the test's own event loop (a bridge the runtime dials, in-process).

Unlike :mod:`.background` (a thread, for fakes that sync tests call too), the server shares the
test's loop, so the app's objects (a ``BridgeHub``) are used from one loop only. Signal handlers
stay pytest's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator

import uvicorn

START_TIMEOUT_S = 10.0


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serving(config: uvicorn.Config) -> AsyncIterator[QuietServer]:
    """Serve ``config`` on this loop until the block ends; yields once it accepts connections
    (``server.servers[0].sockets`` tells a TCP port picked with ``port=0``)."""
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the server stopped before it started")
                await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
