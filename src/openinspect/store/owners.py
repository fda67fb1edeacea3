"""Session ownership in the store: who holds a session's lease, which sessions need an owner.

A replica owns a live session through the lease ``session:<id>`` (``store/leases.py``;
``sessions/ownership.py`` holds and renews them). These are the queries over many such leases at
once, each one statement, judged by the database's clock like every lease:

- ``holder``: the replica that holds a session's lease now (where to forward a command);
- ``renew``: extend every lease a replica holds in one round trip;
- ``orphans``: sessions with work (a running or queued prompt, a sandbox up, status ``active``)
  whose lease is free or expired, i.e. whose owner died (or that never had one);
- ``free_all``: end every session lease (a server that knows it is the only one, on start);
- ``sandboxes_lost``: a dead owner's sandbox records of one session.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.store.leases import Lease, db_now_ms
from openinspect.store.tables import leases, prompts, sandboxes, sessions

SESSION_LEASE_PREFIX = "session:"
RENEW_BATCH = 500
"""Leases renewed per statement (bounds the statement's size, not the number renewed)."""
LIVE_SANDBOX = ("warming", "booting", "ready", "snapshotting")
_ENDED_SANDBOX = ("stopped", "lost", "failed")


def lease_name(session_id: str) -> str:
    return SESSION_LEASE_PREFIX + session_id


class OwnerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def holder(self, session_id: str) -> str | None:
        """The holder of the session's lease, if it is held (not expired) now."""
        query = sa.select(leases.c.holder).where(
            leases.c.name == lease_name(session_id), leases.c.expires_at_ms > db_now_ms()
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def renew(self, held: Sequence[Lease], ttl_s: float) -> set[str]:
        """Extend each of ``held`` (one holder's leases) to ``ttl_s`` seconds from now while
        its holder and fence still match; returns the names renewed (the others were lost)."""
        renewed: set[str] = set()
        ttl_ms = max(1, round(ttl_s * 1000))
        async with self._engine.begin() as conn:
            for start in range(0, len(held), RENEW_BATCH):
                batch = held[start : start + RENEW_BATCH]
                statement = (
                    leases.update()
                    .where(
                        sa.tuple_(leases.c.name, leases.c.holder, leases.c.fence).in_(
                            [(lease.name, lease.holder, lease.fence) for lease in batch]
                        )
                    )
                    .values(expires_at_ms=db_now_ms() + ttl_ms)
                    .returning(leases.c.name)
                )
                renewed.update((await conn.execute(statement)).scalars().all())
        return renewed

    async def orphans(self, limit: int) -> list[str]:
        """Up to ``limit`` sessions that have work but no live owner: a running or queued
        prompt, a sandbox recorded up, or status ``active``, and a session lease that is
        missing or expired. Oldest activity first."""
        has_prompt = (
            sa.select(prompts.c.id)
            .where(
                prompts.c.session_id == sessions.c.id,
                prompts.c.status.in_(("running", "queued")),
            )
            .exists()
        )
        owned = (
            sa.select(leases.c.name)
            .where(
                leases.c.name == sa.literal(SESSION_LEASE_PREFIX) + sessions.c.id,
                leases.c.expires_at_ms > db_now_ms(),
            )
            .exists()
        )
        query = (
            sa.select(sessions.c.id)
            .where(
                sa.or_(
                    has_prompt,
                    sa.and_(
                        sessions.c.status.in_(("active", "idle")),
                        sessions.c.sandbox_status.in_(LIVE_SANDBOX),
                    ),
                    sessions.c.status == "active",
                ),
                ~owned,
            )
            .order_by(sessions.c.updated_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars().all())

    async def free_all(self) -> int:
        """End every session lease now (and move its fence on, so nothing is written under
        it): for a server that is the only one by construction (the in-process bus), whose
        leases in the store can only be those of its own dead predecessor."""
        statement = (
            leases.update()
            .where(leases.c.name.startswith(SESSION_LEASE_PREFIX, autoescape=True))
            .values(expires_at_ms=0, fence=leases.c.fence + 1)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount

    async def sandboxes_lost(self, session_id: str) -> int:
        """Mark the session's sandboxes that are still recorded up as ``lost`` (they died with
        their owner)."""
        statement = (
            sandboxes.update()
            .where(sandboxes.c.session_id == session_id, sandboxes.c.status.notin_(_ENDED_SANDBOX))
            .values(status="lost", stopped_at=utcnow())
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount
