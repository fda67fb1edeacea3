"""Append + fan-out: persist a durable event with the next gap-free seq, then publish it.

The database assigns each event's seq inside the insert's transaction (``store/events.py``); a
per-session lock keeps store order and publish order the same within this process, and the seq
last stored here is what ephemeral events carry. Neither grows with every session ever written:
a lock lives while someone holds or waits for it, and the last seqs are a bounded LRU
(``forget`` drops one when its session leaves this process).
Bus messages are JSON envelopes: ``{"kind": "event", "event": {...}}`` or
``{"kind": "presence", "participants": [...]}``. After each durable event, the ``feed`` channel
gets its global position (decimal text): a wake-up for feed consumers (``sessions/feed.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from openinspect.bus import Bus
from openinspect.domain.events import Event, dump_event, is_ephemeral
from openinspect.store import Store
from openinspect.store.leases import Lease

FEED_CHANNEL = "feed"
LAST_SEQ_CACHE_MAX = 10_000
"""Sessions whose last seq this process remembers (for ephemeral events) at most."""


@dataclass
class _SessionLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def channel(session_id: str) -> str:
    return f"session:{session_id}"


class EventLog:
    def __init__(self, store: Store, bus: Bus) -> None:
        self._store = store
        self._bus = bus
        self._last_seq: OrderedDict[str, int] = OrderedDict()
        self._locks: dict[str, _SessionLock] = {}

    @asynccontextmanager
    async def _locked(self, session_id: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(session_id, _SessionLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[session_id]

    def _remember(self, session_id: str, seq: int) -> None:
        self._last_seq[session_id] = seq
        self._last_seq.move_to_end(session_id)
        if len(self._last_seq) > LAST_SEQ_CACHE_MAX:
            self._last_seq.popitem(last=False)

    def forget(self, session_id: str) -> None:
        """Drop what this process remembers of the session (it left: evicted or moved)."""
        self._last_seq.pop(session_id, None)

    async def _seq(self, session_id: str) -> int:
        seq = self._last_seq.get(session_id)
        if seq is None:
            seq = await self._store.events.last_seq(session_id)
            self._remember(session_id, seq)
        return seq

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
        if session_values and is_ephemeral(event):
            raise ValueError("an ephemeral event cannot carry a state change")
        if is_ephemeral(event):
            await self.publish(event)
            return event
        async with self._locked(event.session_id):
            stored, pos = await self._store.events.append(
                event, session_values=session_values, fence=fence
            )
            self._remember(event.session_id, stored.seq)
            await self._bus.publish(channel(event.session_id), _envelope("event", stored))
            await self._bus.publish(FEED_CHANNEL, str(pos))
        return stored

    async def publish(self, event: Event) -> None:
        """Publish an ephemeral event; it carries the seq of the last durable event."""
        seq = await self._seq(event.session_id)
        await self._bus.publish(
            channel(event.session_id), _envelope("event", event.model_copy(update={"seq": seq}))
        )

    async def publish_presence(self, session_id: str, participants: list[dict[str, Any]]) -> None:
        message = json.dumps({"kind": "presence", "participants": participants})
        await self._bus.publish(channel(session_id), message)

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Listen to a session's channel (see ``Bus.subscribe``)."""
        return self._bus.subscribe(channel(session_id))


def _envelope(kind: str, event: Event) -> str:
    return json.dumps({"kind": kind, "event": dump_event(event)})
