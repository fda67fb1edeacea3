"""RPC dispatch: one task per request, cancellation, and exactly-once execution across
reconnects (the control plane re-sends unanswered requests; a running id is ignored and a recently
finished one gets its answer again)."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Mapping

from .bridge import Outbox
from .executor import Executor
from .protocol import ChunkMessage, ErrorMessage, ResultMessage, RpcFailure, Stream

logger = logging.getLogger("openinspect.runtime.rpc")

RECENT_ANSWERS = 256
"""Finished requests whose answer is kept to re-send to a control plane that missed it."""

Answer = ResultMessage | ErrorMessage


class RpcServer:
    """Runs requests from the control plane on an :class:`Executor`, answering via the outbox."""

    def __init__(self, executor: Executor, outbox: Outbox) -> None:
        self._executor = executor
        self._outbox = outbox
        self._running: dict[str, asyncio.Task[None]] = {}
        self._answers: collections.OrderedDict[str, Answer] = collections.OrderedDict()
        self._resends: set[asyncio.Task[bool]] = set()
        self.last_activity = time.monotonic()
        """When a request last arrived or finished (what hibernation waits out)."""

    @property
    def busy(self) -> bool:
        """Whether a request runs or an answer waits to be queued."""
        return bool(self._running or self._resends)

    def handle(self, message: Mapping[str, object]) -> None:
        """Act on one control-plane message: a request or a cancel (never blocks)."""
        self.last_activity = time.monotonic()
        cancel = message.get("cancel")
        if isinstance(cancel, str):
            self.cancel(cancel)
            return
        into = message.get("input")
        if isinstance(into, str):
            data = message.get("data")
            self._executor.feed(into, data if isinstance(data, str) else None)
            return
        rid, method, params = message.get("id"), message.get("method"), message.get("params", {})
        if not isinstance(rid, str) or not isinstance(method, str) or not isinstance(params, dict):
            logger.warning("ignoring a malformed request: %.200r", message)
            if isinstance(rid, str):
                failure = RpcFailure(
                    "invalid_params", "a request needs a string 'method' and an object 'params'"
                )
                self._send_later({"id": rid, "error": failure.body()})
            return
        if rid in self._running:
            return
        if (answer := self._answers.get(rid)) is not None:
            self._send_later(answer)
            return
        if method == "pipe":  # its input may come before its task runs
            self._executor.expect(rid)
        task = asyncio.create_task(self._run(rid, method, params))
        self._running[rid] = task
        # A task cancelled before it starts never reaches its own cleanup.
        task.add_done_callback(lambda _: self._running.pop(rid, None))

    def cancel(self, rid: str) -> None:
        """Cancel a running request; its ``exec`` process group is killed."""
        task = self._running.get(rid)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Cancel every running request and wait until their processes are gone."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._resends, return_exceptions=True)

    async def _run(self, rid: str, method: str, params: dict[str, object]) -> None:
        dropped_chars = 0

        async def emit(stream: Stream, data: str) -> None:
            nonlocal dropped_chars
            chunk: ChunkMessage = {"id": rid, "chunk": {"stream": stream, "data": data}}
            if not await self._outbox.put(chunk, droppable=True):
                dropped_chars += len(data)

        answer: Answer
        try:
            result = await self._executor.run(method, params, emit, rid=rid)
            answer = {"id": rid, "result": dict(result)}
        except RpcFailure as failure:
            answer = {"id": rid, "error": failure.body()}
        except asyncio.CancelledError:
            # Our own task: cancelling it means "stop this request", so answer instead of dying.
            answer = {
                "id": rid,
                "error": {"code": "cancelled", "message": f"{method} was cancelled"},
            }
        except Exception as exc:  # a bug here must not take the runtime down
            logger.exception("%s failed unexpectedly", method)
            answer = {
                "id": rid,
                "error": {"code": "internal", "message": f"{method} failed: {exc}"},
            }
        if dropped_chars:
            note: ChunkMessage = {
                "id": rid,
                "chunk": {
                    "stream": "stderr",
                    "data": f"\n[openinspect: {dropped_chars} characters of output were dropped "
                    "while the control plane was unreachable]\n",
                },
            }
            await self._outbox.put(note)
        # Recorded as finished before it is queued: a replay from now on gets this answer.
        self._answers[rid] = answer
        self._running.pop(rid, None)
        self.last_activity = time.monotonic()
        while len(self._answers) > RECENT_ANSWERS:
            self._answers.popitem(last=False)
        await self._outbox.put(answer)

    def _send_later(self, message: Answer) -> None:
        task = asyncio.create_task(self._outbox.put(message))
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)
