"""The global event feed: every durable event of every session by one position, and named cursors.

Positions
---------
Every stored event gets ``events.pos``, an integer unique across all sessions. A reader that has
seen position N must never later find a new event below N, or a cursor that moved past the gap
would skip it for good. A database sequence does not give that on Postgres: transaction A takes
41, B takes 42, B commits first, a reader sees 42 and commits its cursor there, then A commits 41.

So positions come from a counter row, ``feed_head`` (one row), updated inside the append's
transaction (``reserve``): ``UPDATE feed_head SET last_pos = last_pos + n RETURNING last_pos``.
The row lock is held until the append commits, so the next append gets its number only after the
previous one committed (or rolled back, giving its number back): positions commit in order, and
``feed_head.last_pos`` is a safe horizon — every position up to it is committed and visible.
Appends are serialised on that one row for the moment between their counter update and their
commit; the append takes its other locks (the session row) *before* it touches the counter, so
the counter is never held while waiting on anything else. SQLite serialises writers anyway; the
counter costs it one small update. Positions are never reused, even when a session and its
events are deleted (a ``MAX(pos) + 1`` would hand a deleted number out again, behind cursors).

Cursors
-------
A consumer's cursor (``feed_cursors``) is the last position it has fully handled. ``claim``
opens one transaction that locks the cursor, reads the events after it, lets the caller record
its effects on the same connection, moves the cursor, and commits all of it together: effects
kept in this database happen exactly once. A second holder of the same name cannot get in while
the claim is open: on Postgres the cursor row is taken with ``FOR UPDATE SKIP LOCKED`` (the
other replica sees "busy" and backs off; a crashed holder's connection drops and the lock with
it, so there is no lease to expire); on SQLite the claim takes the database's write lock at once
(writers are serialised there), so keep claims short there: appends wait for them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import EPHEMERAL_TYPES, Event, load_event, utcnow
from openinspect.errors import StoreConflict
from openinspect.store.tables import events, feed_cursors, feed_head

HEAD_ROW_ID = 1
READ_LIMIT_MAX = 1_000
CURSOR_NAME = re.compile(r"[a-z0-9][a-z0-9._:-]{0,99}")
"""Consumer names: lowercase, digits and ``._:-``, at most 100 characters (``slack``,
``github-checks``, ``linear:acme``)."""

Start = Literal["beginning", "end"]

DURABLE_TYPES: frozenset[str] = (
    frozenset(cls.model_fields["type"].default for cls in get_args(get_args(Event)[0]))
    - EPHEMERAL_TYPES
)


@dataclass(frozen=True)
class FeedEntry:
    pos: int
    event: Event


@dataclass(frozen=True)
class FeedBatch:
    """Events after a cursor, oldest first, and where the cursor goes once they are handled.
    ``upto`` can lie past the last entry: positions between them hold no event of the
    requested types."""

    entries: list[FeedEntry]
    upto: int


async def reserve(conn: AsyncConnection, count: int = 1) -> int:
    """Take ``count`` positions in the caller's transaction; returns the last of them (the
    batch is ``last - count + 1 … last``). Call it as the append's last lock: the counter row
    stays locked until the transaction ends."""
    query = (
        feed_head.update()
        .where(feed_head.c.id == HEAD_ROW_ID)
        .values(last_pos=feed_head.c.last_pos + count)
        .returning(feed_head.c.last_pos)
    )
    return int((await conn.execute(query)).scalar_one())


def check_name(name: str) -> str:
    if not CURSOR_NAME.fullmatch(name):
        raise ValueError(f"invalid feed consumer name {name!r}: expected {CURSOR_NAME.pattern}")
    return name


def _check_types(types: Collection[str] | None) -> frozenset[str] | None:
    if types is None:
        return None
    wanted = frozenset(types)
    unknown = wanted - DURABLE_TYPES
    if unknown or not wanted:
        raise ValueError(
            f"unknown or ephemeral event types {sorted(unknown)}; "
            f"expected some of {sorted(DURABLE_TYPES)}"
        )
    return wanted


async def _head(conn: AsyncConnection) -> int:
    query = sa.select(feed_head.c.last_pos).where(feed_head.c.id == HEAD_ROW_ID)
    return int((await conn.execute(query)).scalar_one())


async def _read(
    conn: AsyncConnection, after: int, limit: int, types: frozenset[str] | None
) -> FeedBatch:
    if after < 0 or not 1 <= limit <= READ_LIMIT_MAX:
        raise ValueError(f"expected after >= 0 and 1 <= limit <= {READ_LIMIT_MAX}")
    # The horizon first: every position up to it is committed, so what the query below does not
    # find up to it will never appear.
    horizon = await _head(conn)
    query = sa.select(events.c.pos, events.c.data).where(events.c.pos > after)
    if types is not None:
        query = query.where(events.c.type.in_(sorted(types)))
    rows = (await conn.execute(query.order_by(events.c.pos).limit(limit))).all()
    entries = [FeedEntry(pos=int(pos), event=load_event(data)) for pos, data in rows]
    if len(entries) == limit:
        return FeedBatch(entries, entries[-1].pos)
    return FeedBatch(entries, max(horizon, entries[-1].pos if entries else after))


class FeedClaim:
    """An open claim on a cursor (see ``FeedStore.claim``): the transaction's connection, the
    committed position, and ``read`` / ``advance`` for the caller."""

    def __init__(self, conn: AsyncConnection, name: str, pos: int) -> None:
        self.conn = conn
        self.name = name
        self.pos = pos
        self.committed = pos

    async def read(self, limit: int, types: Collection[str] | None = None) -> FeedBatch:
        """The events after the claim's position (``advance`` moves it)."""
        return await _read(self.conn, self.pos, limit, _check_types(types))

    def advance(self, pos: int) -> None:
        """Move the cursor to ``pos`` when the claim commits."""
        if pos < self.pos:
            raise ValueError(f"a cursor only moves forward ({self.pos} → {pos})")
        self.pos = pos


class FeedStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def head(self) -> int:
        """The last position handed out; every position up to it is committed."""
        async with self._engine.connect() as conn:
            return await _head(conn)

    async def read(
        self, after: int, limit: int, types: Collection[str] | None = None
    ) -> list[FeedEntry]:
        """Up to ``limit`` events with a position above ``after``, oldest first, optionally only
        of ``types`` (durable event types)."""
        async with self._engine.connect() as conn:
            return (await _read(conn, after, limit, _check_types(types))).entries

    async def cursor(self, name: str, *, start: Start = "end") -> int:
        """Consumer ``name``'s committed position, creating the cursor when it is new: at the
        current head (``end``: only events from now on) or at 0 (``beginning``: all history)."""
        check_name(name)
        query = sa.select(feed_cursors.c.pos).where(feed_cursors.c.name == name)
        async with self._engine.connect() as conn:
            pos = (await conn.execute(query)).scalar_one_or_none()
        if pos is not None:
            return int(pos)
        try:
            async with self._engine.begin() as conn:
                first = await _head(conn) if start == "end" else 0
                await conn.execute(
                    feed_cursors.insert().values(name=name, pos=first, updated_at=utcnow())
                )
            return first
        except StoreConflict:  # another process created it first: theirs stands
            async with self._engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())

    async def commit(self, name: str, pos: int, *, expected: int) -> bool:
        """Move cursor ``name`` from ``expected`` to ``pos`` on its own (effects kept elsewhere:
        prefer ``claim``). False when the cursor is no longer at ``expected``."""
        check_name(name)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                feed_cursors.update()
                .where(feed_cursors.c.name == name, feed_cursors.c.pos == expected)
                .values(pos=pos, updated_at=utcnow())
            )
        return result.rowcount == 1

    @asynccontextmanager
    async def claim(self, name: str) -> AsyncIterator[FeedClaim | None]:
        """Hold cursor ``name`` for one transaction. Yields None when another holder has it
        (Postgres; on SQLite the claim waits for the write lock instead). The cursor must exist
        (``cursor``). On a normal exit the cursor moves to ``FeedClaim.pos`` and everything done
        on ``FeedClaim.conn`` commits with it; on an exception nothing does."""
        check_name(name)
        async with self._engine.connect() as conn, conn.begin():
            claimed: sa.Select[tuple[int]] | sa.Update
            if conn.dialect.name == "postgresql":
                claimed = (
                    sa.select(feed_cursors.c.pos)
                    .where(feed_cursors.c.name == name)
                    .with_for_update(skip_locked=True)
                )
            else:  # take the write lock first: nothing can commit between our read and write
                claimed = (
                    feed_cursors.update()
                    .where(feed_cursors.c.name == name)
                    .values(updated_at=utcnow())
                    .returning(feed_cursors.c.pos)
                )
            pos = (await conn.execute(claimed)).scalar_one_or_none()
            if pos is None:
                yield None
                return
            claim = FeedClaim(conn, name, int(pos))
            yield claim
            if claim.pos != claim.committed:
                await conn.execute(
                    feed_cursors.update()
                    .where(feed_cursors.c.name == name)
                    .values(pos=claim.pos, updated_at=utcnow())
                )
