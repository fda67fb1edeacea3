"""The pub/sub seam.

A ``Bus`` carries JSON text on named channels (one per session). Delivery is at-most-once and
in publish order per channel; durability lives in the store, so a subscriber that falls behind is
cut off (its iterator raises ``SubscriberOverflow``) and must resync from the event log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

SUBSCRIBER_QUEUE_MAX = 10_000


class SubscriberOverflow(Exception):
    """A subscriber fell more than ``SUBSCRIBER_QUEUE_MAX`` messages behind and was dropped."""


class Bus(Protocol):
    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every current subscriber of ``channel``. Never blocks on a slow
        subscriber."""
        ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Listen on ``channel``. Messages published after the context is entered are delivered;
        the subscription ends when the context exits."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...
