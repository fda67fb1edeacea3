"""The outbox: every post to GitHub or Linear (a review, a reaction, an agent activity), decided
once and delivered after.

A row is written by whoever decided the post, in that decision's transaction (``enqueue`` takes
the caller's connection: a feed cursor's, an inbox row's), so a decision and its post commit
together or not at all; ``key`` is unique, so deciding twice writes one row. Delivery
(``integrations.outbox``) takes due rows (``due``), counts an attempt, and records what the
provider answered (``record_posted``), a pause (``record_retry``) or a permanent failure
(``record_failed``). A row is *due* while it is neither posted nor failed and its
``next_attempt_at`` is unset or past.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.store.db import insert_once
from openinspect.store.tables import outbox

OUTBOX_KEY_MAX = 200
ERROR_CODE_MAX = 64
SOURCE_MAX = 16
KIND_MAX = 32


@dataclass(frozen=True)
class OutboxRow:
    id: int
    source: str
    key: str
    session_id: str | None
    kind: str
    target: dict[str, Any]
    body: dict[str, Any]
    result: dict[str, Any] | None
    attempts: int
    error_code: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    posted_at: datetime | None

    @property
    def failed(self) -> bool:
        return (
            self.posted_at is None and self.error_code is not None and self.next_attempt_at is None
        )


def _row(row: sa.Row[Any]) -> OutboxRow:
    m = row._mapping
    return OutboxRow(
        id=m["id"],
        source=m["source"],
        key=m["key"],
        session_id=m["session_id"],
        kind=m["kind"],
        target=json.loads(m["target"]),
        body=json.loads(m["body"]),
        result=json.loads(m["result"]) if m["result"] is not None else None,
        attempts=m["attempts"],
        error_code=m["error_code"],
        next_attempt_at=m["next_attempt_at"],
        created_at=m["created_at"],
        posted_at=m["posted_at"],
    )


class OutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def enqueue(
        self,
        conn: AsyncConnection,
        *,
        source: str,
        key: str,
        kind: str,
        target: dict[str, Any],
        body: dict[str, Any],
        session_id: str | None = None,
    ) -> bool:
        """Decide a post, in the caller's transaction; False when ``key`` was decided before."""
        if not key or len(key) > OUTBOX_KEY_MAX:
            raise ValueError(f"an outbox key is 1 to {OUTBOX_KEY_MAX} characters")
        if not source or len(source) > SOURCE_MAX or not kind or len(kind) > KIND_MAX:
            raise ValueError("an outbox row needs a short source and kind")
        return await insert_once(
            conn,
            outbox,
            {
                "source": source,
                "key": key,
                "session_id": session_id,
                "kind": kind,
                "target": json.dumps(target),
                "body": json.dumps(body),
                "attempts": 0,
                "created_at": utcnow(),
            },
        )

    async def get(self, key: str) -> OutboxRow | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(outbox).where(outbox.c.key == key))).first()
        return _row(row) if row is not None else None

    async def for_session(self, session_id: str, source: str | None = None) -> list[OutboxRow]:
        query = sa.select(outbox).where(outbox.c.session_id == session_id)
        if source is not None:
            query = query.where(outbox.c.source == source)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(outbox.c.id))).all()
        return [_row(r) for r in rows]

    async def due(
        self, now: datetime | None = None, limit: int = 100, sources: list[str] | None = None
    ) -> list[OutboxRow]:
        """Rows to deliver now (of ``sources``, when given), oldest first."""
        at = now or utcnow()
        query = sa.select(outbox).where(
            outbox.c.posted_at.is_(None),
            sa.or_(
                outbox.c.next_attempt_at <= at,
                sa.and_(outbox.c.next_attempt_at.is_(None), outbox.c.error_code.is_(None)),
            ),
        )
        if sources is not None:
            query = query.where(outbox.c.source.in_(sources))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(outbox.c.id).limit(limit))).all()
        return [_row(r) for r in rows]

    async def waiting(self, now: datetime, sources: list[str] | None = None) -> list[OutboxRow]:
        """Rows that wait out a pause (their targets' later rows wait behind them)."""
        query = sa.select(outbox).where(
            outbox.c.posted_at.is_(None), outbox.c.next_attempt_at > now
        )
        if sources is not None:
            query = query.where(outbox.c.source.in_(sources))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(outbox.c.id).limit(1000))).all()
        return [_row(r) for r in rows]

    async def next_due_at(self, sources: list[str] | None = None) -> datetime | None:
        """The earliest pause a waiting row has left (None: nothing waits on a pause)."""
        query = sa.select(sa.func.min(outbox.c.next_attempt_at)).where(
            outbox.c.posted_at.is_(None), outbox.c.next_attempt_at.is_not(None)
        )
        if sources is not None:
            query = query.where(outbox.c.source.in_(sources))
        async with self._engine.connect() as conn:
            found: datetime | None = (await conn.execute(query)).scalar_one_or_none()
        if found is not None and found.tzinfo is None:  # read back naive by SQLite
            found = found.replace(tzinfo=UTC)
        return found

    async def begin_attempt(self, row_id: int) -> int:
        """Count one more attempt; the attempts made before this one."""
        async with self._engine.begin() as conn:
            before = (
                await conn.execute(sa.select(outbox.c.attempts).where(outbox.c.id == row_id))
            ).scalar_one()
            await conn.execute(
                outbox.update().where(outbox.c.id == row_id).values(attempts=before + 1)
            )
        return int(before)

    async def record_posted(self, row_id: int, result: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == row_id)
                .values(
                    result=json.dumps(result),
                    posted_at=utcnow(),
                    error_code=None,
                    next_attempt_at=None,
                )
            )

    async def record_retry(self, row_id: int, at: datetime, error_code: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == row_id)
                .values(next_attempt_at=at, error_code=error_code[:ERROR_CODE_MAX])
            )

    async def record_failed(self, row_id: int, error_code: str) -> None:
        """Give the row up (it stays, with its code, for the record and for people to see)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == row_id)
                .values(next_attempt_at=None, error_code=error_code[:ERROR_CODE_MAX])
            )
