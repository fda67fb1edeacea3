"""One sandbox as the control plane sees it over the bridge: boot status and RPC.

A :class:`SandboxConnection` outlives WebSocket connections: when the runtime reconnects, calls
still waiting for an answer are re-sent (the runtime runs each id once and re-sends a finished
one's answer), so a running command's result survives a dropped socket.

Nothing read from the box is trusted (the token is in the runtime's environment, so any process
in the box can connect): one connection at a time (a second one is closed with ``CLOSE_BUSY``),
the first message must be the ``hello`` of this sandbox, every message is validated and cut by
:mod:`.inbound`, reading is paced by :class:`~.pacing.Pacer`, and boot log lines stop at the
box's :class:`~.pacing.BootLogBudget`. Limits that bite are reported once each through
``on_limit``.

Everything the box sends is redacted with the connection's ``redactor`` (the secret values the
box was given, :mod:`openinspect.secrets.redact`) as it arrives, before anyone sees it: each
call's output streams (a value split across chunks included: the end of a chunk that could begin
one waits for the next chunk or the call's answer), results before they are cut, errors, and boot
and log lines.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from openinspect.errors import RpcError, SandboxBootFailed, SandboxLost, SandboxUnavailable
from openinspect.runtime.protocol import (
    CLOSE_BUSY,
    CLOSE_GONE,
    CLOSE_UNAUTHORIZED,
    MAX_FRAME_BYTES,
    BindResult,
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
from openinspect.secrets.redact import EMPTY, Redactor, StreamRedactor
from openinspect.timeouts import wait_for

from . import inbound
from .base import SessionBinding
from .capture import OutputCapture
from .pacing import BootLogBudget, BridgeLimits, Pacer
from .socket import BridgeSocket, close_quietly

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_TIMEOUT_S = 90.0
FILE_RPC_TIMEOUT_S = 120.0
"""Answer deadline of the file methods (``exec`` is bounded by its own timeout)."""
BIND_TIMEOUT_S = 300.0
"""Answer deadline of ``bind`` (a checkout of a large repo, each git step capped in the box)."""
EXEC_ANSWER_MARGIN_S = 60.0
"""Extra time an ``exec`` answer may take past the command's own timeout."""
WATCHDOG_MAX_INTERVAL_S = 5.0
LOG_TAIL_LINES = 20
CLOSE_RECONNECT = 1012
"""The WebSocket standard "service restart": the runtime reconnects."""
HELLO_TIMEOUT_S = 10.0
"""A connection that sends no ``hello`` within this is closed."""
EXEC_KEEP_CHARS = 256 * 1024
"""``ExecResult`` keeps at most this much of each stream by default, half from its start and
half from its end (``on_output`` still sees it all)."""
_MAX_QUEUED_CANCELS = 1000

ConnectionStatus = Literal["booting", "ready", "failed", "lost"]
ChunkCallback = Callable[[str, str], Awaitable[None]]
"""``(stream, data)`` for each output chunk; ``stream`` is ``"stdout"`` or ``"stderr"``."""
MessageCallback = Callable[[RuntimeEvent], Awaitable[None]]
LimitCallback = Callable[[str, str], Awaitable[None]]
"""``(code, message)`` when a limit first bites: ``sandbox_log_truncated``,
``bridge_rate_limited`` or ``bridge_message_refused``."""


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
    """True when the middle of stdout or stderr was cut (``keep_chars``); the cut text carries
    a notice saying how many bytes and lines are missing there."""


PIPE_INPUT_CHARS = 256 * 1024
"""A pipe's input is sent in messages of at most this many characters."""


@dataclass
class Pipe:
    """A process running in the box with its stdin fed from here (:meth:`SandboxConnection.
    pipe`)."""

    connection: SandboxConnection
    rid: str
    done: asyncio.Task[dict[str, Any]]
    requested: asyncio.Event
    """Set once the ``pipe`` request went out: input never overtakes it."""

    async def write(self, data: str) -> None:
        await self.requested.wait()
        await self.connection.pipe_input(self.rid, data)

    async def close_stdin(self) -> None:
        await self.requested.wait()
        await self.connection.pipe_input(self.rid, None)


