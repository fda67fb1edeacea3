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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.store.db import insert_once
from openinspect.store.tables import sessions, slack_posts, slack_threads

ChannelType = Literal["im", "channel", "group", "mpim"]
PostKind = Literal["status", "final", "notify", "notice", "ephemeral"]
POST_KEY_MAX = 200
ERROR_CODE_MAX = 64
STATUS_KEY_PREFIX = "status:"
"""A thread's status post is ``status:<session id>``; its prompts' final posts
``final:<prompt id>``."""


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
class SessionFacts:
    repo_url: str
    branch: str
    title: str
    total_cost_usd: float


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

    # --- what the outbound side (integrations.slack.outbound / delivery) needs ---

    async def save_state(
        self, conn: AsyncConnection, session_id: str, state: dict[str, Any]
    ) -> int:
        """Replace the thread's status ``state`` and bump its version, in the caller's
        transaction; returns the new version (0: no thread row)."""
        result = await conn.execute(
            slack_threads.update()
            .where(slack_threads.c.session_id == session_id)
            .values(
                state=json.dumps(state),
                version=slack_threads.c.version + 1,
                updated_at=utcnow(),
            )
            .returning(slack_threads.c.version)
        )
        version = result.scalar_one_or_none()
        return int(version) if version is not None else 0

    async def without_status(self, limit: int = 100) -> list[SlackThread]:
        """Threads with no status message yet and no status post decided for them."""
        decided = sa.exists().where(
            slack_posts.c.key == sa.literal(STATUS_KEY_PREFIX) + slack_threads.c.session_id
        )
        query = (
            sa.select(slack_threads)
            .where(slack_threads.c.status_ts.is_(None), ~decided)
            .order_by(slack_threads.c.created_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_thread(row) for row in (await conn.execute(query)).all()]

    async def stale(self, limit: int = 100) -> list[SlackThread]:
        """Threads whose status message shows an older version than their state."""
        query = (
            sa.select(slack_threads)
            .where(
                slack_threads.c.status_ts.is_not(None),
                slack_threads.c.version > slack_threads.c.delivered_version,
            )
            .order_by(slack_threads.c.updated_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_thread(row) for row in (await conn.execute(query)).all()]

    async def mark_delivered(self, session_id: str, version: int) -> None:
        """Slack shows ``version`` of the thread's state (never moves back)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                slack_threads.update()
                .where(
                    slack_threads.c.session_id == session_id,
                    slack_threads.c.delivered_version < version,
                )
                .values(delivered_version=version)
            )

    async def unposted(self, limit: int = 100) -> list[SlackPost]:
        """Posts not delivered yet and not failed for good, oldest decision first."""
        query = (
            sa.select(slack_posts)
            .where(slack_posts.c.ts.is_(None), slack_posts.c.error_code.is_(None))
            .order_by(slack_posts.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_post(row) for row in (await conn.execute(query)).all()]

    async def begin_attempt(self, post_id: int) -> int:
        """Count one more delivery attempt of a post before its call is made (committed, so a
        crash after Slack answered leaves ``attempts > 0``: look before posting again);
        returns the attempts made before this one."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                slack_posts.update()
                .where(slack_posts.c.id == post_id)
                .values(attempts=slack_posts.c.attempts + 1)
                .returning(slack_posts.c.attempts)
            )
            return int(result.scalar_one()) - 1

    async def record_posted(self, post: SlackPost, ts: str) -> None:
        """The post is in Slack as message ``ts``; a status post's ts becomes its thread's
        ``status_ts``, and what it showed (``body["version"]``) the delivered version."""
        async with self._engine.begin() as conn:
            await conn.execute(
                slack_posts.update()
                .where(slack_posts.c.id == post.id)
                .values(ts=ts, posted_at=utcnow())
            )
            if post.kind == "status" and post.session_id is not None:
                shown = int(post.body.get("version", 0))
                await conn.execute(
                    slack_threads.update()
                    .where(slack_threads.c.session_id == post.session_id)
                    .values(
                        status_ts=ts,
                        delivered_version=sa.case(
                            (slack_threads.c.delivered_version < shown, shown),
                            else_=slack_threads.c.delivered_version,
                        ),
                    )
                )

    async def record_failed(self, post_id: int, error_code: str) -> None:
        """The post cannot be delivered (``error_code``: Slack's, e.g. ``channel_not_found``);
        it is never tried again."""
        async with self._engine.begin() as conn:
            await conn.execute(
                slack_posts.update()
                .where(slack_posts.c.id == post_id)
                .values(error_code=error_code[:ERROR_CODE_MAX])
            )

    async def session_facts(self, conn: AsyncConnection, session_id: str) -> SessionFacts | None:
        """What a thread's status shows of its session before any of its events did."""
        query = sa.select(
            sessions.c.repo_url, sessions.c.branch, sessions.c.title, sessions.c.total_cost_usd
        ).where(sessions.c.id == session_id)
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        return SessionFacts(row.repo_url, row.branch, row.title, float(row.total_cost_usd))
