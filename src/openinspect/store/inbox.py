"""The inbox: deliveries from outside (a Linear webhook, …) stored before they are acknowledged
and handled after, so a crash loses nothing and a retry is handled once.

A row is ``pending`` until handled, then ``done``, ``ignored`` or ``failed``. Handling *claims*
a row first (one more attempt, stamped with the time), so a row a crashed or stalled handler
left is claimed again by a recovery pass once its claim is older than the pass's threshold, and
by one handler at a time. The claim/finish/stale queries are shared with the Slack inbox
(``store.slack_inbox``), whose table adds the message key Slack needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.store.db import insert_once
from openinspect.store.tables import inbox

InboxStatus = Literal["pending", "done", "ignored", "failed"]
INBOX_KEY_MAX = 200


@dataclass(frozen=True)
class InboxItem:
    id: str
    source: str
    key: str
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    received_at: datetime


def _item(row: sa.Row[Any]) -> InboxItem:
    m = row._mapping
    return InboxItem(
        id=m["id"],
        source=m["source"],
        key=m["key"],
        kind=m["kind"],
        payload=json.loads(m["payload"]),
        status=m["status"],
        attempts=m["attempts"],
        received_at=m["received_at"],
    )


async def claim_row(engine: AsyncEngine, table: sa.Table, row_id: str, attempts: int) -> bool:
    """Take a pending row for handling (one more attempt); False when it is handled already or
    another handler claimed it since it was read with ``attempts``."""
    async with engine.begin() as conn:
        result = await conn.execute(
            table.update()
            .where(table.c.id == row_id, table.c.status == "pending", table.c.attempts == attempts)
            .values(attempts=attempts + 1, handled_at=utcnow())
        )
    return bool(result.rowcount)


async def finish_row(
    engine: AsyncEngine, table: sa.Table, row_id: str, status: str, error_code: str | None
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            table.update()
            .where(table.c.id == row_id)
            .values(status=status, error_code=error_code, handled_at=utcnow())
        )


def stale_query(
    table: sa.Table, older_than: timedelta, limit: int, *where: sa.ColumnElement[bool]
) -> sa.Select[Any]:
    """Pending rows whose last claim (or arrival, if never claimed) is older than
    ``older_than``, oldest first."""
    cutoff = utcnow() - older_than
    since = sa.func.coalesce(table.c.handled_at, table.c.received_at)
    return (
        sa.select(table)
        .where(table.c.status == "pending", since < cutoff, *where)
        .order_by(table.c.received_at)
        .limit(limit)
    )


class InboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def accept(
        self,
        *,
        source: str,
        key: str,
        kind: str,
        payload: str,
        conn: AsyncConnection | None = None,
    ) -> InboxItem | None:
        """Store a delivery; None (nothing written) when its ``key`` was accepted before. With
        ``conn`` it is written in the caller's transaction (with an outbox row, say)."""
        if not key or len(key) > INBOX_KEY_MAX:
            raise ValueError(f"an inbox key is 1 to {INBOX_KEY_MAX} characters")
        row_id, now = new_id("inb"), utcnow()
        values = {
            "id": row_id,
            "source": source,
            "key": key,
            "kind": kind,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "received_at": now,
        }
        if conn is not None:
            written = await insert_once(conn, inbox, values)
        else:
            async with self._engine.begin() as own:
                written = await insert_once(own, inbox, values)
        if not written:
            return None
        return InboxItem(row_id, source, key, kind, json.loads(payload), "pending", 0, now)

    async def get(self, row_id: str) -> InboxItem | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(inbox).where(inbox.c.id == row_id))).first()
        return _item(row) if row is not None else None

    async def by_key(self, key: str) -> InboxItem | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(inbox).where(inbox.c.key == key))).first()
        return _item(row) if row is not None else None

    async def claim(self, item: InboxItem) -> bool:
        return await claim_row(self._engine, inbox, item.id, item.attempts)

    async def finish(self, row_id: str, status: InboxStatus, error_code: str | None = None) -> None:
        await finish_row(self._engine, inbox, row_id, status, error_code)

    async def stale(self, source: str, older_than: timedelta, limit: int = 50) -> list[InboxItem]:
        query = stale_query(inbox, older_than, limit, inbox.c.source == source)
        async with self._engine.connect() as conn:
            return [_item(r) for r in (await conn.execute(query)).all()]
