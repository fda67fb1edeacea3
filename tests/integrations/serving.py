"""The real API served on loopback by uvicorn in this process, on a test's control plane: for
the integration tests whose fakes (Slack, Linear, GitHub) deliver webhooks over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from openinspect.api.app import create_app
from openinspect.controlplane import ControlPlane


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def served(plane: ControlPlane, port: int) -> AsyncIterator[str]:
    """The app on ``plane`` at ``http://127.0.0.1:<port>`` until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(plane.settings, plane),
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
