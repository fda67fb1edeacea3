"""The Slack inbox (every delivery we accepted, stored before it is acknowledged) and the
picks (requests waiting for their author to choose a repo).

An inbox row is ``pending`` until handled, then ``done``, ``ignored`` or ``failed``. Handling
*claims* a row first (``claim``: one more attempt, stamped with the time), so a row that a
crashed or stalled handler left is claimed again by the recovery pass once its claim is older
than a minute, and by one handler at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.store.db import insert_once
from openinspect.store.inbox import claim_row, finish_row, stale_query
from openinspect.store.tables import slack_inbox, slack_picks

InboxKind = Literal["event", "action"]
InboxStatus = Literal["pending", "done", "ignored", "failed"]
INBOX_KEY_MAX = 200


@dataclass(frozen=True)
class InboxRow:
    id: str
    key: str
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    received_at: datetime


@dataclass(frozen=True)
class Pick:
    id: str
    team_id: str
    channel_id: str
    thread_ts: str
    message_ts: str
    channel_type: str
    slack_user_id: str
    text: str
    candidates: list[str]
    expires_at: datetime
    resolved_at: datetime | None
    session_id: str | None


def _inbox(row: sa.Row[Any]) -> InboxRow:
    m = row._mapping
    return InboxRow(
        id=m["id"],
        key=m["key"],
        kind=m["kind"],
        payload=json.loads(m["payload"]),
        status=m["status"],
        attempts=m["attempts"],
        received_at=m["received_at"],
    )


def _pick(row: sa.Row[Any]) -> Pick:
    m = row._mapping
    return Pick(
        id=m["id"],
        team_id=m["team_id"],
        channel_id=m["channel_id"],
        thread_ts=m["thread_ts"],
        message_ts=m["message_ts"],
        channel_type=m["channel_type"],
        slack_user_id=m["slack_user_id"],
        text=m["text"],
        candidates=json.loads(m["candidates"]),
        expires_at=m["expires_at"],
        resolved_at=m["resolved_at"],
        session_id=m["session_id"],
    )


class SlackInboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def accept(
        self, *, key: str, msg_key: str | None, kind: InboxKind, payload: str
    ) -> InboxRow | None:
        """Store a delivery; None (nothing written) when its ``key`` or ``msg_key`` was
        accepted before: a retry, or the second of a message's two events."""
        if not key or len(key) > INBOX_KEY_MAX or (msg_key and len(msg_key) > INBOX_KEY_MAX):
            raise ValueError(f"an inbox key is 1 to {INBOX_KEY_MAX} characters")
        row_id, now = new_id("sin"), utcnow()
        async with self._engine.begin() as conn:
            written = await insert_once(
                conn,
                slack_inbox,
                {
                    "id": row_id,
                    "key": key,
                    "msg_key": msg_key,
                    "kind": kind,
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "received_at": now,
                },
            )
        if not written:
            return None
        return InboxRow(row_id, key, kind, json.loads(payload), "pending", 0, now)

    async def get(self, row_id: str) -> InboxRow | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(slack_inbox).where(slack_inbox.c.id == row_id))
            ).first()
        return _inbox(row) if row is not None else None

    async def by_key(self, key: str) -> InboxRow | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(slack_inbox).where(slack_inbox.c.key == key))
            ).first()
        return _inbox(row) if row is not None else None

    async def claim(self, row: InboxRow) -> bool:
        """Take ``row`` for handling (one more attempt); False when it is handled already or
        another handler claimed it since ``row`` was read."""
        return await claim_row(self._engine, slack_inbox, row.id, row.attempts)

    async def finish(self, row_id: str, status: InboxStatus, error_code: str | None = None) -> None:
        await finish_row(self._engine, slack_inbox, row_id, status, error_code)

    async def stale(self, older_than: timedelta, limit: int = 50) -> list[InboxRow]:
        """Pending rows whose last claim (or arrival, if never claimed) is older than
        ``older_than``, oldest first."""
        async with self._engine.connect() as conn:
            query = stale_query(slack_inbox, older_than, limit)
            return [_inbox(r) for r in (await conn.execute(query)).all()]

    async def create_pick(
        self,
        *,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        message_ts: str,
        channel_type: str,
        slack_user_id: str,
        text: str,
        candidates: list[str],
        ttl_s: float,
    ) -> Pick:
        now = utcnow()
        pick = Pick(
            id=new_id("spk"),
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            message_ts=message_ts,
            channel_type=channel_type,
            slack_user_id=slack_user_id,
            text=text,
            candidates=candidates,
            expires_at=now + timedelta(seconds=ttl_s),
            resolved_at=None,
            session_id=None,
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                slack_picks.insert().values(
                    id=pick.id,
                    team_id=team_id,
                    channel_id=channel_id,
                    thread_ts=thread_ts,
                    message_ts=message_ts,
                    channel_type=channel_type,
                    slack_user_id=slack_user_id,
                    text=text,
                    candidates=json.dumps(candidates),
                    created_at=now,
                    expires_at=pick.expires_at,
                )
            )
        return pick

    async def pick(self, pick_id: str) -> Pick | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(slack_picks).where(slack_picks.c.id == pick_id))
            ).first()
        return _pick(row) if row is not None else None

    async def use_pick(self, pick_id: str) -> bool:
        """Mark the pick used (once): False when it was used already."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                slack_picks.update()
                .where(slack_picks.c.id == pick_id, slack_picks.c.resolved_at.is_(None))
                .values(resolved_at=utcnow())
            )
        return bool(result.rowcount)

    async def set_pick_session(self, pick_id: str, session_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                slack_picks.update()
                .where(slack_picks.c.id == pick_id)
                .values(session_id=session_id)
            )
