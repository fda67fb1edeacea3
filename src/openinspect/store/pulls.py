"""Pull requests opened by sessions: one per (session, branch), state kept from webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.domain.models import OpenedAs, PullRequestRecord, PullRequestState
from openinspect.store.tables import pull_requests


def _record(row: sa.Row[Any]) -> PullRequestRecord:
    return PullRequestRecord.model_validate(row._mapping)


class PullRequestStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_branch(self, session_id: str, branch: str) -> PullRequestRecord | None:
        query = pull_requests.select().where(
            pull_requests.c.session_id == session_id, pull_requests.c.branch == branch
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row else None

    async def for_session(self, session_id: str) -> list[PullRequestRecord]:
        query = (
            pull_requests.select()
            .where(pull_requests.c.session_id == session_id)
            .order_by(pull_requests.c.created_at)
        )
        async with self._engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(query)).all()]

    async def newest_for_sessions(self, session_ids: Sequence[str]) -> dict[str, PullRequestRecord]:
        """Each listed session's newest pull request (sessions with none are left out): what a
        session list shows as its PR state."""
        if not session_ids:
            return {}
        query = (
            pull_requests.select()
            .where(pull_requests.c.session_id.in_(session_ids))
            .order_by(pull_requests.c.created_at)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.session_id: _record(row) for row in rows}  # the newest wins

    async def by_number(self, repo: str, number: int) -> PullRequestRecord | None:
        query = pull_requests.select().where(
            sa.func.lower(pull_requests.c.repo) == repo.lower(), pull_requests.c.number == number
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row else None

    async def save(
        self,
        *,
        session_id: str,
        repo: str,
        number: int,
        url: str,
        branch: str,
        base: str,
        title: str,
        state: PullRequestState,
        draft: bool,
        opened_as: OpenedAs,
        author_login: str | None,
    ) -> PullRequestRecord:
        """Insert the session's PR for ``branch``, or update it in place."""
        now = utcnow()
        values: dict[str, Any] = {
            "repo": repo,
            "number": number,
            "url": url,
            "base": base,
            "title": title,
            "state": state,
            "draft": draft,
            "opened_as": opened_as,
            "author_login": author_login,
            "updated_at": now,
        }
        async with self._engine.begin() as conn:
            updated = await conn.execute(
                pull_requests.update()
                .where(pull_requests.c.session_id == session_id, pull_requests.c.branch == branch)
                .values(**values)
            )
            if updated.rowcount == 0:
                await conn.execute(
                    pull_requests.insert().values(
                        id=new_id("pr"),
                        session_id=session_id,
                        branch=branch,
                        created_at=now,
                        **values,
                    )
                )
        record = await self.for_branch(session_id, branch)
        assert record is not None
        return record

    async def set_state(
        self, repo: str, number: int, state: PullRequestState
    ) -> PullRequestRecord | None:
        """Apply a state change from a webhook; None when no session owns that PR."""
        async with self._engine.begin() as conn:
            await conn.execute(
                pull_requests.update()
                .where(
                    sa.func.lower(pull_requests.c.repo) == repo.lower(),
                    pull_requests.c.number == number,
                )
                .values(state=state, updated_at=utcnow())
            )
        return await self.by_number(repo, number)
