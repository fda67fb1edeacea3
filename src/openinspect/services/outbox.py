"""``outbox``: GitHub and Linear posts, one server at a time.

One loop: the integrations' feed projections (``integrations.outbox.Projection``: the GitHub
bot's, the Linear agent's) turn sessions' events into outbox rows in their cursors'
transactions; then :class:`~openinspect.integrations.outbox.OutboxDelivery` posts what was
committed, each row once. It wakes on every durable event (the feed's bus channel), on
``OUTBOX_CHANNEL`` (an inbound handler wrote rows: a reaction, Linear's first thought), when a
paused row is due, and at the latest every ``POLL_S``. On with ``services.outbox_enabled`` and
at least one sender (an integration that is configured).
"""

from __future__ import annotations

from collections.abc import Sequence

from openinspect.bus import Bus
from openinspect.integrations.outbox import OUTBOX_CHANNEL, OutboxDelivery
from openinspect.services.registry import ServiceContext
from openinspect.services.wake import run_woken
from openinspect.sessions.eventlog import FEED_CHANNEL
from openinspect.sessions.feed import FeedConsumer

POLL_S = 1.0


class OutboxService:
    name = "outbox"
    one_replica = True
    interval_s = POLL_S

    def __init__(
        self,
        consumers: Sequence[FeedConsumer],
        delivery: OutboxDelivery,
        bus: Bus,
        *,
        poll_s: float = POLL_S,
    ) -> None:
        self.consumers = list(consumers)
        self.delivery = delivery
        self._bus = bus
        self._poll_s = poll_s

    async def step(self) -> float | None:
        """Project the feed up to its head, then deliver; the seconds until a row is due."""
        for consumer in self.consumers:
            while await consumer.step():
                pass
        return await self.delivery.deliver()

    async def run_once(self) -> None:
        await run_woken(
            self.step,
            self._bus,
            (FEED_CHANNEL, OUTBOX_CHANNEL),
            poll_s=self._poll_s,
            name=self.name,
        )


def outbox(context: ServiceContext) -> OutboxService | None:
    bus = context.bus
    if not context.settings.services.outbox_enabled or bus is None or not context.outbox_senders:
        return None
    consumers = [
        FeedConsumer(context.store, bus, p.consumer, p.handler, types=p.types, start="end")
        for p in context.outbox_projections
    ]
    delivery = OutboxDelivery(context.store.outbox, context.outbox_senders)
    return OutboxService(consumers, delivery, bus)
