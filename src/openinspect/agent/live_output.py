"""A running command's output, live: coalesced into ephemeral ``tool-output-delta`` events.

The bridge hands each output chunk to :meth:`LiveOutput.add`, which only buffers (it runs on the
bridge's reader, which must not wait for the bus). The first chunk goes out at once, then at most
one delta per call every ``interval_s`` carries what arrived meanwhile. A session's deltas share
one :class:`RateBudget` (``chars_per_s``, with a burst of one second's worth): a command printing
faster than that, or more than ``TOOL_OUTPUT_DELTA_MAX_CHARS`` in one interval, has its deltas
carry the newest output and say how much was left out (``skipped_chars``). Deltas are never
stored; the durable ``tool-result`` keeps the output (head and tail) once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from openinspect.domain.events import TOOL_OUTPUT_DELTA_MAX_CHARS, Event, ToolOutputDelta

log = logging.getLogger(__name__)

Publish = Callable[[Event], Awaitable[None]]
Clock = Callable[[], float]


class RateBudget:
    """A token bucket of characters: ``chars_per_s`` refill, at most one second's worth held."""

    def __init__(self, chars_per_s: float, clock: Clock = time.monotonic) -> None:
        self._rate = chars_per_s
        self._clock = clock
        self._tokens = chars_per_s
        self._at = clock()

    def take(self, want: int) -> int:
        """Take up to ``want`` characters; returns how many may be sent now."""
        now = self._clock()
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        granted = max(0, min(want, int(self._tokens)))
        self._tokens -= granted
        return granted


class LiveOutput:
    """One tool call's output on its way to people. ``add`` buffers; a task publishes."""

    def __init__(
        self,
        publish: Publish,
        *,
        session_id: str,
        prompt_id: str,
        call_id: str,
        interval_s: float,
        budget: RateBudget,
    ) -> None:
        self._publish = publish
        self._session_id = session_id
        self._prompt_id = prompt_id
        self._call_id = call_id
        self._interval_s = interval_s
        self._budget = budget
        self._pending: list[str] = []
        self._pending_chars = 0
        self._skipped = 0  # left out before what is pending
        self._index = 0
        self._last_flush = -float("inf")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._sending = asyncio.Lock()  # one delta at a time: they reach the bus in order

    def add(self, data: str) -> None:
        """Buffer output; schedules a delta. Cheap and never waits."""
        if self._closed or not data:
            return
        self._pending.append(data)
        self._pending_chars += len(data)
        if self._pending_chars > 2 * TOOL_OUTPUT_DELTA_MAX_CHARS:
            # Only the newest part of a window is ever sent: keep memory bounded.
            self._take_newest(TOOL_OUTPUT_DELTA_MAX_CHARS)
        if self._task is None:
            self._task = asyncio.create_task(self._flush_later(), name=f"live {self._call_id}")

    async def close(self, *, flush: bool) -> None:
        """Stop publishing; with ``flush``, send what is pending first (a command that ended)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if flush and self._pending_chars:
            await self._flush()

    def _take_newest(self, keep: int) -> str:
        text = "".join(self._pending)
        self._skipped += max(0, len(text) - keep)
        text = text[-keep:] if keep else ""
        self._pending = [text] if text else []
        self._pending_chars = len(text)
        return text

    async def _flush_later(self) -> None:
        wait_s = self._last_flush + self._interval_s - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        self._task = None
        await self._flush()

    async def _flush(self) -> None:
        async with self._sending:
            await self._send()

    async def _send(self) -> None:
        self._last_flush = time.monotonic()
        want = min(self._pending_chars, TOOL_OUTPUT_DELTA_MAX_CHARS)
        data = self._take_newest(self._budget.take(want))
        skipped, self._skipped = self._skipped, 0
        self._pending, self._pending_chars = [], 0
        if not data:
            self._skipped = skipped  # nothing sent: the next delta says what it missed
            return
        delta = ToolOutputDelta(
            session_id=self._session_id,
            prompt_id=self._prompt_id,
            call_id=self._call_id,
            index=self._index,
            data=data,
            skipped_chars=skipped,
        )
        self._index += 1
        try:
            await self._publish(delta)
        except Exception:  # people miss some live output; the durable result still has it
            log.warning("could not publish live output of %s", self._call_id, exc_info=True)
