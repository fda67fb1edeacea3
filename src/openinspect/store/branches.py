"""Branches a session created on its origin, through the git proxy or the post-prompt push.

The git proxy lets a session update or delete only branches listed here (plus its own
``openinspect/<id>``), so one session can never move another session's work.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.store.tables import session_branches


class BranchStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def names(self, session_id: str) -> frozenset[str]:
        query = sa.select(session_branches.c.branch).where(
            session_branches.c.session_id == session_id
        )
        async with self._engine.connect() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def record(self, session_id: str, branch: str, head_sha: str | None) -> None:
        """Remember that the session pushed ``branch`` (created or moved it); ``head_sha`` None
        means the session deleted it."""
        now = utcnow()
        async with self._engine.begin() as conn:
            updated = await conn.execute(
                session_branches.update()
                .where(
                    session_branches.c.session_id == session_id,
                    session_branches.c.branch == branch,
                )
                .values(head_sha=head_sha, updated_at=now)
            )
            if updated.rowcount == 0:
                await conn.execute(
                    session_branches.insert().values(
                        session_id=session_id,
                        branch=branch,
                        head_sha=head_sha,
                        created_at=now,
                        updated_at=now,
                    )
                )
