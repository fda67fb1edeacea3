"""Serving a fake in the test's own process: uvicorn in a daemon thread on a pre-bound socket.

Shared by the scripted LLM server and the fake GitHub. The socket is bound before the thread
starts, so the real port (for port 0) is known at once; ``start`` returns when requests are
accepted; ``stop`` is safe to call twice. Sync and async context managers both work.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    sock.set_inheritable(True)
    return sock


def url_host(host: str) -> str:
    """The host part of a URL that reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping a wildcard bind to a dialable address
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class BackgroundServer:
    """Base of an in-process fake: subclasses give ``_asgi_app`` and may hook ``_on_listen``."""

    label = "server"
    """Named in errors ("<label> failed to start") and in the thread's name."""

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None

    def _asgi_app(self) -> ASGIApp:
        raise NotImplementedError

    def _on_listen(self) -> None:
        """Called once the port is bound (``base_url`` works from here on)."""

    def _listen(self) -> socket.socket:
        if self._sock is None:
            self._sock = bind(self._host, self._requested_port)
            self._port = int(self._sock.getsockname()[1])
            self._on_listen()
        return self._sock

    @property
    def host(self) -> str:
        """The host the server binds to."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started; its port is not known yet")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``."""
        return f"http://{url_host(self._host)}:{self.port}"

    def bind(self) -> Self:
        """Bind the port now (``base_url`` is known), serve later with ``serve_forever``."""
        self._listen()
        return self

    def serve_forever(self, log_level: str = "warning") -> None:
        """Serve in this thread until interrupted (Ctrl-C / SIGTERM); for the CLIs."""
        sock = self._listen()
        config = uvicorn.Config(
            self._asgi_app(), log_level=log_level, lifespan="off", loop="asyncio"
        )
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            self.stop()

    def start(self, timeout_s: float = START_TIMEOUT_S) -> Self:
        """Bind, serve in a background thread, and return once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        sock = self._listen()
        # log_config/log_level None: an in-process server must not reconfigure the host's logging.
        config = uvicorn.Config(
            self._asgi_app(),
            log_config=None,
            log_level=None,
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread_error = None
        thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"{self.label}-{self._port}", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive():
                self.stop()
                raise RuntimeError(
                    f"{self.label} failed to start: {self._thread_error!r}"
                ) from self._thread_error
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.label} did not start within {timeout_s}s")
            time.sleep(0.002)
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to start(), which runs in the caller's thread
            self._thread_error = exc

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop serving and wait for the thread to end. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Off the caller's loop: graceful shutdown may wait on a stream that loop is still reading.
        await asyncio.to_thread(self.stop)
