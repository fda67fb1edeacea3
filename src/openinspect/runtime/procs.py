"""Child processes in their own session: spawn, stream their output, kill the whole group.

Every command and boot script runs as the leader of a new session (so of a new process group
whose id is its pid). Killing the group reaches everything it forked that stayed in the group,
double-forked daemons included; only a process that calls ``setsid`` itself escapes, and in a
bwrap sandbox that one dies with the sandbox's pid namespace.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from .protocol import Stream

KILL_GRACE_S = 2.0
"""Time a process group gets between SIGTERM and SIGKILL."""
DRAIN_AFTER_EXIT_S = 0.5
"""Time to keep reading output after the shell exits: a background child may hold the pipe."""
FLUSH_INTERVAL_S = 0.05
FLUSH_BYTES = 16 * 1024
_READ_BYTES = 64 * 1024

Emit = Callable[[Stream, str], Awaitable[None]]
Feed = Callable[[Stream, bytes], Awaitable[None]]


class Child:
    """A process started as a new session leader, its output read through pipes we own.

    Owning the read ends (rather than asyncio's ``PIPE``) lets us stop reading when the process
    exits even if a background child it left keeps the pipes open: that child then gets SIGPIPE
    on its next write, so a daemon should redirect its output.
    """

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        outputs: list[tuple[Stream, asyncio.StreamReader, asyncio.BaseTransport]],
    ) -> None:
        self.proc = proc
        self._outputs = outputs
        self.stdin: asyncio.StreamWriter | None = proc.stdin

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        merge_stderr: bool = False,
        stdin_pipe: bool = False,
    ) -> Child:
        """Start ``argv`` with no stdin (``stdin_pipe``: a pipe, :attr:`stdin`); stderr goes to
        the stdout pipe if ``merge_stderr``."""
        streams: list[Stream] = ["stdout"] if merge_stderr else ["stdout", "stderr"]
        pipes = [os.pipe() for _ in streams]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=dict(env),
                stdin=asyncio.subprocess.PIPE if stdin_pipe else asyncio.subprocess.DEVNULL,
                stdout=pipes[0][1],
                stderr=pipes[-1][1],
                start_new_session=True,
            )
        except BaseException:
            for read_fd, _ in pipes:
                os.close(read_fd)
            raise
        finally:
            for _, write_fd in pipes:
                os.close(write_fd)  # the child has its copies; ours would hide EOF
        loop = asyncio.get_running_loop()
        outputs: list[tuple[Stream, asyncio.StreamReader, asyncio.BaseTransport]] = []
        for stream, (read_fd, _) in zip(streams, pipes, strict=True):
            reader = asyncio.StreamReader()
            transport, _ = await loop.connect_read_pipe(
                functools.partial(asyncio.StreamReaderProtocol, reader),
                os.fdopen(read_fd, "rb", buffering=0),  # the transport closes it
            )
            outputs.append((stream, reader, transport))
        return cls(proc, outputs)

    async def run(self, feed: Feed, timeout_s: float) -> tuple[int, bool]:
        """Hand output to ``feed`` until the process exits; returns (exit status, timed out).

        On timeout or cancellation the whole process group is killed.
        """
        readers = [
            asyncio.create_task(_pump(stream, reader, feed)) for stream, reader, _ in self._outputs
        ]
        timed_out = False
        try:
            try:
                async with asyncio.timeout(timeout_s):  # not wait_for: openinspect.timeouts
                    await self.proc.wait()
            except TimeoutError:
                timed_out = True
                await kill_group(self.proc)
            await _drain(readers)
        except asyncio.CancelledError:
            await kill_group(self.proc)
            raise
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for _, _, transport in self._outputs:
                transport.close()
        return exit_status(self.proc.returncode), timed_out


async def _pump(stream: Stream, reader: asyncio.StreamReader, feed: Feed) -> None:
    while data := await reader.read(_READ_BYTES):
        await feed(stream, data)


async def _drain(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the readers to reach EOF, abandoning any a background child keeps open."""
    _done, pending = await asyncio.wait(tasks, timeout=DRAIN_AFTER_EXIT_S)
    for task in pending:
        task.cancel()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def kill_group(proc: asyncio.subprocess.Process, grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM the process group of ``proc``, wait up to ``grace_s`` for its leader, SIGKILL it.

    The SIGKILL goes to the group even when the leader left in time, so a child that ignores
    SIGTERM does not outlive it. Safe to call twice; a second cancellation skips to SIGKILL.
    """
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await proc.wait()
    finally:
        _signal_group(pgid, signal.SIGKILL)
    await proc.wait()


def exit_status(returncode: int | None) -> int:
    """The status a shell would report: ``128 + N`` for a process killed by signal ``N``."""
    if returncode is None:
        return -1
    return 128 - returncode if returncode < 0 else returncode


class ChunkBatcher:
    """Decodes output as UTF-8 (undecodable bytes replaced) and emits it in batches.

    A stream's buffer is flushed once it holds :data:`FLUSH_BYTES`, and every stream at least every
    :data:`FLUSH_INTERVAL_S` while :meth:`run` is running, so a chatty command costs a message per
    batch, not per write.
    """

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._decoders = {
            s: codecs.getincrementaldecoder("utf-8")(errors="replace") for s in ("stdout", "stderr")
        }
        self._buffers: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        self._sizes: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        self._lock = asyncio.Lock()

    async def feed(self, stream: Stream, data: bytes) -> None:
        """Add raw output; flushes the stream when its buffer is full."""
        text = self._decoders[stream].decode(data)
        if text:
            self._buffers[stream].append(text)
            self._sizes[stream] += len(text)
        if self._sizes[stream] >= FLUSH_BYTES:
            await self.flush(stream)

    async def flush(self, stream: Stream, *, final: bool = False) -> None:
        """Emit what ``stream`` holds; ``final`` also flushes a partial UTF-8 sequence."""
        async with self._lock:
            if final:
                tail = self._decoders[stream].decode(b"", final=True)
                if tail:
                    self._buffers[stream].append(tail)
            if not self._buffers[stream]:
                return
            text = "".join(self._buffers[stream])
            self._buffers[stream].clear()
            self._sizes[stream] = 0
            await self._emit(stream, text)

    async def run(self) -> None:
        """Flush every stream periodically until cancelled."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.flush("stdout")
            await self.flush("stderr")

    async def close(self) -> None:
        """Emit everything left, partial characters included."""
        await self.flush("stdout", final=True)
        await self.flush("stderr", final=True)
