"""Webhook deliveries already processed, so a redelivered or replayed one is handled once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.errors import StoreConflict
from openinspect.store.tables import webhook_deliveries


class WebhookStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, provider: str, delivery_id: str, event: str) -> bool:
        """Record a delivery; False when it was seen before (the primary key decides, so two
        replicas racing on the same delivery cannot both win)."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    webhook_deliveries.insert().values(
                        provider=provider,
                        delivery_id=delivery_id,
                        event=event,
                        received_at=utcnow(),
                    )
                )
        except StoreConflict:
            return False
        return True

    async def release(self, provider: str, delivery_id: str) -> None:
        """Forget a delivery whose handling failed, so the sender's retry is processed."""
        async with self._engine.begin() as conn:
            await conn.execute(
                webhook_deliveries.delete().where(
                    webhook_deliveries.c.provider == provider,
                    webhook_deliveries.c.delivery_id == delivery_id,
                )
            )

    async def prune(self, keep: timedelta) -> int:
        """Drop records older than ``keep`` (``services.webhook_deliveries_keep_days``); the
        number dropped."""
        cutoff = utcnow() - keep
        async with self._engine.begin() as conn:
            result = await conn.execute(
                webhook_deliveries.delete().where(webhook_deliveries.c.received_at < cutoff)
            )
            return result.rowcount
