"""Old webhook delivery ids are pruned after ``services.webhook_deliveries_keep_days``, by a
one-replica service the lifespan starts (its first pass at once); newer ones stay, so a
redelivery within the window is still recognised."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.controlplane import open_control_plane
from openinspect.domain.events import utcnow
from openinspect.settings import SandboxSettings, ServiceSettings, SessionSettings, Settings
from openinspect.store import Store
from openinspect.store.tables import webhook_deliveries

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
AGES_DAYS = {"fresh": 0.5, "two-days": 2.0, "ten-days": 10.0, "month": 30.0}


async def _deliveries(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(webhook_deliveries.c.delivery_id))
        return set(rows.scalars())


async def _seed(url: str) -> None:
    store = await Store.open(url)
    try:
        async with store.engine.begin() as conn:
            for delivery_id, days in AGES_DAYS.items():
                await conn.execute(
                    webhook_deliveries.insert().values(
                        provider="github",
                        delivery_id=delivery_id,
                        event="push",
                        received_at=utcnow() - timedelta(days=days),
                    )
                )
    finally:
        await store.close()


async def test_the_server_prunes_deliveries_older_than_the_setting(tmp_path: Path) -> None:
    keep_days, kept = 3.0, {"fresh", "two-days"}
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        services=ServiceSettings(webhook_deliveries_keep_days=keep_days),
    )
    await _seed(settings.resolved_database_url)
    async with open_control_plane(settings) as plane:
        for _ in range(500):
            if await _deliveries(plane.store) == kept:
                break
            await asyncio.sleep(0.01)
        assert await _deliveries(plane.store) == kept
        assert not await plane.store.webhooks.claim("github", "fresh", "push")  # still known
        assert await plane.store.webhooks.claim("github", "month", "push")  # forgotten


async def test_turned_off_nothing_is_pruned(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        services=ServiceSettings(webhook_prune_enabled=False),
    )
    await _seed(settings.resolved_database_url)
    async with open_control_plane(settings) as plane:
        await asyncio.sleep(0.2)
        assert await _deliveries(plane.store) == set(AGES_DAYS)


def test_a_keep_window_under_a_day_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        ServiceSettings(webhook_deliveries_keep_days=0.5)
