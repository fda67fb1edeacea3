"""One sandbox as the control plane sees it over the bridge: boot status and RPC.

A :class:`SandboxConnection` outlives WebSocket connections: when the runtime reconnects, calls
still waiting for an answer are re-sent (the runtime runs each id once and re-sends a finished
one's answer), so a running command's result survives a dropped socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, cast

from openinspect.errors import RpcError, SandboxBootFailed, SandboxLost, SandboxUnavailable
from openinspect.runtime.protocol import (
    CLOSE_GONE,
    CLOSE_REPLACED,
    BootMessage,
    BootPhase,
    EditFileResult,
    GlobResult,
    GrepResult,
    HelloMessage,
    ReadFileResult,
    RuntimeEvent,
    WriteFileResult,
)

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_TIMEOUT_S = 90.0
FILE_RPC_TIMEOUT_S = 120.0
"""Answer deadline of the file methods (``exec`` is bounded by its own timeout)."""
EXEC_ANSWER_MARGIN_S = 60.0
"""Extra time an ``exec`` answer may take past the command's own timeout."""
WATCHDOG_MAX_INTERVAL_S = 5.0
LOG_TAIL_LINES = 20
MAX_CAPTURED_CHARS = 8_000_000
"""``ExecResult`` keeps at most this much of each stream (``on_output`` still sees it all)."""
_MAX_QUEUED_CANCELS = 1000
_CLOSE_REASON_CHARS = 120  # a close frame's reason must fit in 123 bytes
_T = TypeVar("_T")

ConnectionStatus = Literal["booting", "ready", "failed", "lost"]
ChunkCallback = Callable[[str, str], Awaitable[None]]
"""``(stream, data)`` for each output chunk; ``stream`` is ``"stdout"`` or ``"stderr"``."""
MessageCallback = Callable[[RuntimeEvent], Awaitable[None]]


class BridgeSocket(Protocol):
    """The WebSocket the hub talks to (Starlette's ``WebSocket`` satisfies it)."""

    async def accept(self) -> None:
        """Complete the handshake (the hub calls it once the runtime is authenticated)."""
        ...

    async def receive_text(self) -> str:
        """The next text message; raises (any exception) once the peer is gone."""
        ...

    async def send_text(self, data: str) -> None:
        """Send one text message; raises (any exception) if the socket is closed."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket with a WebSocket close code; before ``accept`` this rejects the
        handshake (an HTTP 403)."""
        ...


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command: a failing command is data, not an exception."""

    exit_code: int
    """The shell's exit status; ``128 + N`` when killed by signal ``N`` (e.g. on timeout)."""
    timed_out: bool
    duration_ms: int
    stdout: str
    stderr: str
    output_truncated: bool = False
    """True when stdout or stderr was cut at :data:`MAX_CAPTURED_CHARS`."""


@dataclass
class _Call:
    method: str
    params: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    on_chunk: ChunkCallback | None


class _Capture:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def add(self, data: str) -> None:
        room = MAX_CAPTURED_CHARS - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        self.parts.append(data)
        self.size += len(data)


