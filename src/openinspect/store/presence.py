"""Presence rows: who watches a session, from every replica, in one table.

A row of ``presence`` is one connected client (a WebSocket): ``(session_id, client_id)`` →
``user_id``, the ``name`` shown, ``status`` (``active`` | ``idle``), the ``holder`` (the replica
holding the socket) and ``expires_at_ms``. The holder renews its rows (``renew``) while the
sockets are open; a replica that dies stops renewing, so its rows run out by themselves and
``prune`` deletes them. As with leases (``store/leases.py``), expiry is judged by the database's
clock, never a replica's.

Only live rows (not yet expired) count anywhere: in ``watchers``, in the caps ``join`` enforces,
and for ``set_status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.store.leases import HOLDER_MAX, db_now_ms
from openinspect.store.tables import presence, sessions, users

PresenceStatus = Literal["active", "idle"]
NAME_MAX = 200
"""Longest name kept for a watcher (longer ones are cut: a name is for display)."""
CLIENT_ID_MAX = 64
RENEW_BATCH = 500
"""Rows renewed per statement (well under both databases' bound-parameter limits)."""


@dataclass(frozen=True)
class Watcher:
    """One connected client of a session."""

    session_id: str
    client_id: str
    user_id: str
    name: str
    status: PresenceStatus = "active"


@dataclass(frozen=True)
class Crowded:
    """Why ``join`` refused: which cap was reached, and what it is."""

    scope: Literal["session", "user"]
    limit: int


def _live() -> sa.ColumnElement[bool]:
    return presence.c.expires_at_ms > db_now_ms()


def _row(watcher: Watcher, holder: str, ttl_ms: int) -> dict[str, object]:
    return {
        "session_id": watcher.session_id,
        "client_id": watcher.client_id[:CLIENT_ID_MAX],
        "user_id": watcher.user_id,
        "name": watcher.name[:NAME_MAX],
        "status": watcher.status,
        "holder": holder[:HOLDER_MAX],
        "expires_at_ms": db_now_ms() + ttl_ms,
    }


class PresenceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite

    async def join(
        self,
        watcher: Watcher,
        holder: str,
        ttl_s: float,
        *,
        max_per_session: int,
        max_per_user: int,
    ) -> Crowded | None:
        """Record ``watcher`` as held by ``holder`` for ``ttl_s`` seconds, unless its session
        already has ``max_per_session`` live clients or its user ``max_per_user`` (across all
        sessions): then nothing is written and the cap reached is returned. Joins racing on
        the same session can overshoot a cap by the number racing; the caps bound what one
        person can build up, not an exact count."""
        count = sa.func.count()
        in_session = sa.select(count).where(presence.c.session_id == watcher.session_id, _live())
        of_user = sa.select(count).where(presence.c.user_id == watcher.user_id, _live())
        async with self._engine.begin() as conn:
            if (await conn.execute(in_session)).scalar_one() >= max_per_session:
                return Crowded("session", max_per_session)
            if (await conn.execute(of_user)).scalar_one() >= max_per_user:
                return Crowded("user", max_per_user)
            insert = self._dialect.insert(presence).values(_row(watcher, holder, _ttl_ms(ttl_s)))
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[presence.c.session_id, presence.c.client_id],
                    set_={
                        "holder": insert.excluded.holder,
                        "status": insert.excluded.status,
                        "expires_at_ms": insert.excluded.expires_at_ms,
                    },
                )
            )
        return None

    async def set_status(
        self, session_id: str, client_id: str, user_id: str, status: PresenceStatus
    ) -> bool:
        """Set the status of a live client of ``session_id`` that belongs to ``user_id``;
        False (and nothing changed) for any other client, session or user."""
        statement = (
            presence.update()
            .where(
                presence.c.session_id == session_id,
                presence.c.client_id == client_id,
                presence.c.user_id == user_id,
                _live(),
            )
            .values(status=status)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def leave(self, session_id: str, client_id: str, holder: str) -> bool:
        """Delete the row of a client ``holder`` holds; False if it was not there."""
        statement = presence.delete().where(
            presence.c.session_id == session_id,
            presence.c.client_id == client_id,
            presence.c.holder == holder,
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def renew(self, holder: str, watchers: Sequence[Watcher], ttl_s: float) -> None:
        """Extend the rows of ``watchers`` (the clients ``holder`` holds now) by ``ttl_s`` from
        now, and write again any that ran out and were pruned meanwhile (a stall past the TTL),
        with the status given. Rows of a session or user deleted meanwhile are skipped."""
        ttl_ms = _ttl_ms(ttl_s)
        for start in range(0, len(watchers), RENEW_BATCH):
            batch = watchers[start : start + RENEW_BATCH]
            async with self._engine.begin() as conn:
                keys = [(w.session_id, w.client_id[:CLIENT_ID_MAX]) for w in batch]
                renewed = await conn.execute(
                    presence.update()
                    .where(
                        presence.c.holder == holder[:HOLDER_MAX],
                        sa.tuple_(presence.c.session_id, presence.c.client_id).in_(keys),
                    )
                    .values(expires_at_ms=db_now_ms() + ttl_ms)
                    .returning(presence.c.session_id, presence.c.client_id)
                )
                present = {(r.session_id, r.client_id) for r in renewed}
                for watcher in batch:
                    if (watcher.session_id, watcher.client_id[:CLIENT_ID_MAX]) in present:
                        continue
                    await self._insert_if_possible(conn, watcher, holder, ttl_ms)

    async def _insert_if_possible(
        self, conn: AsyncConnection, watcher: Watcher, holder: str, ttl_ms: int
    ) -> None:
        """Insert a client's row again, unless its session or user was deleted meanwhile."""
        row = _row(watcher, holder, ttl_ms)
        values = sa.select(
            *(v if isinstance(v, sa.ColumnElement) else sa.literal(v) for v in row.values())
        ).where(
            sa.exists().where(sessions.c.id == watcher.session_id),
            sa.exists().where(users.c.id == watcher.user_id),
        )
        insert = self._dialect.insert(presence).from_select(list(row), values)
        await conn.execute(insert.on_conflict_do_nothing())

    async def prune(self) -> list[str]:
        """Delete the rows that ran out; the sessions that lost a watcher (each once)."""
        statement = (
            presence.delete()
            .where(presence.c.expires_at_ms <= db_now_ms())
            .returning(presence.c.session_id)
        )
        async with self._engine.begin() as conn:
            gone = (await conn.execute(statement)).scalars().all()
        return sorted(set(gone))

    async def watchers(self, session_id: str) -> list[Watcher]:
        """The live clients of ``session_id``, by name then client id."""
        query = (
            sa.select(presence)
            .where(presence.c.session_id == session_id, _live())
            .order_by(presence.c.name, presence.c.client_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Watcher(r.session_id, r.client_id, r.user_id, r.name, r.status) for r in rows]

    async def watched(self, session_ids: Iterable[str]) -> set[str]:
        """Which of ``session_ids`` have a live client on any replica."""
        wanted = list(session_ids)
        if not wanted:
            return set()
        query = (
            sa.select(presence.c.session_id)
            .where(presence.c.session_id.in_(wanted), _live())
            .distinct()
        )
        async with self._engine.connect() as conn:
            return set((await conn.execute(query)).scalars().all())


def _ttl_ms(ttl_s: float) -> int:
    return max(1, round(ttl_s * 1000))
