"""Delivery of the outbox (``store/outbox.py``): the one place GitHub reviews, reactions and
Linear activities are posted from.

An integration decides a post by writing an outbox row in the transaction that decided it (its
feed projection's cursor transaction, or its inbox row's) and then calls :func:`wake`. The
``outbox`` service (``services/outbox.py``, one server at a time) runs the integrations' feed
projections up to the feed's head and then :meth:`OutboxDelivery.deliver`, which hands each due
row to the :class:`Sender` of its ``source``:

- ``send(row)`` makes the post and returns what to keep (an id, a URL);
- before any **retry** (the row was attempted before) ``find(row)`` looks for the post the row
  already made, by the key it carries (a marker in a GitHub body, a Linear activity id derived
  from the key): a delivery that died between the provider's answer and our commit adopts that
  post instead of making a second one. So every post lands **once**.

A sender raises :class:`RetryLater` (a rate limit, an outage: that source pauses for the
given time and its rows wait), :class:`PermanentFailure` (a refusal that will not change: the
row is failed with the code and kept), or anything else (a retry with a doubling pause; after
``MAX_ATTEMPTS`` the row is failed with ``delivery_attempts_exhausted``). Rows of one target
(one pull request, one agent session) are posted in the order they were decided: a row waits
while an earlier row of its target waits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.bus import Bus
from openinspect.domain.events import utcnow
from openinspect.store.feed import FeedBatch
from openinspect.store.outbox import OutboxRow, OutboxStore

log = logging.getLogger(__name__)
OUTBOX_CHANNEL = "outbox"
"""Published after a transaction that wrote outbox rows commits: the delivery looks at once."""
MAX_ATTEMPTS = 10
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 300.0
BATCH = 100


class RetryLater(Exception):
    """The provider asks us to wait (a 429, a 5xx, no connection): the source pauses."""

    def __init__(self, seconds: float, code: str = "retry_later") -> None:
        super().__init__(code)
        self.seconds = max(0.0, min(seconds, RETRY_MAX_S))
        self.code = code


class PermanentFailure(Exception):
    """The provider refused the post for good (a 4xx that will not change)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Sender(Protocol):
    """Posts the rows of one ``source``."""

    source: str

    async def send(self, row: OutboxRow) -> dict[str, Any]:
        """Make the post; what to keep of the answer (an id, a URL)."""
        ...

    async def find(self, row: OutboxRow) -> dict[str, Any] | None:
        """The post ``row`` already made (found by its key), or None."""
        ...


Handler = Callable[[FeedBatch, AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class Projection:
    """An integration's feed consumer (``sessions.feed``): events → outbox rows, decided in the
    cursor's transaction. The ``outbox`` service runs it before each delivery pass."""

    consumer: str
    handler: Handler
    types: Collection[str] | None = None


async def wake(bus: Bus) -> None:
    """Tell the delivery that rows were committed (at most once: the poll catches a lost one)."""
    try:
        await bus.publish(OUTBOX_CHANNEL, "1")
    except Exception as exc:  # the bus is a hint; the service polls
        log.debug("outbox wake-up not sent: %s", exc)


def _target_key(row: OutboxRow) -> str:
    return row.source + ":" + json.dumps(row.target, sort_keys=True)


def retry_pause_s(attempts: int) -> float:
    """The pause after the ``attempts``-th failed attempt: 1 s, 2 s, 4 s… up to five minutes."""
    return float(min(RETRY_FIRST_S * 2 ** max(attempts - 1, 0), RETRY_MAX_S))


class OutboxDelivery:
    """One :meth:`deliver` pass after another (see the module docstring)."""

    def __init__(
        self,
        store: OutboxStore,
        senders: Mapping[str, Sender],
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._senders = dict(senders)
        self._now = now
        self._paused: dict[str, datetime] = {}
        """Source → until when its provider asked us to wait."""

    @property
    def sources(self) -> list[str]:
        return sorted(self._senders)

    async def deliver(self) -> float | None:
        """Post every due row; the seconds until the next row is due (None: none waits)."""
        now = self._now()
        active = [s for s in self.sources if self._paused.get(s, now) <= now]
        if active:
            rows = await self._store.due(now, BATCH, active)
            blocked = {_target_key(r) for r in await self._store.waiting(now, active)}
            for row in rows:
                target = _target_key(row)
                if target in blocked or self._paused.get(row.source, now) > now:
                    continue
                if not await self._deliver(row):
                    blocked.add(target)  # later rows of this target wait for this one
        return await self._next_due_s()

    async def _deliver(self, row: OutboxRow) -> bool:
        """True when the row was posted (or adopted) or given up."""
        sender = self._senders[row.source]
        attempts = await self._store.begin_attempt(row.id)
        try:
            found = await sender.find(row) if attempts > 0 else None
            result = found if found is not None else await sender.send(row)
        except RetryLater as wait:
            until = self._now() + timedelta(seconds=wait.seconds)
            self._paused[row.source] = until
            await self._store.record_retry(row.id, until, wait.code)
            log.warning("%s delivery paused %.1fs (%s)", row.source, wait.seconds, wait.code)
            return False
        except PermanentFailure as refused:
            await self._store.record_failed(row.id, refused.code)
            log.warning("%s post %s refused: %s", row.source, row.key, refused.code)
            return True
        except Exception as exc:
            if attempts + 1 >= MAX_ATTEMPTS:
                await self._store.record_failed(row.id, "delivery_attempts_exhausted")
                log.error(
                    "%s post %s given up after %d attempts", row.source, row.key, MAX_ATTEMPTS
                )
                return True
            until = self._now() + timedelta(seconds=retry_pause_s(attempts + 1))
            await self._store.record_retry(row.id, until, "delivery_failed")
            log.warning("%s post %s failed (%s); retrying", row.source, row.key, type(exc).__name__)
            return False
        await self._store.record_posted(row.id, result)
        if found is not None:
            log.info("%s post %s was made before a crash: adopted", row.source, row.key)
        return True

    async def _next_due_s(self) -> float | None:
        at = await self._store.next_due_at(self.sources)
        pauses = [until for until in self._paused.values() if until > self._now()]
        soonest = min([*pauses, *([at] if at is not None else [])], default=None)
        if soonest is None:
            return None
        return max((soonest - self._now()).total_seconds(), 0.0)