class SandboxConnection:
    """The control plane's end of one sandbox (create it with ``BridgeHub.register``).

    ``status`` goes ``booting`` → ``ready`` or ``failed``, and to ``lost`` from anywhere (the
    sandbox died, went silent, or was shut down); ``lost`` is final. RPC works in every status
    but ``lost``: requests made before the runtime connects are sent when it does.

    ``on_message``, when set, is awaited with every event the runtime sends, as the parsed JSON
    dict (see :data:`~openinspect.runtime.protocol.RuntimeEvent`: ``hello``, ``boot``, ``log``,
    ``heartbeat``; ignore other types), in order, before the next message is read. Keep it
    quick and never await this connection's RPC inside it (the answer could not be read).
    """

    def __init__(
        self,
        sandbox_id: str,
        token_hash: bytes,
        *,
        heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S,
    ) -> None:
        self.sandbox_id = sandbox_id
        self.token_hash = token_hash
        self.status: ConnectionStatus = "booting"
        self.on_message: MessageCallback | None = None
        self.hello: HelloMessage | None = None
        self.phase: BootPhase | None = None
        self.boot_failure: BootMessage | None = None
        self.failed_phase: BootPhase | None = None
        self.lost_reason: str | None = None
        self.log_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._socket: BridgeSocket | None = None
        self._send_lock = asyncio.Lock()
        self._settled = asyncio.Event()
        self._calls: dict[str, _Call] = {}
        self._cancels: dict[str, None] = {}  # ordered set of cancels not yet delivered
        self._last_seen = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """Whether the runtime is connected right now."""
        return self._socket is not None

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until the sandbox has booted.

        Raises ``SandboxBootFailed`` (the failing phase, exit code and last log lines in the
        message and ``details``), ``SandboxLost`` if it died or went silent, and
        ``SandboxUnavailable`` if it is still booting after ``timeout_s``.
        """
        if self.status == "booting":
            try:
                await asyncio.wait_for(self._settled.wait(), timeout_s)
            except TimeoutError:
                state = "connected" if self.connected else "never connected or disconnected"
                raise SandboxUnavailable(
                    f"sandbox {self.sandbox_id} was not ready after {timeout_s:g} s "
                    f"(boot phase {self.phase or 'not started'}, {state})",
                    hint="check the sandbox log beside its workspace",
                    log_tail=list(self.log_tail),
                ) from None
        if self.status == "ready":
            return
        if self.status == "failed":
            raise self._boot_error()
        raise SandboxLost(f"sandbox {self.sandbox_id} was lost: {self.lost_reason}")

    async def call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        on_chunk: ChunkCallback | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Run one RPC method in the sandbox and return its result.

        Raises ``RpcError`` when the runtime answers with an error (``details["rpc_code"]`` is its
        stable code, e.g. ``edit_no_match``), ``SandboxLost`` if the sandbox is or becomes lost,
        ``SandboxUnavailable`` if no answer came within ``timeout_s``. Cancelling the awaiting
        task cancels the request in the sandbox (an ``exec``'s process group is killed).
        """
        if self.status == "lost":
            raise SandboxLost(f"sandbox {self.sandbox_id} was lost: {self.lost_reason}")
        rid = uuid.uuid4().hex  # unique across re-registrations: the runtime caches answers by id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[rid] = _Call(method, dict(params), future, on_chunk)
        try:
            await self._send({"id": rid, "method": method, "params": dict(params)})
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.CancelledError:
            self._calls.pop(rid, None)
            await self._cancel_remote(rid)
            raise
        except TimeoutError:
            self._calls.pop(rid, None)
            await self._cancel_remote(rid)
            raise SandboxUnavailable(
                f"{method} got no answer from sandbox {self.sandbox_id} within {timeout_s:g} s"
            ) from None
        finally:
            self._calls.pop(rid, None)

    async def exec(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float,
        on_output: ChunkCallback | None = None,
    ) -> ExecResult:
        """Run ``command`` with ``/bin/bash -c`` in the repo (or ``cwd``), killing its process
        group after ``timeout_s``; streams output to ``on_output`` and returns all of it."""
        captures = {"stdout": _Capture(), "stderr": _Capture()}

        async def on_chunk(stream: str, data: str) -> None:
            captures["stderr" if stream == "stderr" else "stdout"].add(data)
            if on_output is not None:
                await on_output(stream, data)

        params: dict[str, Any] = {"command": command, "timeout_s": timeout_s}
        if cwd is not None:
            params["cwd"] = cwd
        if env:
            params["env"] = dict(env)
        result = await self.call(
            "exec", params, on_chunk=on_chunk, timeout_s=timeout_s + EXEC_ANSWER_MARGIN_S
        )
        out, err = captures["stdout"], captures["stderr"]
        return ExecResult(
            exit_code=_typed(result, "exit_code", int),
            timed_out=_typed(result, "timed_out", bool),
            duration_ms=_typed(result, "duration_ms", int),
            stdout="".join(out.parts),
            stderr="".join(err.parts),
            output_truncated=out.truncated or err.truncated,
        )

    async def read_file(
        self, path: str, *, offset: int | None = None, limit: int | None = None
    ) -> ReadFileResult:
        """Lines of a file (``offset`` is 1-based); ``not_found`` if it does not exist."""
        params: dict[str, Any] = {"path": path}
        if offset is not None:
            params["offset"] = offset
        if limit is not None:
            params["limit"] = limit
        return cast(
            ReadFileResult, await self.call("read_file", params, timeout_s=FILE_RPC_TIMEOUT_S)
        )

    async def write_file(self, path: str, content: str) -> WriteFileResult:
        """Write a file, creating parent directories."""
        params = {"path": path, "content": content}
        return cast(
            WriteFileResult, await self.call("write_file", params, timeout_s=FILE_RPC_TIMEOUT_S)
        )

    async def edit_file(self, path: str, old: str, new: str) -> EditFileResult:
        """Replace the single occurrence of ``old``; ``edit_no_match``/``edit_ambiguous`` else."""
        params = {"path": path, "old": old, "new": new}
        return cast(
            EditFileResult, await self.call("edit_file", params, timeout_s=FILE_RPC_TIMEOUT_S)
        )

    async def glob(self, pattern: str) -> GlobResult:
        """Sorted repo-relative paths matching ``pattern`` (``.git`` skipped)."""
        params = {"pattern": pattern}
        return cast(GlobResult, await self.call("glob", params, timeout_s=FILE_RPC_TIMEOUT_S))

    async def grep(self, pattern: str, path: str | None = None) -> GrepResult:
        """``path:line:text`` matches of a Python regex, capped (``truncated`` says so)."""
        params: dict[str, Any] = {"pattern": pattern}
        if path is not None:
            params["path"] = path
        return cast(GrepResult, await self.call("grep", params, timeout_s=FILE_RPC_TIMEOUT_S))

    async def shutdown(self) -> None:
        """Ask the runtime to kill its commands and exit; the connection becomes ``lost``."""
        await self._send({"type": "shutdown"})
        self.mark_lost("the sandbox was shut down")

    def mark_lost(self, reason: str) -> None:
        """Declare the sandbox gone: pending and future calls raise ``SandboxLost``.

        The session engine calls this when the provider's process exits; the heartbeat
        watchdog calls it after ``heartbeat_timeout_s`` of silence. Idempotent.
        """
        if self.status == "lost":
            return
        logger.info("sandbox %s lost: %s", self.sandbox_id, reason)
        self.status = "lost"
        self.lost_reason = reason
        self._settled.set()
        for call in self._calls.values():
            if not call.future.done():
                call.future.set_exception(
                    SandboxLost(
                        f"sandbox {self.sandbox_id} was lost during {call.method}: {reason}"
                    )
                )
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        socket, self._socket = self._socket, None
        if socket is not None:
            self._in_background(close_quietly(socket, CLOSE_GONE, reason))

    # --- used by BridgeHub -------------------------------------------------------------------

    async def serve(self, socket: BridgeSocket) -> None:
        """Take ``socket`` as the current connection and pump it until it ends."""
        previous, self._socket = self._socket, socket
        self._last_seen = time.monotonic()
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch())
        if previous is not None:
            await close_quietly(previous, CLOSE_REPLACED, "replaced by a newer connection")
        await self._replay()
        try:
            while True:
                try:
                    text = await socket.receive_text()
                except Exception:  # the framework's disconnect exception: we must not import it
                    return
                await self._dispatch(text)
        finally:
            if self._socket is socket:
                self._socket = None

    # --- internals ---------------------------------------------------------------------------

    async def _send(self, message: Mapping[str, Any]) -> bool:
        socket = self._socket
        if socket is None:
            return False  # re-sent by _replay when the runtime reconnects
        try:
            async with self._send_lock:
                await socket.send_text(json.dumps(message))
        except Exception:  # a dying socket: the pump notices, the reconnect replays
            logger.debug("send to sandbox %s failed", self.sandbox_id, exc_info=True)
            return False
        return True

    async def _cancel_remote(self, rid: str) -> None:
        self._cancels[rid] = None
        while len(self._cancels) > _MAX_QUEUED_CANCELS:
            self._cancels.pop(next(iter(self._cancels)))
        if await self._send({"cancel": rid}):
            self._cancels.pop(rid, None)

    async def _replay(self) -> None:
        for rid in list(self._cancels):
            if await self._send({"cancel": rid}):
                self._cancels.pop(rid, None)
        for rid, call in list(self._calls.items()):
            await self._send({"id": rid, "method": call.method, "params": call.params})

    async def _dispatch(self, text: str) -> None:
        self._last_seen = time.monotonic()
        try:
            message = json.loads(text)
        except ValueError:
            logger.warning("sandbox %s sent a message that is not JSON", self.sandbox_id)
            return
        if not isinstance(message, dict):
            return
        if "type" in message:
            await self._on_event(message)
            return
        rid = message.get("id")
        call = self._calls.get(rid) if isinstance(rid, str) else None
        if call is None:
            return  # a late answer to a cancelled or timed-out call, or a replayed duplicate
        if isinstance(chunk := message.get("chunk"), dict):
            stream, data = chunk.get("stream"), chunk.get("data")
            if call.on_chunk is not None and isinstance(stream, str) and isinstance(data, str):
                try:
                    await call.on_chunk(stream, data)
                except Exception:
                    logger.exception("output callback of %s failed", call.method)
        elif call.future.done():
            return
        elif isinstance(result := message.get("result"), dict):
            call.future.set_result(result)
        elif isinstance(error := message.get("error"), dict):
            code, detail = str(error.get("code", "internal")), str(error.get("message", ""))
            call.future.set_exception(RpcError(detail or code, rpc_code=code, method=call.method))

    async def _on_event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "hello":
            self.hello = cast(HelloMessage, message)
            if message.get("phase") == "ready" and self.status == "booting":
                self._settle("ready")  # booted while the control plane was not listening
        elif kind == "boot":
            phase = message.get("phase")
            if phase == "failed" and self.status == "booting":
                self.failed_phase = self.phase
                self.boot_failure = cast(BootMessage, message)
                self._settle("failed")
            elif phase == "ready" and self.status == "booting":
                self._settle("ready")
            if isinstance(phase, str):
                self.phase = cast(BootPhase, phase)
        elif kind == "log":
            self.log_tail.append(f"[{message.get('source')}] {message.get('line')}")
        if self.on_message is not None:
            try:
                await self.on_message(cast(RuntimeEvent, message))
            except Exception:
                logger.exception("on_message of sandbox %s failed", self.sandbox_id)

    def _settle(self, status: ConnectionStatus) -> None:
        self.status = status
        self._settled.set()

    def _boot_error(self) -> SandboxBootFailed:
        failure = self.boot_failure or {"type": "boot", "phase": "failed"}
        phase = self.failed_phase or "boot"
        lines = "\n".join(self.log_tail)
        return SandboxBootFailed(
            f"sandbox {self.sandbox_id} failed to boot in phase {phase}: "
            f"{failure.get('message', 'no reason given')}"
            + (f"\nlast log lines:\n{lines}" if lines else ""),
            hint="fix .openinspect/setup.sh or .openinspect/start.sh, or the repo's base branch",
            phase=phase,
            exit_code=failure.get("exit_code"),
            log_tail=list(self.log_tail),
        )

    async def _watch(self) -> None:
        interval_s = min(self._heartbeat_timeout_s / 4, WATCHDOG_MAX_INTERVAL_S)
        while self.status != "lost":
            await asyncio.sleep(interval_s)
            silent_s = time.monotonic() - self._last_seen
            if silent_s > self._heartbeat_timeout_s:
                self.mark_lost(
                    f"no message for {silent_s:.0f} s "
                    f"(heartbeat timeout {self._heartbeat_timeout_s:g} s)"
                )

    def _in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop: nothing to close with
            coro.close()
            return
        task = loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _typed(result: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    value = result.get(name)
    if not isinstance(value, kind):
        raise RpcError(
            f"the sandbox runtime answered with a malformed result: expected {kind.__name__} "
            f"{name!r}, got {value!r}",
            rpc_code="internal",
        )
    return value


async def close_quietly(socket: BridgeSocket, code: int, reason: str) -> None:
    """Close ``socket`` with ``code``, ignoring a socket that is already gone."""
    with contextlib.suppress(Exception):  # already closed: nothing left to tell it
        await socket.close(code, reason[:_CLOSE_REASON_CHARS])
