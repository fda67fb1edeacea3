"""Append + fan-out: persist a durable event with the next gap-free seq, then publish it.

The database assigns each event's seq inside the insert's transaction (``store/events.py``); a
per-session lock keeps store order and publish order the same within this process, and the seq
last stored here is what ephemeral events carry.
Bus messages are JSON envelopes: ``{"kind": "event", "event": {...}}`` or
``{"kind": "presence", "participants": [...]}``. After each durable event, the ``feed`` channel
gets its global position (decimal text): a wake-up for feed consumers (``sessions/feed.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from openinspect.bus import Bus
from openinspect.domain.events import Event, dump_event, is_ephemeral
from openinspect.store import Store
from openinspect.store.leases import Lease

FEED_CHANNEL = "feed"


def channel(session_id: str) -> str:
    return f"session:{session_id}"


class EventLog:
    def __init__(self, store: Store, bus: Bus) -> None:
        self._store = store
        self._bus = bus
        self._last_seq: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def _seq(self, session_id: str) -> int:
        if session_id not in self._last_seq:
            self._last_seq[session_id] = await self._store.events.last_seq(session_id)
        return self._last_seq[session_id]

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
        async with self._lock(event.session_id):
            stored, pos = await self._store.events.append(
                event, session_values=session_values, fence=fence
            )
            self._last_seq[event.session_id] = stored.seq
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
