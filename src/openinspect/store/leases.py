"""Leases with fencing tokens: one holder of a named piece of work at a time, across replicas.

A lease is a row of ``leases`` (``name`` → ``holder``, ``fence``, ``expires_at_ms``). ``acquire``
takes a lease that is free or expired and bumps its ``fence``; ``renew`` extends it while the
holder and the fence still match; ``release`` frees it (and bumps the fence, so a released lease
can guard no write). Each is one conditional statement, so concurrent callers on SQLite or
Postgres never both win: there is no read-then-write.

**Clock.** Expiry is judged by the *database's* clock (``db_now_ms``: Postgres
``clock_timestamp()``, SQLite ``julianday('now')``, both in milliseconds since the epoch), never
by a replica's, so replicas with skewed clocks agree on when a lease expired.

**Fencing.** Expiry only decides when someone else may *take* the lease; the fence decides whose
writes count. A holder that stalled past its TTL (a long GC, a paused VM) still holds a ``Lease``
object, but once another replica acquired, the fence moved on: ``assert_held(conn, lease)`` in
the stale holder's write transaction raises :class:`~openinspect.errors.LeaseLost` and the write
is rolled back with it. The check also makes the lease wait for the write: on Postgres it takes a
share lock on the lease row (an ``acquire`` blocks until the writer commits); on SQLite, which
has one writer at a time, it is a no-op update that takes the write lock at once. Either way no
acquire can commit between the check and the writer's commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles

from openinspect.errors import InvalidInput, LeaseLost
from openinspect.store.tables import leases

NAME_MAX = 200
HOLDER_MAX = 200
TTL_MIN_S = 0.01
TTL_MAX_S = 24 * 3600.0


class db_now_ms(sa.sql.expression.FunctionElement[int]):
    """The database's clock in whole milliseconds since the Unix epoch."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(db_now_ms, "postgresql")
def _pg_now_ms(element: db_now_ms, compiler: Any, **kw: Any) -> str:
    return "CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)"


@compiles(db_now_ms, "sqlite")
def _sqlite_now_ms(element: db_now_ms, compiler: Any, **kw: Any) -> str:
    return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


@dataclass(frozen=True)
class Lease:
    """A lease as its holder got it: ``fence`` is what its writes are checked against."""

    name: str
    holder: str
    fence: int
    expires_at_ms: int

    @property
    def expires_at(self) -> datetime:
        """When the lease runs out, by the database's clock as of ``acquire`` (a renewal moves
        the stored expiry, not this copy)."""
        return datetime.fromtimestamp(self.expires_at_ms / 1000, UTC)


def _ttl_ms(ttl_s: float) -> int:
    if not TTL_MIN_S <= ttl_s <= TTL_MAX_S:
        raise InvalidInput(
            f"A lease lasts {TTL_MIN_S} to {TTL_MAX_S:.0f} seconds; {ttl_s} was asked for",
            hint="Use a lease time within the range",
        )
    return max(1, round(ttl_s * 1000))


def _check(name: str, holder: str) -> None:
    if not name or len(name) > NAME_MAX or not holder or len(holder) > HOLDER_MAX:
        raise InvalidInput(
            f"A lease name and holder have 1 to {NAME_MAX} characters",
            hint="Use a shorter lease name or holder",
        )


def _is_current(lease: Lease) -> sa.ColumnElement[bool]:
    return sa.and_(
        leases.c.name == lease.name,
        leases.c.holder == lease.holder,
        leases.c.fence == lease.fence,
    )


async def assert_held(conn: AsyncConnection, lease: Lease) -> None:
    """Raise :class:`LeaseLost` unless ``lease`` is still the current one (same holder and
    fence), inside the caller's transaction ``conn``; call it in every write the lease guards,
    so that the write and the check commit together or not at all (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        query = sa.select(leases.c.fence).where(_is_current(lease)).with_for_update(read=True)
        held = (await conn.execute(query)).first() is not None
    else:
        touched = await conn.execute(
            leases.update().where(_is_current(lease)).values(fence=leases.c.fence)
        )
        held = touched.rowcount == 1
    if not held:
        raise LeaseLost(
            f"The lease {lease.name!r} (fence {lease.fence}) is no longer held by this server",
            hint="Another server took over this work; it carries on there",
        )


class LeaseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the lease ``name`` for ``ttl_s`` seconds if it is free or expired (bumping its
        fence); None while someone else (or this holder, under an older fence) holds it."""
        _check(name, holder)
        ttl_ms = _ttl_ms(ttl_s)
        now = db_now_ms()
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(leases).values(
            name=name,
            holder=holder,
            fence=1,
            acquired_at_ms=now,
            expires_at_ms=now + ttl_ms,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={
                "holder": insert.excluded.holder,
                "fence": leases.c.fence + 1,
                # Counted from when the row is locked, not from when the statement began
                # (it may have waited for another acquire to commit).
                "acquired_at_ms": db_now_ms(),
                "expires_at_ms": db_now_ms() + ttl_ms,
            },
            where=leases.c.expires_at_ms <= db_now_ms(),
        ).returning(leases.c.fence, leases.c.expires_at_ms)
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        if row is None:
            return None
        return Lease(name=name, holder=holder, fence=row.fence, expires_at_ms=row.expires_at_ms)

    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        """Extend ``lease`` to ``ttl_s`` seconds from now while its holder and fence still
        match (also just past its expiry, if nobody took it meanwhile); False when it was lost
        (taken over or released), and then it stays lost: acquire it again."""
        statement = (
            leases.update()
            .where(_is_current(lease))
            .values(expires_at_ms=db_now_ms() + _ttl_ms(ttl_s))
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def release(self, lease: Lease) -> bool:
        """Free ``lease`` at once (if it is still current) so another holder need not wait for
        the TTL. The fence moves on too: nothing can be written under a released lease."""
        statement = (
            leases.update()
            .where(_is_current(lease))
            .values(expires_at_ms=0, fence=leases.c.fence + 1)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def current(self, name: str) -> Lease | None:
        """The lease ``name`` as stored (held or not: compare ``expires_at`` yourself), for
        operators and tests."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(leases).where(leases.c.name == name))).first()
        if row is None:
            return None
        return Lease(row.name, row.holder, row.fence, row.expires_at_ms)
