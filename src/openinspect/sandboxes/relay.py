"""A bridge socket of the box's own, relayed to the control plane's.

Bind-mounting the server's bridge socket into a box shows its host path twice: as the mount's
root in ``/proc/self/mountinfo``, and in ``/proc/net/unix``, where every connection the box
makes to it is listed (in the box's network namespace) under the address the server bound. So
the box gets a socket of its own instead: the server binds a listening socket inside the box's
``/run/openinspect`` (reached through ``/proc/<init>/root`` while the box's init waits on its
block descriptor, set up but running nothing yet) and copies bytes between each connection
made to it and a connection to the real bridge socket. The box's socket lives in the box's
own tmpfs and goes with it; the bridge still authenticates every connection by its token.

A root server creates that socket with the box user's file system ids (the box's tmpfs belongs
to the box's user namespace, where root has no id): ``setfsuid`` is per thread, so the bind
runs in a worker thread that takes those ids for the one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import socket
import time
from pathlib import Path

from .boxuser import BoxUser

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
LISTEN_BACKLOG = 64
POLL_S = 0.005
_libc = ctypes.CDLL(None, use_errno=True)


def _bind_as(sock: socket.socket, path: str, user: BoxUser) -> None:
    """Bind ``sock`` to ``path`` with ``user``'s file system ids when the server is root."""
    if not user.switch:
        sock.bind(path)
        return
    _libc.setfsgid(user.gid)
    _libc.setfsuid(user.uid)
    try:
        sock.bind(path)
    finally:
        _libc.setfsuid(0)
        _libc.setfsgid(0)


def _open_box_dir(init_pid: int, box_dir: str, timeout_s: float) -> int:
    """An ``O_PATH`` descriptor of ``box_dir`` in the box of ``init_pid``, once bwrap has set
    the box up; polls until then.

    bwrap reports its init's pid right after creating it, before the init builds the box's
    root (it pivots into a scratch tmpfs, builds the root there, then pivots into it). Only in
    the finished root is the init's root not the host's, with no ``oldroot`` left, and
    ``box_dir`` on that root's own file system: nothing earlier can be mistaken for it.
    """
    host_root = os.stat("/")
    root = f"/proc/{init_pid}/root"
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            info = os.stat(root)
            if (info.st_dev, info.st_ino) != (host_root.st_dev, host_root.st_ino) and not (
                os.path.lexists(f"{root}/oldroot")
            ):
                fd = os.open(f"{root}{box_dir}", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
                if os.fstat(fd).st_dev == info.st_dev:
                    return fd
                os.close(fd)
        if not os.path.exists(f"/proc/{init_pid}"):
            raise ProcessLookupError(f"the box's init {init_pid} is gone")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the box was not set up within {timeout_s:g} s")
        time.sleep(POLL_S)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of file, then pass the end on."""
    with contextlib.suppress(OSError):
        while chunk := await reader.read(CHUNK_BYTES):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class BridgeRelay:
    """Listens inside one box and relays every connection to ``upstream``."""

    def __init__(self, upstream: Path) -> None:
        self._upstream = upstream
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, init_pid: int, box_path: str, user: BoxUser, timeout_s: float) -> None:
        """Bind ``box_path`` (a path inside the box) in the box of ``init_pid`` and listen.

        Raises ``OSError`` when the box is gone, and ``TimeoutError`` when it was not set up
        within ``timeout_s``.
        """
        directory = await asyncio.to_thread(
            _open_box_dir, init_pid, os.path.dirname(box_path), timeout_s
        )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Through the directory's descriptor: the path is the box's, checked once.
            path = f"/proc/self/fd/{directory}/{os.path.basename(box_path)}"
            await asyncio.to_thread(_bind_as, sock, path, user)
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
            self._server = await asyncio.start_unix_server(self._accept, sock=sock)
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(directory)

    async def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(OSError):
                await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_unix_connection(self._upstream)
            except OSError as exc:
                logger.warning("bridge relay: the bridge is not reachable: %s", exc)
                return
            upload = asyncio.create_task(_pipe(reader, up_writer))
            try:
                # The bridge's end ends the exchange; the box's side may still be open.
                await _pipe(up_reader, writer)
            finally:
                upload.cancel()
                await asyncio.gather(upload, return_exceptions=True)
                up_writer.close()
                with contextlib.suppress(OSError):
                    await up_writer.wait_closed()
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
