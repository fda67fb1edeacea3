"""Serve the control plane: the public API on TCP and the sandbox bridge on a Unix socket, two
servers in one process on one ``ControlPlane``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass

import uvicorn

from openinspect.api.app import create_app, create_bridge_app
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.runtime.protocol import MAX_FRAME_BYTES
from openinspect.settings import Settings

SERVER_FILE = "server.json"
WS_MAX_BYTES = 2 * 1024 * 1024
GRACEFUL_S = 5  # open requests and sockets are cancelled past it, on both servers
SLOW_SHUTDOWN_S = 10  # a shutdown still going after this logs what it waits for, and again

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    url: str
    plane: ControlPlane


class _QuietServer(uvicorn.Server):
    """A second server in the same process must not take over the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(
    settings: Settings,
    *,
    on_started: Callable[[Started], Awaitable[None] | None] | None = None,
    install_signal_handlers: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until interrupted, or until ``stop`` is set (a graceful shutdown)."""
    # Bound first: with port 0 the real port is then known to everything that names this
    # server's address (the links in Slack messages, say).
    sock = _listen(settings.server.host, settings.server.port)
    port = sock.getsockname()[1]
    if port != settings.server.port:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update={"port": port})}
        )
    url = settings.server.public_url or f"http://{settings.server.host}:{port}"
    with contextlib.closing(sock):
        await _serve(settings, sock, url, on_started, install_signal_handlers, stop)


async def _name_the_waits(every_s: float = SLOW_SHUTDOWN_S) -> None:
    """Log, every ``every_s`` of a shutdown, the tasks still running and where each waits: a
    stuck shutdown names its culprit instead of only hanging."""
    me = asyncio.current_task()
    waited = 0.0
    while True:
        await asyncio.sleep(every_s)
        waited += every_s
        lines = []
        for task in asyncio.all_tasks():
            if task is me or task.done():
                continue
            frames = task.get_stack(limit=3)
            where = " < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames))
            lines.append(f"{task.get_name()}: {where or '?'}")
        log.warning(
            "shutdown still running after %.1f s; waiting for %d task(s):\n  %s",
            waited,
            len(lines),
            "\n  ".join(sorted(lines)),
        )


async def _serve(
    settings: Settings,
    sock: socket.socket,
    url: str,
    on_started: Callable[[Started], Awaitable[None] | None] | None,
    install_signal_handlers: bool,
    stop: asyncio.Event | None,
) -> None:
    watchdog: asyncio.Task[None] | None = None
    try:
        async with open_control_plane(settings) as plane:
            bridge_path = settings.bridge_socket
            bridge_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileNotFoundError):
                bridge_path.unlink()
            server_cls = uvicorn.Server if install_signal_handlers else _QuietServer
            public = server_cls(
                uvicorn.Config(
                    create_app(settings, plane),
                    log_level=settings.log_level,
                    ws_max_size=WS_MAX_BYTES,
                    ws_per_message_deflate=settings.server.ws_compression,
                    lifespan="on",
                    timeout_graceful_shutdown=GRACEFUL_S,
                )
            )
            bridge = _QuietServer(
                uvicorn.Config(
                    create_bridge_app(plane.hub, plane.git_authority, plane.egress),
                    uds=str(bridge_path),
                    log_level="warning",
                    lifespan="off",
                    ws_max_size=MAX_FRAME_BYTES,  # past it: close 1009, nothing parsed
                    ws_ping_interval=None,
                    timeout_graceful_shutdown=GRACEFUL_S,
                )
            )
            info = settings.home_dir / SERVER_FILE
            # Atomically: clients poll for this file and must never read it half-written.
            partial = info.with_name(f".{info.name}.{os.getpid()}")
            partial.write_text(json.dumps({"url": url, "pid": os.getpid()}))
            partial.replace(info)
            bridge_task = asyncio.create_task(bridge.serve())
            public_task = asyncio.create_task(public.serve(sockets=[sock]))
            warm_task: asyncio.Task[None] | None = None
            try:
                while not public.started:
                    if public_task.done():
                        await public_task
                        return
                    await asyncio.sleep(0.01)
                warm_task = asyncio.create_task(plane.warm_up(), name="warm up")
                if on_started is not None:
                    result = on_started(Started(url, plane))
                    if result is not None:
                        await result
                if stop is not None:
                    stopper = asyncio.create_task(stop.wait())
                    await asyncio.wait({public_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    stopper.cancel()
                    public.should_exit = True
                await public_task
            finally:
                public.should_exit = True
                bridge.should_exit = True
                watchdog = asyncio.create_task(_name_the_waits(), name="shutdown watchdog")
                if warm_task is not None:
                    warm_task.cancel()  # an import already running in its thread still finishes
                tasks = [t for t in (public_task, bridge_task, warm_task) if t is not None]
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(FileNotFoundError):
                    info.unlink()
    finally:
        if watchdog is not None:
            watchdog.cancel()
