"""The control plane with its sandbox bridge listening on the Unix socket, in this
process: what in-process session tests need for real sandboxes to dial in (or in-process ones:
:mod:`openinspect.testing.inprocess`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from openinspect.api.app import create_bridge_app
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.sandboxes.registry import wrap_provider
from openinspect.settings import Settings
from openinspect.testing.inprocess import InProcessProvider


@contextlib.asynccontextmanager
async def bridged_plane(
    settings: Settings, *, git_proxy: bool = False, in_process: bool = False
) -> AsyncIterator[ControlPlane]:
    """``git_proxy``: the socket also serves the git proxy, so prompts can push. ``in_process``:
    sessions boot the real runtime as a task in this process instead of the configured backend's
    box (for tests that make no containment claim)."""
    boxes = InProcessProvider() if in_process else None
    provider = wrap_provider(boxes, settings) if boxes is not None else None
    async with open_control_plane(settings, provider=provider) as opened:
        settings.bridge_socket.parent.mkdir(parents=True, exist_ok=True)
        server = uvicorn.Server(
            uvicorn.Config(
                create_bridge_app(
                    opened.hub, opened.git_authority if git_proxy else None, opened.egress
                ),
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
            if boxes is not None:
                await boxes.close()
            server.should_exit = True
            await task
