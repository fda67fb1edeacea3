"""Slack threads of sessions and the outbox of messages to post in them.

A thread row ties one Slack thread to one session (either way unique) and holds what its live
status message should say (``state``, JSON owned by ``integrations.slack.outbound``) with a
version; ``delivered_version`` is what Slack shows. The outbox (``slack_posts``) holds every
message the app decided to post, keyed so the decision is made once; delivery fills in ``ts``.

Writes that must commit with something else (a feed cursor, an inbox row) take the caller's
``conn``; the others open their own transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.store.tables import slack_posts, slack_threads

ChannelType = Literal["im", "channel", "group", "mpim"]
PostKind = Literal["status", "final", "notify", "notice", "ephemeral"]
POST_KEY_MAX = 200


@dataclass(frozen=True)
class SlackThread:
    session_id: str
    team_id: str
    channel_id: str
    thread_ts: str
    channel_type: str
    slack_user_id: str
    status_ts: str | None
    state: dict[str, Any]
    version: int
    delivered_version: int
    created_at: datetime
    updated_at: datetime

    @property
    def is_dm(self) -> bool:
        return self.channel_type == "im"


@dataclass(frozen=True)
class SlackPost:
    id: int
    key: str
    session_id: str | None
    team_id: str
    channel_id: str
    thread_ts: str | None
    kind: str
    slack_user_id: str | None
    body: dict[str, Any]
    ts: str | None
    attempts: int
    error_code: str | None
    created_at: datetime
    posted_at: datetime | None


async def insert_once(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same primary or unique key exists (``ON CONFLICT DO
    NOTHING``, so the caller's transaction carries on either way); True when it was written."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = await conn.execute(insert(table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)


def _thread(row: sa.Row[Any]) -> SlackThread:
    m = row._mapping
    return SlackThread(
        session_id=m["session_id"],
        team_id=m["team_id"],
        channel_id=m["channel_id"],
        thread_ts=m["thread_ts"],
        channel_type=m["channel_type"],
        slack_user_id=m["slack_user_id"],
        status_ts=m["status_ts"],
        state=json.loads(m["state"]),
        version=m["version"],
        delivered_version=m["delivered_version"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _post(row: sa.Row[Any]) -> SlackPost:
    m = row._mapping
    return SlackPost(
        id=m["id"],
        key=m["key"],
        session_id=m["session_id"],
        team_id=m["team_id"],
        channel_id=m["channel_id"],
        thread_ts=m["thread_ts"],
        kind=m["kind"],
        slack_user_id=m["slack_user_id"],
        body=json.loads(m["body"]),
        ts=m["ts"],
        attempts=m["attempts"],
        error_code=m["error_code"],
        created_at=m["created_at"],
        posted_at=m["posted_at"],
    )


class SlackThreadStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        conn: AsyncConnection,
        *,
        session_id: str,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        channel_type: ChannelType,
        slack_user_id: str,
        state: dict[str, Any] | None = None,
    ) -> bool:
        """Tie the thread to the session in the caller's transaction; False (and nothing
        written) when either already has a thread row."""
        now = utcnow()
        return await insert_once(
            conn,
            slack_threads,
            {
                "session_id": session_id,
                "team_id": team_id,
                "channel_id": channel_id,
                "thread_ts": thread_ts,
                "channel_type": channel_type,
                "slack_user_id": slack_user_id,
                "state": json.dumps(state or {}),
                "version": 0,
                "delivered_version": 0,
                "created_at": now,
                "updated_at": now,
            },
        )

    async def by_thread(
        self, team_id: str, channel_id: str, thread_ts: str, *, conn: AsyncConnection | None = None
    ) -> SlackThread | None:
        query = sa.select(slack_threads).where(
            slack_threads.c.team_id == team_id,
            slack_threads.c.channel_id == channel_id,
            slack_threads.c.thread_ts == thread_ts,
        )
        return await self._one(query, conn)

    async def by_session(
        self, session_id: str, *, conn: AsyncConnection | None = None
    ) -> SlackThread | None:
        query = sa.select(slack_threads).where(slack_threads.c.session_id == session_id)
        return await self._one(query, conn)

    async def _one(self, query: sa.Select[Any], conn: AsyncConnection | None) -> SlackThread | None:
        if conn is not None:
            row = (await conn.execute(query)).first()
        else:
            async with self._engine.connect() as own:
                row = (await own.execute(query)).first()
        return _thread(row) if row is not None else None

    async def enqueue_post(
        self,
        conn: AsyncConnection,
        *,
        key: str,
        team_id: str,
        channel_id: str,
        kind: PostKind,
        body: dict[str, Any],
        thread_ts: str | None = None,
        session_id: str | None = None,
        slack_user_id: str | None = None,
    ) -> bool:
        """Decide to post ``body`` ({text, blocks?}) once, in the caller's transaction: False
        when a post with ``key`` was decided before (nothing written). ``ephemeral`` posts go
        to ``slack_user_id`` only."""
        if not key or len(key) > POST_KEY_MAX:
            raise ValueError(f"a post key is 1 to {POST_KEY_MAX} characters")
        if kind == "ephemeral" and slack_user_id is None:
            raise ValueError("an ephemeral post needs its user")
        return await insert_once(
            conn,
            slack_posts,
            {
                "key": key,
                "session_id": session_id,
                "team_id": team_id,
                "channel_id": channel_id,
                "thread_ts": thread_ts,
                "kind": kind,
                "slack_user_id": slack_user_id,
                "body": json.dumps(body),
                "attempts": 0,
                "created_at": utcnow(),
            },
        )

    async def post(self, key: str) -> SlackPost | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(slack_posts).where(slack_posts.c.key == key))
            ).first()
        return _post(row) if row is not None else None

    async def posts(self, session_id: str) -> list[SlackPost]:
        """A session's posts in the order they were decided."""
        query = (
            sa.select(slack_posts)
            .where(slack_posts.c.session_id == session_id)
            .order_by(slack_posts.c.id)
        )
        async with self._engine.connect() as conn:
            return [_post(row) for row in (await conn.execute(query)).all()]
