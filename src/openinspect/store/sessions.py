"""Sessions, their participants and their persisted agent conversation."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.models import Session
from openinspect.errors import StoreConflict
from openinspect.store.changes import NewSession, insert_session
from openinspect.store.owners import SESSION_LEASE_PREFIX
from openinspect.store.tables import (
    conversation_messages,
    leases,
    participants,
    prompts,
    sessions,
)


def _session(row: sa.Row[Any]) -> Session:
    return Session.model_validate(row._mapping)


class SessionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        session: Session,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> bool:
        """Insert the session and its owner, with no event (imports and tests; a live create
        announces itself: ``NewSession`` in ``store/changes.py``). With an ``idempotency_key``,
        False (and nothing written) when its creator already made a session under that key: the
        unique index decides between concurrent creates, on every replica."""
        try:
            async with self._engine.begin() as conn:
                return await insert_session(conn, NewSession(session, idempotency_key, fingerprint))
        except StoreConflict:
            if idempotency_key is None:
                raise
            if await self.by_idempotency_key(session.creator_id, idempotency_key) is None:
                raise
            return False

    async def by_idempotency_key(
        self, creator_id: str, key: str
    ) -> tuple[Session, str | None] | None:
        """The session ``creator_id`` made under ``key``, with its request's fingerprint."""
        query = sessions.select().where(
            sessions.c.creator_id == creator_id, sessions.c.idempotency_key == key
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (_session(row), row.create_fingerprint) if row else None

    async def get(self, session_id: str) -> Session | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sessions.select().where(sessions.c.id == session_id))).first()
        return _session(row) if row else None

    async def list(
        self,
        *,
        creator_id: str | None = None,
        participant_id: str | None = None,
        statuses: Sequence[str] | None = None,
        archived: bool | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Session]:
        """Newest first. ``before`` is a session id to page from (exclusive). ``archived``:
        only archived sessions (True), none of them (False), or both (None)."""
        query = sessions.select().order_by(sessions.c.updated_at.desc(), sessions.c.id.desc())
        if creator_id:
            query = query.where(sessions.c.creator_id == creator_id)
        if participant_id:  # sessions the user created or took part in
            query = query.where(
                sessions.c.id.in_(
                    sa.select(participants.c.session_id).where(
                        participants.c.user_id == participant_id
                    )
                )
            )
        if statuses:
            query = query.where(sessions.c.status.in_(statuses))
        if archived is not None:
            archived_test = sessions.c.status == "archived"
            query = query.where(archived_test if archived else sa.not_(archived_test))
        if before:
            anchor = (
                sa.select(sessions.c.updated_at).where(sessions.c.id == before).scalar_subquery()
            )
            query = query.where(sessions.c.updated_at < anchor)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [_session(r) for r in rows]

    async def add_participant(self, session_id: str, user_id: str) -> None:
        """Record that a user took part (joined or prompted). Idempotent."""
        async with self._engine.begin() as conn:
            exists = (
                await conn.execute(
                    sa.select(participants.c.user_id).where(
                        participants.c.session_id == session_id,
                        participants.c.user_id == user_id,
                    )
                )
            ).first()
            if exists is None:
                await conn.execute(
                    participants.insert().values(
                        session_id=session_id,
                        user_id=user_id,
                        role="member",
                        joined_at=utcnow(),
                    )
                )

    async def participant_roles(self, session_id: str) -> dict[str, str]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(participants.c.user_id, participants.c.role).where(
                        participants.c.session_id == session_id
                    )
                )
            ).all()
        return {r.user_id: r.role for r in rows}

    async def load_conversation(self, session_id: str) -> Sequence[str]:
        """The agent's message history as stored, one JSON message per row, in order (none
        before the first prompt)."""
        query = (
            sa.select(conversation_messages.c.message)
            .where(conversation_messages.c.session_id == session_id)
            .order_by(conversation_messages.c.position)
        )
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars().all())

    async def load_labelled_conversation(self, session_id: str) -> Sequence[tuple[str, str | None]]:
        """The stored messages with the prompt whose run wrote each (None: from before that was
        recorded, or given to a fork by its source), in order."""
        query = (
            sa.select(conversation_messages.c.message, conversation_messages.c.prompt_id)
            .where(conversation_messages.c.session_id == session_id)
            .order_by(conversation_messages.c.position)
        )
        async with self._engine.connect() as conn:
            return [(r.message, r.prompt_id) for r in (await conn.execute(query)).all()]

    async def save_conversation(
        self, session_id: str, start: int, rows: Sequence[str], prompt_id: str | None = None
    ) -> None:
        """Store ``rows`` as the messages from position ``start`` on and drop any stored after
        them, in one transaction: after a model step that is an append of its new messages.
        ``prompt_id``: the prompt whose run wrote them (where a fork may cut)."""
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(
                conversation_messages.delete().where(
                    conversation_messages.c.session_id == session_id,
                    conversation_messages.c.position >= start,
                )
            )
            if rows:
                await conn.execute(
                    conversation_messages.insert(),
                    [
                        {
                            "session_id": session_id,
                            "position": start + i,
                            "message": row,
                            "created_at": now,
                            "prompt_id": prompt_id,
                        }
                        for i, row in enumerate(rows)
                    ],
                )

    async def touch_watched(self, session_id: str, at: datetime) -> None:
        """Someone has the session open now (any server; read by ``watched_since``)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                sessions.update().where(sessions.c.id == session_id).values(watched_at=at)
            )

    async def watched_since(self, session_ids: Collection[str], since: datetime) -> set[str]:
        """The sessions among ``session_ids`` someone had open at ``since`` or later."""
        if not session_ids:
            return set()
        query = sa.select(sessions.c.id).where(
            sessions.c.id.in_(list(session_ids)), sessions.c.watched_at >= since
        )
        async with self._engine.connect() as conn:
            return set((await conn.execute(query)).scalars().all())

    async def existing(self, session_ids: Collection[str]) -> set[str]:
        """The ids among ``session_ids`` that still name a session."""
        if not session_ids:
            return set()
        query = sa.select(sessions.c.id).where(sessions.c.id.in_(list(session_ids)))
        async with self._engine.connect() as conn:
            return set((await conn.execute(query)).scalars().all())

    async def delete_abandoned_drafts(self, created_before: datetime, limit: int) -> Sequence[str]:
        """Delete drafts (status ``created``: no prompt was ever queued) created before
        ``created_before``, at most ``limit``; returns the ids deleted. Each statement
        re-checks the conditions, so several servers sweeping at once delete each draft once
        and never a session that got its first prompt meanwhile (its prompt's row refers to
        it)."""
        no_prompt = ~sa.exists().where(prompts.c.session_id == sessions.c.id)
        abandoned = sa.and_(
            sessions.c.status == "created", sessions.c.created_at < created_before, no_prompt
        )
        async with self._engine.begin() as conn:
            ids: Sequence[str] = list(
                (
                    await conn.execute(
                        sa.select(sessions.c.id)
                        .where(abandoned)
                        .order_by(sessions.c.created_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                # A child session keeps its history; only the link to the draft goes.
                await conn.execute(
                    sessions.update().where(sessions.c.parent_id.in_(ids)).values(parent_id=None)
                )
                # RETURNING: of servers sweeping at once, only the one whose delete took the
                # row reports it.
                deleted = await conn.execute(
                    sessions.delete()
                    .where(sessions.c.id.in_(ids), abandoned)
                    .returning(sessions.c.id)
                )
                ids = sorted(deleted.scalars().all())
                # Their ownership leases too: nothing will own these sessions again.
                names = [f"{SESSION_LEASE_PREFIX}{i}" for i in ids]
                if names:
                    await conn.execute(leases.delete().where(leases.c.name.in_(names)))
        return ids
