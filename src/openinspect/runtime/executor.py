"""The RPC methods: ``exec`` and ``pipe`` here, the file methods in :mod:`.files`, ``bind`` in
:mod:`.binding`.

``exec`` runs ``/bin/bash -c COMMAND`` as the leader of a new session, streams its output as
batched chunks, and on timeout or cancellation kills its whole process group (SIGTERM, a
:data:`~.procs.KILL_GRACE_S` grace, SIGKILL). A failing command is not an error: its exit status
is the result.

``pipe`` runs an argv (no shell) the same way, with a stdin pipe fed by the control plane's
``input`` messages (:meth:`Executor.feed`): an in-box MCP server speaking over its stdio.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .binding import Binding
from .files import FileOps
from .params import optional_str, optional_str_map, require_positive_float, require_str
from .procs import Child, ChunkBatcher, Emit
from .protocol import ExecResult, RpcFailure

SHELL = "/bin/bash"
KILLED_STATUS = 128 + signal.SIGKILL
KILLED_NOTE = (
    b"\n[openinspect] the command was killed (SIGKILL). Unless something in the sandbox sent "
    b"that signal, the sandbox ran out of memory: at its memory limit the kernel ends the "
    b"largest process.\n"
)
"""Said on stderr after a command that died of a SIGKILL nobody here sent: the kernel's OOM
killer says nothing to the command's output, and a bare "exit code 137" explains little."""


class Executor:
    """Dispatches RPC methods for one sandbox; commands get ``base_env`` plus their own env."""

    def __init__(
        self, repo_dir: Path, base_env: Mapping[str, str], *, binding: Binding | None = None
    ) -> None:
        self.repo_dir = repo_dir
        self._base_env = dict(base_env)
        self._binding = binding
        self._stdins: dict[str, asyncio.Queue[str | None]] = {}
        files = FileOps(repo_dir)
        self._file_methods: dict[str, Callable[[Mapping[str, object]], Mapping[str, object]]] = {
            "read_file": files.read_file,
            "write_file": files.write_file,
            "edit_file": files.edit_file,
            "glob": files.glob,
            "grep": files.grep,
        }

    @property
    def methods(self) -> list[str]:
        """Every method name this executor answers."""
        return ["exec", "pipe", *self._file_methods, *(["bind"] if self._binding else [])]

    async def run(
        self, method: str, params: Mapping[str, object], emit: Emit, *, rid: str = ""
    ) -> Mapping[str, object]:
        """Run one method; raises :class:`RpcFailure` with a stable code when it cannot."""
        if method == "exec":
            return await self.exec(params, emit)
        if method == "pipe":
            return await self.pipe(rid, params, emit)
        if method == "bind" and self._binding is not None:
            return await self._binding.bind(params)
        operation = self._file_methods.get(method)
        if operation is None:
            raise RpcFailure(
                "unknown_method",
                f"unknown method {method!r}; available: {', '.join(self.methods)}",
            )
        # File methods block; a thread keeps heartbeats and other commands' output flowing.
        return await asyncio.to_thread(operation, params)

    async def exec(self, params: Mapping[str, object], emit: Emit) -> ExecResult:
        """Run a shell command; returns its exit status, whether it timed out, and its duration."""
        command = require_str(params, "command", allow_empty=False)
        timeout_s = require_positive_float(params, "timeout_s")
        cwd = self._cwd(optional_str(params, "cwd"))
        env = {**self._base_env, **optional_str_map(params, "env")}
        started = time.monotonic()
        try:
            child = await Child.spawn([SHELL, "-c", command], cwd=cwd, env=env)
        except OSError as exc:
            raise RpcFailure("io_error", f"cannot start {SHELL}: {exc}") from exc
        batcher = ChunkBatcher(emit)
        ticker = asyncio.create_task(batcher.run())
        try:
            exit_code, timed_out = await child.run(batcher.feed, timeout_s)
            if exit_code == KILLED_STATUS and not timed_out:
                await batcher.feed("stderr", KILLED_NOTE)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        await batcher.close()
        return {
            "exit_code": exit_code,
            "timed_out": timed_out,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }

    def expect(self, rid: str) -> None:
        """Take input for the ``pipe`` ``rid`` from now on, before its process is started."""
        self._stdins.setdefault(rid, asyncio.Queue())

    def feed(self, rid: str, data: str | None) -> None:
        """Write ``data`` to the stdin of the running ``pipe`` ``rid`` (None closes it); for an
        id that is not a running pipe, nothing."""
        queue = self._stdins.get(rid)
        if queue is not None:
            queue.put_nowait(data)

    async def pipe(self, rid: str, params: Mapping[str, object], emit: Emit) -> ExecResult:
        """Run an argv with its stdin fed by :meth:`feed` until it exits, ``timeout_s`` passes
        or the request is cancelled (its process group is killed); the result is ``exec``'s."""
        argv = params.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise RpcFailure("invalid_params", "'argv' must be a non-empty list of strings")
        timeout_s = require_positive_float(params, "timeout_s")
        cwd = self._cwd(optional_str(params, "cwd"))
        started = time.monotonic()
        queue = self._stdins.setdefault(rid, asyncio.Queue())
        try:
            child = await Child.spawn(list(argv), cwd=cwd, env=self._base_env, stdin_pipe=True)
        except OSError as exc:
            self._stdins.pop(rid, None)
            raise RpcFailure("io_error", f"cannot start {argv[0]}: {exc.strerror}") from exc
        batcher = ChunkBatcher(emit)
        ticker = asyncio.create_task(batcher.run())
        writer = asyncio.create_task(_write_stdin(child, queue))
        try:
            exit_code, timed_out = await child.run(batcher.feed, timeout_s)
        finally:
            self._stdins.pop(rid, None)
            for task in (ticker, writer):
                task.cancel()
            await asyncio.gather(ticker, writer, return_exceptions=True)
        await batcher.close()
        return {
            "exit_code": exit_code,
            "timed_out": timed_out,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }

    def _cwd(self, raw: str | None) -> Path:
        if raw is None:
            # Before the clone finishes there is no repo yet; run in the workspace instead.
            return self.repo_dir if self.repo_dir.is_dir() else self.repo_dir.parent
        path = Path(raw)
        path = path if path.is_absolute() else self.repo_dir / path
        if not path.is_dir():
            raise RpcFailure("not_found", f"working directory {raw!r} does not exist")
        return path


async def _write_stdin(child: Child, queue: asyncio.Queue[str | None]) -> None:
    stdin = child.stdin
    assert stdin is not None
    try:
        while (data := await queue.get()) is not None:
            stdin.write(data.encode())
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return  # the process closed its stdin or exited: its result says how it ended
    stdin.close()
