"""Leases with fencing tokens, on SQLite and on the real Postgres: a free or expired lease is
taken with a bigger fence, renewed only by its current holder, released for the next one, and
when many replicas race for it exactly one wins. A write guarded by a lost lease is refused and
rolled back with its transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.errors import InvalidInput, LeaseLost
from openinspect.store import Store
from openinspect.store.leases import Lease, assert_held, db_now_ms
from openinspect.store.tables import leases, webhook_deliveries
from tests.store.test_migrations import throwaway_pg_database

TTL_S = 1.0
"""Long enough that a loaded machine does not lose a lease between two calls."""
RACE_TTL_S = 10.0
RACERS = 12


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        else:
            url = await stack.enter_async_context(throwaway_pg_database())
        opened = await Store.open(url)
        stack.push_async_callback(opened.close)
        yield opened


async def expire_lease(store: Store, name: str) -> None:
    """Make the lease run out now (as if its TTL passed), without touching holder or fence."""
    async with store.engine.begin() as conn:
        await conn.execute(
            leases.update().where(leases.c.name == name).values(expires_at_ms=db_now_ms() - 1)
        )


async def test_acquire_renew_release_and_the_fence(store: Store) -> None:
    first = await store.leases.acquire("svc", "a", TTL_S)
    assert first is not None and first.fence == 1 and first.holder == "a"
    assert await store.leases.acquire("svc", "b", TTL_S) is None  # held
    assert await store.leases.acquire("svc", "a", TTL_S) is None  # held, even for its holder
    assert await store.leases.renew(first, TTL_S)

    await expire_lease(store, "svc")
    second = await store.leases.acquire("svc", "b", TTL_S)
    assert second is not None and second.fence > first.fence
    assert not await store.leases.renew(first, TTL_S)  # the old holder lost it for good
    assert not await store.leases.release(first)
    assert await store.leases.current("svc") == Lease(
        "svc", "b", second.fence, second.expires_at_ms
    )

    assert await store.leases.release(second)
    assert not await store.leases.renew(second, TTL_S)  # a released lease stays released
    third = await store.leases.acquire("svc", "c", TTL_S)
    assert third is not None and third.fence > second.fence + 1


async def test_a_lease_runs_out_by_the_database_clock(store: Store) -> None:
    held = await store.leases.acquire("svc", "a", TTL_S)
    assert held is not None
    assert await store.leases.acquire("svc", "b", TTL_S) is None
    await asyncio.sleep(TTL_S + 0.1)
    taken = await store.leases.acquire("svc", "b", TTL_S)
    assert taken is not None and taken.fence == held.fence + 1


async def test_a_renewal_pushes_the_expiry_back(store: Store) -> None:
    held = await store.leases.acquire("svc", "a", TTL_S)
    assert held is not None
    for _ in range(4):  # longer than the TTL in all, renewed within it each time
        await asyncio.sleep(TTL_S / 3)
        assert await store.leases.renew(held, TTL_S)
    assert await store.leases.acquire("svc", "b", TTL_S) is None


async def test_concurrent_acquires_have_one_winner(store: Store) -> None:
    """Fresh and expired alike: many replicas (each its own connection) race, one wins."""
    for _round in range(2):
        results = await asyncio.gather(
            *(store.leases.acquire("race", f"holder-{i}", RACE_TTL_S) for i in range(RACERS))
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, results
        await expire_lease(store, "race")
    current = await store.leases.current("race")
    assert current is not None and current.fence == 2


async def test_a_write_under_a_lost_lease_is_refused_and_rolled_back(store: Store) -> None:
    old = await store.leases.acquire("svc", "a", TTL_S)
    assert old is not None
    async with store.engine.begin() as conn:  # while held: the write goes through
        await assert_held(conn, old)
        await conn.execute(_delivery("kept"))
    await expire_lease(store, "svc")
    new = await store.leases.acquire("svc", "b", TTL_S)
    assert new is not None

    async def stale_write() -> None:
        async with store.engine.begin() as conn:
            await conn.execute(_delivery("stale"))
            await assert_held(conn, old)

    with pytest.raises(LeaseLost) as caught:
        await stale_write()
    assert caught.value.code == "lease_lost" and caught.value.status == 409
    async with store.engine.connect() as conn:
        ids = (await conn.execute(sa.select(webhook_deliveries.c.delivery_id))).scalars().all()
    assert ids == ["kept"]


async def test_names_holders_and_ttls_are_bounded(store: Store) -> None:
    for name, holder, ttl_s in (("", "a", 1.0), ("x" * 201, "a", 1.0), ("n", "", 1.0)):
        with pytest.raises(InvalidInput):
            await store.leases.acquire(name, holder, ttl_s)
    for ttl_s in (0.0, -1.0, 10 * 24 * 3600.0):
        with pytest.raises(InvalidInput):
            await store.leases.acquire("n", "a", ttl_s)


def _delivery(delivery_id: str) -> sa.Insert:
    from openinspect.domain.events import utcnow

    return webhook_deliveries.insert().values(
        provider="github", delivery_id=delivery_id, event="push", received_at=utcnow()
    )
