"""Pruning of old webhook delivery ids, one server at a time.

Delivery ids are kept (``store.webhooks``) so a redelivered or replayed webhook is handled once;
past ``services.webhook_deliveries_keep_days`` they are deleted, every
``services.webhook_prune_interval_s``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from openinspect.services.registry import ServiceContext
from openinspect.store.webhooks import WebhookStore

log = logging.getLogger(__name__)


class WebhookPrune:
    name = "webhook_prune"
    one_replica = True

    def __init__(self, webhooks: WebhookStore, *, keep: timedelta, interval_s: float) -> None:
        self._webhooks = webhooks
        self._keep = keep
        self.interval_s = interval_s

    async def run_once(self) -> None:
        deleted = await self._webhooks.prune(self._keep)
        if deleted:
            log.info("webhook_prune: %d old delivery ids deleted", deleted)


def webhook_prune(context: ServiceContext) -> WebhookPrune | None:
    settings = context.settings.services
    if not settings.webhook_prune_enabled:
        return None
    return WebhookPrune(
        context.store.webhooks,
        keep=timedelta(days=settings.webhook_deliveries_keep_days),
        interval_s=settings.webhook_prune_interval_s,
    )
