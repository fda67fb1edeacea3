"""``slack_outbound``: Slack threads kept current, one server at a time.

One loop: the feed consumer ``slack_threads`` (``integrations/slack/outbound.py``) projects
sessions' events into their threads' states and the outbox, in its cursor's transaction; then
delivery (``integrations/slack/delivery.py``) makes the Slack calls for what was committed.
It wakes on every durable event (the feed's bus channel), on a kick on ``slack-outbox`` (the
inbound side wrote a notice or a thread row), when a throttled status edit is due, and at the
latest every ``POLL_S``. On when ``services.slack_outbound_enabled`` and Slack is configured.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from openinspect.bus import Bus
from openinspect.services.registry import ServiceContext
from openinspect.services.wake import run_woken
from openinspect.sessions.eventlog import FEED_CHANNEL
from openinspect.sessions.feed import FeedConsumer

if TYPE_CHECKING:  # slack_sdk and aiohttp load only where Slack is on (``build``)
    from openinspect.integrations.slack.delivery import SlackDelivery

log = logging.getLogger(__name__)
POLL_S = 1.0


class SlackOutboundService:
    name = "slack_outbound"
    one_replica = True
    interval_s = POLL_S

    def __init__(
        self, consumer: FeedConsumer, delivery: SlackDelivery, bus: Bus, *, poll_s: float = POLL_S
    ) -> None:
        self.consumer = consumer
        self.delivery = delivery
        self._bus = bus
        self._poll_s = poll_s

    async def step(self) -> float | None:
        """Project the feed up to its head, then deliver; the seconds until an edit is due."""
        while await self.consumer.step():
            pass
        return await self.delivery.deliver()

    async def run_once(self) -> None:
        """The service's own loop (never returns; the runner cancels it)."""
        from openinspect.integrations.slack.delivery import OUTBOX_CHANNEL

        await run_woken(
            self.step,
            self._bus,
            (FEED_CHANNEL, OUTBOX_CHANNEL),
            poll_s=self._poll_s,
            name=self.name,
        )


def build(context: ServiceContext, bus: Bus) -> SlackOutboundService:
    from openinspect.integrations.slack.client import web_client
    from openinspect.integrations.slack.delivery import SlackDelivery
    from openinspect.integrations.slack.outbound import CONSUMER, FEED_TYPES, SlackOutbound

    settings = context.settings
    outbound = SlackOutbound(context.store, settings)
    consumer = FeedConsumer(
        context.store, bus, CONSUMER, outbound.on_feed, types=FEED_TYPES, start="end"
    )
    delivery = SlackDelivery(
        context.store.slack_threads, context.store.engine, settings, web_client(settings.slack)
    )
    return SlackOutboundService(consumer, delivery, bus)


def slack_outbound(context: ServiceContext) -> SlackOutboundService | None:
    settings = context.settings
    bus = context.bus
    if not settings.slack.enabled or not settings.services.slack_outbound_enabled or bus is None:
        return None
    return build(context, bus)
