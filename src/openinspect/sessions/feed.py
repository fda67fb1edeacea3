"""Feed consumers: read the global event feed from a durable, named cursor and hand each batch to a
handler. Outbound notifiers (Slack threads, Linear activities, GitHub checks) are consumers.

The handler's contract
----------------------
``handler(batch, conn)`` runs inside the claim's transaction (``store/feed.py``). What it writes
through ``conn`` commits together with the cursor move or not at all, so **effects kept in this
database happen exactly once**, whatever crashes when. Effects outside the database (an HTTP call)
are **at least once**: a process that dies after the call and before the commit leaves the cursor
where it was, and the batch is handled again. Every such call should carry
``idempotency_key(consumer, pos)`` (Slack's ``client_msg_id``, a check run's ``external_id``, an
``Idempotency-Key`` header) so that the receiver drops the repeat, and record what it got back
(a thread's ``ts``) through ``conn``. A handler that raises rolls its batch back; the consumer
logs it and retries the same batch with a growing pause, so a handler that cannot ever handle an
event must decide itself to skip it (and say so in its own records).

One name, several processes: a claim excludes every other holder of the name, so two processes
never handle the same event at the same time, and the one that commits first wins; the others
idle until it stops. Different names are independent and each sees every event.

Wake-ups: ``EventLog`` publishes every durable event's position on ``FEED_CHANNEL``; the consumer
listens there and also polls every ``poll_interval_s`` for what the bus did not carry (the bus is
at most once, and an in-process bus does not reach other replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection

from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.bus import Bus
from openinspect.sessions.eventlog import FEED_CHANNEL
from openinspect.store import Store
from openinspect.store.feed import FeedBatch, Start, check_name
from openinspect.timeouts import wait_for

logger = logging.getLogger("openinspect.sessions.feed")

Handler = Callable[[FeedBatch, AsyncConnection], Awaitable[None]]

BATCH_SIZE = 100
POLL_INTERVAL_S = 2.0
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
RESUBSCRIBE_S = 5.0


def idempotency_key(consumer: str, pos: int) -> str:
    """The key an outbound call for the event at ``pos`` carries: the same on every retry,
    different for every consumer and event."""
    return f"openinspect-feed:{consumer}:{pos}"


class FeedConsumer:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        name: str,
        handler: Handler,
        *,
        types: Collection[str] | None = None,
        start: Start = "end",
        batch_size: int = BATCH_SIZE,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        """``start`` is where a new cursor begins (``end``: events from now on); an existing
        cursor resumes where it was. ``types`` limits the batches to those event types."""
        self.name = check_name(name)
        self._store = store
        self._bus = bus
        self._handler = handler
        self._types = types
        self._start: Start = start
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._has_cursor = False

    async def step(self) -> bool:
        """Handle one batch. True when the cursor moved (there may be more); False when the
        consumer is caught up or another process holds the cursor."""
        feed = self._store.feed
        if not self._has_cursor:
            await feed.cursor(self.name, start=self._start)
            self._has_cursor = True
        # Unlocked look first: an idle consumer never takes the claim (the write lock on SQLite).
        if await feed.cursor(self.name) >= await feed.head():
            return False
        async with feed.claim(self.name) as claim:
            if claim is None:
                return False
            batch = await claim.read(self._batch_size, self._types)
            if batch.entries:
                await self._handler(batch, claim.conn)
            claim.advance(batch.upto)
            return claim.pos != claim.committed

    async def run(self) -> None:
        """Handle batches until cancelled, waking on bus notifications and every
        ``poll_interval_s``. Handler and store failures are logged and retried."""
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(wake))
        retry_s = RETRY_FIRST_S
        try:
            while True:
                wake.clear()
                try:
                    while await self.step():
                        pass
                except Exception:
                    logger.exception(
                        "feed consumer %s failed; retrying in %.1fs", self.name, retry_s
                    )
                    await asyncio.sleep(retry_s)
                    retry_s = min(retry_s * 2, RETRY_MAX_S)
                    continue
                retry_s = RETRY_FIRST_S
                with contextlib.suppress(TimeoutError):
                    await wait_for(wake.wait(), self._poll_interval_s)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self, wake: asyncio.Event) -> None:
        while True:
            try:
                async with self._bus.subscribe(FEED_CHANNEL) as messages:
                    wake.set()  # whatever came before the subscription
                    async for _ in messages:
                        wake.set()
            except Exception as exc:  # the poll carries on; subscribe again later
                logger.warning("feed consumer %s lost the bus (%s)", self.name, exc)
            await asyncio.sleep(RESUBSCRIBE_S)
