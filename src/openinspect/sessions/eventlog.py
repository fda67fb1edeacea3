"""Append + fan-out: persist a durable event with the next gap-free seq, then publish it.

Every durable event goes in with the state change it announces (a ``Change``, the unit of work:
``store/changes.py``), and the database assigns its seq inside the insert's transaction
(``store/events.py``).

Group commit: appends are queued, and one flusher per event log writes whatever is queued as one
transaction (up to ``max_batch`` changes), then publishes each stored event in queue order, then
answers its writer. Persist-before-publish holds for every event; a session's events are stored
and published in the order they were appended; a change that fails (its guard, its fence, a bad
row) fails alone. Under load one commit carries many sessions' events, which is what lets one
process store thousands of events a second; a lone writer pays one transaction per event as
before.

Ephemeral events carry the seq of the last durable event: the flusher keeps each session's last
stored seq (a copy derived from the commits, read from ``sessions.last_seq`` the first time), in
a bounded LRU that ``forget`` drops a session from when it leaves this process.

With a ``SecretRedaction``, every event is redacted with its session's secret values before it
is stored or published (``secrets.redact``); the flusher does it, so appends keep their order.

Bus messages are JSON envelopes: ``{"kind": "event", "event": {...}}`` or
``{"kind": "presence", "participants": [...]}``. After each flush, the ``feed`` channel gets the
last global position written (decimal text): a wake-up for feed consumers (``sessions/feed.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from openinspect.bus import Bus
from openinspect.domain.events import Event, is_ephemeral
from openinspect.secrets.redact import SecretRedaction
from openinspect.store import Store
from openinspect.store.changes import Appended, Change, Refused
from openinspect.store.leases import Lease

FEED_CHANNEL = "feed"
MAX_BATCH = 500
"""Changes per transaction at most: enough to carry a busy server's events, small enough that
one flush never holds the database for long."""
LAST_SEQ_CACHE_MAX = 10_000
"""Sessions whose last seq this process remembers (for ephemeral events) at most."""

log = logging.getLogger(__name__)


def channel(session_id: str) -> str:
    return f"session:{session_id}"


class EventLog:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        max_batch: int = MAX_BATCH,
        redaction: SecretRedaction | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._bus = bus
        self._redaction = redaction
        self._max_batch = max_batch
        self._last_seq: OrderedDict[str, int] = OrderedDict()
        self._queue: list[tuple[Change, asyncio.Future[Appended | Refused]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def bus(self) -> Bus:
        """The bus the log publishes on (integrations wake their delivery through it)."""
        return self._bus

    async def commit(self, change: Change) -> Event | None:
        """Persist ``change`` (an event and the state change it announces) in one transaction,
        then publish its event; returns the event as stored. None when its prompt guard failed:
        nothing was written. Raises what stopped it otherwise (``LeaseLost``,
        ``NotFoundError``…), with nothing of it written."""
        if is_ephemeral(change.event):
            raise ValueError("an ephemeral event is published, never committed")
        future: asyncio.Future[Appended | Refused] = asyncio.get_running_loop().create_future()
        self._queue.append((change, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="event log flush")
        outcome = await future
        return outcome.event if isinstance(outcome, Appended) else None

    async def append(
        self,
        event: Event,
        *,
        session_values: dict[str, Any] | None = None,
        fence: Lease | None = None,
    ) -> Event:
        """Persist ``event`` with the next seq, then publish it. Returns the stored event.
        ``session_values`` (columns of the session row) are written in the event's
        transaction; ``fence`` (the owner's lease) is checked in it, so a stale owner's
        durable append raises ``LeaseLost`` and is neither stored nor published."""
        if is_ephemeral(event):
            if session_values:
                raise ValueError("an ephemeral event cannot carry a state change")
            await self.publish(event)
            return event
        stored = await self.commit(Change(event, session_values or {}, fence=fence))
        assert stored is not None  # no prompt, no guard
        return stored

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                changes = [change for change, _ in batch]
                if self._redaction is not None:
                    changes = [await self._redaction.redact_change(c) for c in changes]
                outcomes = await self._store.events.commit(changes)
            except BaseException as exc:  # cancelled (the loop is closing), or a bug
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                raise
            last_pos: int | None = None
            for (change, future), outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not future.done():
                        future.set_exception(outcome)
                    continue
                if isinstance(outcome, Appended) and outcome.fresh:
                    session_id = change.event.session_id
                    self._remember(session_id, outcome.event.seq)
                    last_pos = max(outcome.pos, last_pos or 0)
                    try:
                        await self._bus.publish(channel(session_id), _envelope(outcome.data))
                    except Exception as exc:  # stored; its writer learns the bus failed
                        if not future.done():
                            future.set_exception(exc)
                        continue
                if not future.done():
                    future.set_result(outcome)
            if last_pos is not None:
                try:
                    await self._bus.publish(FEED_CHANNEL, str(last_pos))
                except Exception as exc:  # consumers poll as well
                    log.warning("feed wake-up not published: %s", exc)

    async def publish(self, event: Event) -> None:
        """Publish an ephemeral event; it carries the seq of the last durable event."""
        if self._redaction is not None:
            event = await self._redaction.redact_event(event)
        seq = self._last_seq.get(event.session_id)
        if seq is None:
            seq = await self._store.events.last_seq(event.session_id)
            self._remember(event.session_id, seq)
        stamped = event.model_copy(update={"seq": seq})
        await self._bus.publish(channel(event.session_id), _envelope(stamped.model_dump_json()))

    def _remember(self, session_id: str, seq: int) -> None:
        self._last_seq[session_id] = seq
        self._last_seq.move_to_end(session_id)
        if len(self._last_seq) > LAST_SEQ_CACHE_MAX:
            self._last_seq.popitem(last=False)

    def forget(self, session_id: str) -> None:
        """Drop what this process remembers of the session (it left: evicted or moved)."""
        self._last_seq.pop(session_id, None)
        if self._redaction is not None:
            self._redaction.forget(session_id)

    async def publish_presence(self, session_id: str, participants: list[dict[str, Any]]) -> None:
        message = json.dumps({"kind": "presence", "participants": participants})
        await self._bus.publish(channel(session_id), message)

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Listen to a session's channel (see ``Bus.subscribe``)."""
        return self._bus.subscribe(channel(session_id))


def _envelope(event_json: str) -> str:
    return f'{{"kind":"event","event":{event_json}}}'
