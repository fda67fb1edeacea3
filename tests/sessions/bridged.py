"""The control plane's runtime with its sandbox bridge listening on the Unix socket, in this
process: what in-process session tests need for real sandboxes to dial in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from openinspect.api.app import Runtime, create_bridge_app, open_runtime
from openinspect.settings import Settings


@contextlib.asynccontextmanager
async def bridged_runtime(settings: Settings, *, git_proxy: bool = False) -> AsyncIterator[Runtime]:
    """``git_proxy``: the socket also serves the git proxy, so prompts can push."""
    async with open_runtime(settings) as opened:
        settings.bridge_socket.parent.mkdir(parents=True, exist_ok=True)
        server = uvicorn.Server(
            uvicorn.Config(
                create_bridge_app(opened.hub, opened.git_authority if git_proxy else None),
                uds=str(settings.bridge_socket),
                lifespan="off",
                log_level="warning",
            )
        )
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield opened
        finally:
            server.should_exit = True
            await task
