"""Prompts and their queue state. The queue order is creation order (FIFO)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.models import (
    UNFINISHED_PROMPT_STATUSES,
    Author,
    Prompt,
    PromptStatus,
)
from openinspect.store.tables import prompts, users

_SELECT = sa.select(
    prompts,
    users.c.git_name.label("author_name"),
    users.c.git_email.label("author_email"),
).join(users, users.c.id == prompts.c.author_id)


def _prompt(row: sa.Row[Any]) -> Prompt:
    m = row._mapping
    return Prompt(
        id=m["id"],
        session_id=m["session_id"],
        author=Author(id=m["author_id"], name=m["author_name"], email=m["author_email"]),
        content=m["content"],
        model=m["model"],
        effort=m["effort"],
        client_request_id=m["client_request_id"],
        status=m["status"],
        error_code=m["error_code"],
        error_message=m["error_message"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


class PromptStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, prompt: Prompt, fingerprint: str) -> None:
        values = prompt.model_dump(exclude={"author"})
        async with self._engine.begin() as conn:
            await conn.execute(
                prompts.insert().values(
                    **values, author_id=prompt.author.id, fingerprint=fingerprint
                )
            )

    async def get(self, prompt_id: str) -> Prompt | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_SELECT.where(prompts.c.id == prompt_id))).first()
        return _prompt(row) if row else None

    async def by_client_request_id(
        self, session_id: str, client_request_id: str
    ) -> tuple[Prompt, str] | None:
        """The prompt sent earlier with this id, and its fingerprint."""
        query = _SELECT.where(
            prompts.c.session_id == session_id,
            prompts.c.client_request_id == client_request_id,
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (_prompt(row), row.fingerprint) if row else None

    async def for_session(
        self, session_id: str, statuses: Sequence[PromptStatus] | None = None
    ) -> list[Prompt]:
        query = _SELECT.where(prompts.c.session_id == session_id)
        if statuses:
            query = query.where(prompts.c.status.in_(statuses))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(prompts.c.created_at, prompts.c.id))).all()
        return [_prompt(r) for r in rows]

    async def count(self, session_id: str, statuses: Sequence[PromptStatus]) -> int:
        """How many of the session's prompts have one of ``statuses``."""
        query = sa.select(sa.func.count()).where(
            prompts.c.session_id == session_id, prompts.c.status.in_(statuses)
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def last_outcomes(
        self, session_ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None, str | None]]:
        """The status, error code and error message of each session's newest prompt (sessions
        with none are left out): what a session list needs to say how each session ended."""
        if not session_ids:
            return {}
        newest = (
            sa.select(prompts.c.session_id, sa.func.max(prompts.c.created_at).label("at"))
            .where(prompts.c.session_id.in_(session_ids))
            .group_by(prompts.c.session_id)
            .subquery()
        )
        query = sa.select(
            prompts.c.session_id, prompts.c.status, prompts.c.error_code, prompts.c.error_message
        ).join(
            newest,
            sa.and_(
                prompts.c.session_id == newest.c.session_id, prompts.c.created_at == newest.c.at
            ),
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.session_id: (row.status, row.error_code, row.error_message) for row in rows}

    async def unfinished(self, session_id: str) -> list[Prompt]:
        """Running and queued prompts, in queue order."""
        return await self.for_session(session_id, UNFINISHED_PROMPT_STATUSES)

    async def set_status(
        self,
        prompt_id: str,
        status: PromptStatus,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        only_if: Sequence[PromptStatus] | None = None,
    ) -> bool:
        """Move a prompt to ``status``; with ``only_if``, only from those statuses.
        Returns whether the prompt changed."""
        now = utcnow()
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values["started_at"] = now
        elif status not in UNFINISHED_PROMPT_STATUSES:
            values.update(finished_at=now, error_code=error_code, error_message=error_message)
        query = prompts.update().where(prompts.c.id == prompt_id).values(**values)
        if only_if:
            query = query.where(prompts.c.status.in_(only_if))
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount > 0
