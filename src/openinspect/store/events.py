"""The durable event log: append with a gap-free per-session seq, and read back in pages.

A live event's ``seq`` is assigned by the database inside the insert's transaction: the
statement that bumps the session row's ``last_seq`` (and writes the state change the event
announces) returns it, so two writers of one session can never take the same number, and a
rolled-back append leaves no gap. ``commit`` writes a batch of changes (``store/changes.py``: the
unit of work) in one transaction: group commit, for the event log's flusher.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import Event, dump_event, load_event
from openinspect.errors import StoreUnavailable
from openinspect.store import feed
from openinspect.store.changes import Appended, Change, Outcome, Refused, write
from openinspect.store.leases import Lease
from openinspect.store.tables import events, sessions

__all__ = ["Appended", "Change", "EventStore", "Outcome", "Refused"]


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def commit(self, changes: Sequence[Change]) -> list[Outcome]:
        """Commit ``changes`` (each an event and the state change it announces) and return what
        became of each, in order: ``Appended`` (stored, or stored before under its key),
        ``Refused`` (its prompt guard failed), or the error that stopped it (``LeaseLost``,
        ``NotFoundError``, a ``StoreError``). One transaction for all of them; when it fails
        after a write, each change is retried alone, so a bad change fails only itself (but
        when the database is unreachable, all of them fail with that at once)."""
        if not changes:
            return []
        try:
            async with self._engine.begin() as conn:
                return await write(conn, changes)
        except StoreUnavailable as exc:  # the database, not a change: each would fail alike
            return [exc] * len(changes)
        except Exception as exc:
            units = _units(changes)
            if len(units) == 1:  # one change, or changes that stand or fall together
                return [exc] * len(changes)
        outcomes: list[Outcome | None] = [None] * len(changes)
        for unit in units:
            for i, outcome in zip(unit, await self.commit([changes[i] for i in unit]), strict=True):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    async def append(
        self,
        event: Event,
        *,
        session_values: dict[str, Any] | None = None,
        fence: Lease | None = None,
    ) -> Appended:
        """Store one event with the session's next seq (``event.seq`` is ignored) and return it
        as stored, with its feed position. ``session_values`` (columns of the session row)
        change in the same transaction: a state change and the event that announces it commit
        together or not at all. ``fence``: the lease the writer owns the session by, checked in
        the same transaction, so a stale owner's append raises ``LeaseLost`` and writes nothing.
        ``NotFoundError`` if the session does not exist."""
        (outcome,) = await self.commit([Change(event, session_values or {}, fence=fence)])
        if isinstance(outcome, BaseException):
            raise outcome
        assert not isinstance(outcome, Refused)  # no prompt, no guard
        return outcome

    async def append_many(self, session_id: str, batch: list[Event]) -> None:
        """Store a batch of one session's events, seqs assigned and ascending, in one
        transaction (imports and seeded histories; live events go through ``append``)."""
        if not batch:
            return
        if any(e.session_id != session_id for e in batch):
            raise ValueError("append_many takes the events of one session")
        async with self._engine.begin() as conn:
            await conn.execute(
                sessions.update()
                .where(sessions.c.id == session_id)
                .values(last_seq=batch[-1].seq, updated_at=batch[-1].ts)
            )
            first = await feed.reserve(conn, len(batch)) - len(batch) + 1
            await conn.execute(
                events.insert(),
                [
                    {
                        "session_id": e.session_id,
                        "seq": e.seq,
                        "type": e.type,
                        "prompt_id": e.prompt_id,
                        "ts": e.ts,
                        "data": json.dumps(dump_event(e)),
                        "pos": first + i,
                    }
                    for i, e in enumerate(batch)
                ],
            )

    async def last_seq(self, session_id: str) -> int:
        """The seq of the session's last event (its owner: ``sessions.last_seq``); 0 when it
        has none or does not exist."""
        query = sa.select(sessions.c.last_seq).where(sessions.c.id == session_id)
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return int(value or 0)

    async def after(self, session_id: str, since_seq: int, limit: int) -> list[Event]:
        """Events with seq > since_seq, oldest first, at most ``limit``."""
        query = (
            sa.select(events.c.data)
            .where(events.c.session_id == session_id, events.c.seq > since_seq)
            .order_by(events.c.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [load_event(r) for r in rows]

    async def before(self, session_id: str, before_seq: int | None, limit: int) -> list[Event]:
        """The newest ``limit`` events with seq < before_seq (all if None), oldest first."""
        query = sa.select(events.c.data).where(events.c.session_id == session_id)
        if before_seq is not None:
            query = query.where(events.c.seq < before_seq)
        query = query.order_by(events.c.seq.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [load_event(r) for r in reversed(rows)]

    async def latest_of(self, session_id: str, types: tuple[str, ...], limit: int) -> list[Event]:
        """The newest ``limit`` events of the given types, newest first."""
        query = (
            sa.select(events.c.data)
            .where(events.c.session_id == session_id, events.c.type.in_(types))
            .order_by(events.c.seq.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [load_event(r) for r in rows]

    async def of_types(self, session_id: str, types: tuple[str, ...]) -> list[Event]:
        """All the session's events of the given types, oldest first (a fork's reading of where
        its source's prompts, responses, tool calls and commits are)."""
        query = (
            sa.select(events.c.data)
            .where(events.c.session_id == session_id, events.c.type.in_(types))
            .order_by(events.c.seq)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [load_event(r) for r in rows]

    async def sizes(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
    ) -> list[tuple[int, int]]:
        """``(seq, stored characters)`` of up to ``limit`` events: the oldest after
        ``after_seq`` if given (ascending), else the newest before ``before_seq`` (descending).
        Lets a reader choose a window by size before it loads a single event."""
        query = sa.select(events.c.seq, sa.func.length(events.c.data)).where(
            events.c.session_id == session_id
        )
        if after_seq is not None:
            query = query.where(events.c.seq > after_seq).order_by(events.c.seq)
        else:
            if before_seq is not None:
                query = query.where(events.c.seq < before_seq)
            query = query.order_by(events.c.seq.desc())
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [(int(seq), int(size)) for seq, size in rows]

    async def between(self, session_id: str, first_seq: int, last_seq: int) -> list[Event]:
        """Events with ``first_seq <= seq <= last_seq``, oldest first."""
        query = (
            sa.select(events.c.data)
            .where(
                events.c.session_id == session_id,
                events.c.seq >= first_seq,
                events.c.seq <= last_seq,
            )
            .order_by(events.c.seq)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [load_event(r) for r in rows]


def _units(changes: Sequence[Change]) -> list[list[int]]:
    """The indexes of ``changes``, grouped into what must commit together (``Change.unit``),
    in order of each group's first change."""
    units: dict[object, list[int]] = {}
    for i, change in enumerate(changes):
        units.setdefault(change.unit if change.unit is not None else i, []).append(i)
    return list(units.values())