@dataclass
class _Call:
    method: str
    params: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    on_chunk: ChunkCallback | None
    max_result_chars: int | None
    streams: dict[str, StreamRedactor[str]] = field(default_factory=dict)
    """The redactor of each output stream, holding back what may be the start of a value."""


class SandboxConnection:
    """The control plane's end of one sandbox (create it with ``BridgeHub.register``).

    ``status`` goes ``booting`` → ``ready`` or ``failed``, and to ``lost`` from anywhere (the
    sandbox died, went silent, or was shut down); ``lost`` is final. RPC works in every status
    but ``lost``: requests made before the runtime connects are sent when it does.

    ``on_message``, when set, is awaited with every event the runtime sends, validated and cut
    (see :data:`~openinspect.runtime.protocol.RuntimeEvent`: ``hello``, ``boot``, ``log``,
    ``heartbeat``; ignore other types), in order, before the next message is read. ``log``
    events stop once the boot log budget is spent. Keep it quick and never await this
    connection's RPC inside it (the answer could not be read). ``on_limit`` is awaited once per
    kind of limit that bites (see :data:`LimitCallback`).
    """

    def __init__(
        self,
        sandbox_id: str,
        token_hash: bytes,
        *,
        heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S,
        limits: BridgeLimits | None = None,
        redactor: Redactor = EMPTY,
    ) -> None:
        self.sandbox_id = sandbox_id
        self.redactor = redactor
        self.token_hash = token_hash
        self.status: ConnectionStatus = "booting"
        self.on_message: MessageCallback | None = None
        self.on_limit: LimitCallback | None = None
        self.limits = limits or BridgeLimits()
        self.boot_log = BootLogBudget(
            self.limits.boot_log_max_bytes, self.limits.boot_log_max_lines
        )
        self.dropped_messages = 0
        """Messages dropped as malformed, over the rate, or answering no running call."""
        self._pacer = Pacer(self.limits)
        self._reported: set[str] = set()
        self.hello: HelloMessage | None = None
        self.phase: BootPhase | None = None
        self.boot_failure: BootMessage | None = None
        self.failed_phase: BootPhase | None = None
        self.lost_reason: str | None = None
        self.log_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._socket: BridgeSocket | None = None
        self._claimed: BridgeSocket | None = None  # open, maybe before its hello
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
                await wait_for(self._settled.wait(), timeout_s)
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
        max_result_chars: int | None = None,
        rid: str | None = None,
        sent: asyncio.Event | None = None,
    ) -> dict[str, Any]:
        """Run one RPC method in the sandbox and return its result (``rid``: the request's
        id, made here when None).

        The result is checked against the method's shape and cut to what it can return
        (:func:`.inbound.result_of`; ``max_result_chars`` cuts ``read_file`` content further, and
        for other methods refuses an answer frame longer than that with ``too_large``).

        Raises ``RpcError`` when the runtime answers with an error (``details["rpc_code"]`` is its
        stable code, e.g. ``edit_no_match``) or a malformed result, ``SandboxLost`` if the sandbox
        is or becomes lost, ``SandboxUnavailable`` if no answer came within ``timeout_s``.
        Cancelling the awaiting task cancels the request in the sandbox (an ``exec``'s process
        group is killed).
        """
        if self.status == "lost":
            raise SandboxLost(f"sandbox {self.sandbox_id} was lost: {self.lost_reason}")
        # Unique across re-registrations: the runtime caches answers by id.
        rid = rid or uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[rid] = _Call(method, dict(params), future, on_chunk, max_result_chars)
        try:
            await self._send({"id": rid, "method": method, "params": dict(params)})
            if sent is not None:  # queued for a replay when it was not sent now: same order
                sent.set()
            return await wait_for(future, timeout_s)
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
        keep_chars: int = EXEC_KEEP_CHARS,
    ) -> ExecResult:
        """Run ``command`` with ``/bin/bash -c`` in the repo (or ``cwd``), killing its process
        group after ``timeout_s``; streams output to ``on_output`` and returns the first and last
        ``keep_chars / 2`` characters of each stream (0 when ``on_output`` keeps its own)."""
        head = keep_chars // 2
        captures = {s: OutputCapture(head, keep_chars - head) for s in ("stdout", "stderr")}

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
        (stdout, cut_out), (stderr, cut_err) = (c.render() for c in captures.values())
        return ExecResult(
            exit_code=result["exit_code"],
            timed_out=result["timed_out"],
            duration_ms=result["duration_ms"],
            stdout=stdout,
            stderr=stderr,
            output_truncated=cut_out is not None or cut_err is not None,
        )

    def pipe(
        self,
        argv: list[str],
        *,
        timeout_s: float,
        on_output: ChunkCallback,
        cwd: str | None = None,
    ) -> Pipe:
        """Start ``argv`` in the box (no shell; in the repo, or ``cwd``) with a stdin pipe:
        :meth:`Pipe.write` feeds it, ``on_output`` gets its stdout and stderr as they come
        (redacted), and :attr:`Pipe.done` ends with its ``exec``-like result. Its process
        group is killed after ``timeout_s`` or when ``done`` is cancelled."""
        rid = uuid.uuid4().hex
        params: dict[str, Any] = {"argv": list(argv), "timeout_s": timeout_s}
        if cwd is not None:
            params["cwd"] = cwd
        sent = asyncio.Event()
        done = asyncio.create_task(
            self.call(
                "pipe",
                params,
                on_chunk=on_output,
                timeout_s=timeout_s + EXEC_ANSWER_MARGIN_S,
                rid=rid,
                sent=sent,
            ),
            name=f"pipe {argv[0]}",
        )
        return Pipe(self, rid, done, sent)

    async def pipe_input(self, rid: str, data: str | None) -> None:
        """Send ``data`` to the stdin of the running pipe ``rid`` (None closes it), in pieces
        of at most :data:`PIPE_INPUT_CHARS`."""
        if data is None:
            await self._send({"input": rid, "data": None})
            return
        for start in range(0, len(data), PIPE_INPUT_CHARS):
            await self._send({"input": rid, "data": data[start : start + PIPE_INPUT_CHARS]})

    async def read_file(
        self,
        path: str,
        *,
        offset: int | None = None,
        limit: int | None = None,
        max_chars: int | None = None,
    ) -> ReadFileResult:
        """Lines of a file (``offset`` is 1-based), at most ``max_chars`` of them (``truncated``
        says so); ``not_found`` if it does not exist."""
        params: dict[str, Any] = {"path": path}
        if offset is not None:
            params["offset"] = offset
        if limit is not None:
            params["limit"] = limit
        result = await self.call(
            "read_file", params, timeout_s=FILE_RPC_TIMEOUT_S, max_result_chars=max_chars
        )
        return cast(ReadFileResult, result)

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

    async def bind(self, binding: SessionBinding) -> BindResult:
        """Give the booted box to a session: it checks out the binding's work branch and, with
        a git remote path, points ``origin`` at the git proxy (see
        :class:`~openinspect.runtime.protocol.BindParams`).

        Raises ``RpcError`` when the box refuses (``rpc_code`` ``already_bound``, ``not_ready``,
        ``git_failed``…) or answers something other than what was asked, and what ``call``
        raises.
        """
        work_branch, git_remote_path = binding.work_branch, binding.git_remote_path
        params: dict[str, Any] = {"work_branch": work_branch}
        if git_remote_path is not None:
            params["git_remote_path"] = git_remote_path
        result = cast(BindResult, await self.call("bind", params, timeout_s=BIND_TIMEOUT_S))
        if result["branch"] != work_branch or result["proxied"] != (git_remote_path is not None):
            # Only a runtime that is not ours answers so; what it did is unknown.
            raise RpcError(
                f"sandbox {self.sandbox_id} answered bind with another binding than asked",
                rpc_code="internal",
                method="bind",
            )
        return result

    async def wake(self) -> None:
        """Ask a hibernated runtime to come back now (:mod:`openinspect.runtime.hibernate`), so
        that a prompt's first tool call finds it awake: sent when a prompt starts, while the
        model thinks. An awake runtime ignores it; nothing is sent while disconnected."""
        await self._send({"type": "wake"})

    async def shutdown(self) -> None:
        """Ask the runtime to kill its commands and exit; the connection becomes ``lost``."""
        await self._send({"type": "shutdown"})
        self.mark_lost("the sandbox was shut down")

    async def disconnect(self, reason: str) -> None:
        """Close the current connection but keep the sandbox: the runtime reconnects with
        backoff and calls waiting for an answer are re-sent (what a network blip does)."""
        socket = self._claimed
        if socket is not None:
            await close_quietly(socket, CLOSE_RECONNECT, reason)

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
        socket, self._socket = self._claimed, None  # also one that has not said hello yet
        if socket is not None:
            self._in_background(close_quietly(socket, CLOSE_GONE, reason))

    # --- used by BridgeHub -------------------------------------------------------------------

    async def serve(self, socket: BridgeSocket) -> None:
        """Pump ``socket`` (accepted) until it ends; the first message must be our ``hello``.

        Only one connection is served at a time: one opened while another is open is closed
        with ``CLOSE_BUSY`` (the real runtime retries with backoff). Refusing is safer than
        letting the newest replace the oldest: the runtime connects before anything else in the
        box runs, so it holds the slot, and a process in the box that has the token cannot
        push it out and take the calls.
        """
        if self._claimed is not None:
            await close_quietly(socket, CLOSE_BUSY, "another connection of this sandbox is open")
            return
        self._claimed = socket
        try:
            if not await self._accept_hello(socket):
                return
            self._socket = socket
            self._last_seen = time.monotonic()
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.create_task(self._watch())
            await self._replay()
            while self._socket is socket:
                try:
                    text = await socket.receive_text()
                except Exception:  # the framework's disconnect exception: we must not import it
                    return
                await self._dispatch(text)
        finally:
            if self._socket is socket:
                self._socket = None
            if self._claimed is socket:
                self._claimed = None

    async def _accept_hello(self, socket: BridgeSocket) -> bool:
        try:
            text = await wait_for(socket.receive_text(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await close_quietly(socket, CLOSE_UNAUTHORIZED, "no hello in time")
            return False
        except Exception:  # gone before saying hello
            return False
        await self._pacer.bytes.take(len(text))
        try:
            message = inbound.parse(text) if len(text) <= MAX_FRAME_BYTES else None
        except inbound.Malformed:
            message = None
        if not isinstance(message, inbound.Hello) or message.sandbox_id != self.sandbox_id:
            await self._report(
                "bridge_message_refused",
                "a bridge connection did not start with this sandbox's hello and was closed",
            )
            await close_quietly(socket, CLOSE_UNAUTHORIZED, "the first message must be our hello")
            return False
        self._last_seen = time.monotonic()
        await self._on_event(message)
        return True

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
        await self._pacer.bytes.take(len(text))  # backpressure before any parsing
        try:
            if len(text) > MAX_FRAME_BYTES:  # a server configured without the frame limit
                raise inbound.Malformed(f"a frame of {len(text)} characters")
            message = inbound.parse(text)
        except inbound.Malformed as exc:
            logger.warning("sandbox %s sent a bad message (%s)", self.sandbox_id, exc.reason)
            self.dropped_messages += 1
            await self._report(
                "bridge_message_refused", "the sandbox sent a malformed bridge message (dropped)"
            )
            return
        if isinstance(message, inbound.Chunk | inbound.Failure | inbound.Result):
            call = self._calls.get(message.id)
            if call is not None:
                await self._pacer.messages.take()  # a running call's answer waits, never drops
                await self._answer(call, message, len(text))
                return
        if not self._pacer.messages.try_take():
            self.dropped_messages += 1
            await self._report(
                "bridge_rate_limited",
                f"the sandbox sent more than {self.limits.messages_per_s:g} bridge messages a "
                "second; the excess was dropped",
            )
            return
        if isinstance(message, inbound.Hello | inbound.Boot | inbound.Log | inbound.Heartbeat):
            await self._on_event(message)
        else:
            # A late answer to a cancelled or timed-out call, a replayed duplicate, or made up.
            self.dropped_messages += 1

    async def _answer(self, call: _Call, message: inbound.Reply, frame_chars: int) -> None:
        if isinstance(message, inbound.Chunk):
            stream = message.chunk.stream
            data = message.chunk.data
            if not self.redactor.empty:
                redactor = call.streams.get(stream)
                if redactor is None:
                    redactor = call.streams[stream] = self.redactor.stream()
                data = redactor.feed(data)
            if data:
                await self._chunk(call, stream, data)
            return
        if call.future.done():
            return
        for name, held in list(call.streams.items()):  # what each stream held back
            rest = held.flush()
            if rest:
                await self._chunk(call, name, rest)
        if not self.redactor.empty:
            message = self._redacted(message)
        try:
            call.future.set_result(
                inbound.answer_of(call.method, message, frame_chars, call.max_result_chars)
            )
        except RpcError as exc:
            call.future.set_exception(exc)

    async def _chunk(self, call: _Call, stream: str, data: str) -> None:
        if call.on_chunk is not None:
            try:
                await call.on_chunk(stream, data)
            except Exception:
                logger.exception("output callback of %s failed", call.method)

    def _redacted(
        self, message: inbound.Failure | inbound.Result
    ) -> inbound.Failure | inbound.Result:
        """An answer with every string in it redacted, before it is checked and cut (a value is
        replaced whole, never cut into a part that would not be found)."""
        if isinstance(message, inbound.Failure):
            text = self.redactor.redact(message.error.message)
            if text is message.error.message:
                return message
            return message.model_copy(
                update={"error": message.error.model_copy(update={"message": text})}
            )
        result = self.redactor.redact_tree(message.result)
        return (
            message if result is message.result else message.model_copy(update={"result": result})
        )

    def _redacted_event(self, message: inbound.Event) -> inbound.Event:
        """A boot or log message with its text redacted (its kinds and phases are left alone)."""
        field_name = "message" if isinstance(message, inbound.Boot) else "line"
        text = getattr(message, field_name, None)
        if not isinstance(message, inbound.Boot | inbound.Log) or not isinstance(text, str):
            return message
        redacted = self.redactor.redact(text)
        return message if redacted is text else message.model_copy(update={field_name: redacted})

    async def _on_event(self, message: inbound.Event) -> None:
        if not self.redactor.empty:
            message = self._redacted_event(message)
        if isinstance(message, inbound.Hello):
            if message.sandbox_id != self.sandbox_id:
                await self._refuse_claim()
                return
            self.hello = cast(HelloMessage, message.model_dump())
            if message.phase == "ready" and self.status == "booting":
                self._settle("ready")  # booted while the control plane was not listening
        elif isinstance(message, inbound.Boot):
            if message.phase == "failed" and self.status == "booting":
                self.failed_phase = self.phase
                self.boot_failure = cast(BootMessage, message.model_dump(exclude_none=True))
                self._settle("failed")
            elif message.phase == "ready" and self.status == "booting":
                self._settle("ready")
            self.phase = message.phase
            if message.message is not None and not await self._admit_log(message.message):
                message = message.model_copy(update={"message": None})
        elif isinstance(message, inbound.Log):
            self.log_tail.append(f"[{message.source}] {message.line}")
            if not await self._admit_log(message.line):
                return
        if self.on_message is not None:
            dumped = message.model_dump(exclude_none=not isinstance(message, inbound.Hello))
            try:
                await self.on_message(cast(RuntimeEvent, dumped))
            except Exception:
                logger.exception("on_message of sandbox %s failed", self.sandbox_id)

    async def _admit_log(self, line: str) -> bool:
        if self.boot_log.admit(line):
            return True
        budget = self.boot_log
        await self._report(
            "sandbox_log_truncated",
            f"boot log truncated: the sandbox's log reached its limit of {budget.max_lines:,} "
            f"lines or {budget.max_bytes:,} bytes; later lines are not kept",
        )
        return False

    async def _refuse_claim(self) -> None:
        await self._report(
            "bridge_message_refused", "a bridge connection claimed another sandbox and was closed"
        )
        socket, self._socket = self._socket, None
        if socket is not None:
            await close_quietly(socket, CLOSE_UNAUTHORIZED, "hello names another sandbox")

    async def _report(self, code: str, message: str) -> None:
        """Tell ``on_limit`` about ``code`` the first time only: one warning per box."""
        if code in self._reported:
            return
        self._reported.add(code)
        logger.warning("sandbox %s: %s", self.sandbox_id, message)
        if self.on_limit is not None:
            try:
                await self.on_limit(code, message)
            except Exception:
                logger.exception("on_limit of sandbox %s failed", self.sandbox_id)

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
