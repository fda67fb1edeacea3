"""Branches on a session's origin: who owns each name, and what each session pushed.

A *claim* says which session owns a branch name of a repo. There is one claim per repo and name,
the first session to claim it keeps it, and the claim outlives the branch on the origin (GitHub
deletes a merged PR's branch) and the session itself, so a name is never handed to another
session. A session claims its own branch when it is created and every branch it pushes.

A *push record* (``session_branches``) says which branches a session pushed and where their heads
were; the git proxy lets a session move an existing branch only when it pushed it before.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.errors import StoreConflict
from openinspect.store.tables import branch_claims, session_branches


def repo_key(repo_url: str) -> str:
    """The claims' key for a repo: a hash of its canonical URL (``Origins.canonical``)."""
    return hashlib.sha256(repo_url.encode()).hexdigest()


class BranchStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def names(self, session_id: str) -> frozenset[str]:
        """The branches the session pushed (deleted ones included)."""
        query = sa.select(session_branches.c.branch).where(
            session_branches.c.session_id == session_id
        )
        async with self._engine.connect() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def head(self, session_id: str, branch: str) -> str | None:
        """Where the session last put ``branch`` (None: never pushed, or deleted)."""
        query = sa.select(session_branches.c.head_sha).where(
            session_branches.c.session_id == session_id, session_branches.c.branch == branch
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def claim(self, session_id: str, repo_url: str, branch: str) -> bool:
        """Claim ``branch`` of ``repo_url`` for the session. True when the session holds the
        claim now (new or already its own), False when another session holds it."""
        key = repo_key(repo_url)
        async with self._engine.begin() as conn:
            owner = await self._owner(conn, key, branch)
            if owner is not None:
                return owner == session_id
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    branch_claims.insert().values(
                        repo_key=key, branch=branch, session_id=session_id, created_at=utcnow()
                    )
                )
        except StoreConflict:  # claimed meanwhile: whoever won keeps it
            return await self.owner(repo_url, branch) == session_id
        return True

    async def release(self, session_id: str) -> None:
        """Drop the claims of a session that was never created (its create lost a race to
        another under the same idempotency key): nothing was pushed under its names."""
        async with self._engine.begin() as conn:
            await conn.execute(
                branch_claims.delete().where(branch_claims.c.session_id == session_id)
            )

    async def owner(self, repo_url: str, branch: str) -> str | None:
        """The session that claimed ``branch`` of ``repo_url``, if any."""
        async with self._engine.connect() as conn:
            return await self._owner(conn, repo_key(repo_url), branch)

    async def _owner(self, conn: AsyncConnection, key: str, branch: str) -> str | None:
        query = sa.select(branch_claims.c.session_id).where(
            branch_claims.c.repo_key == key, branch_claims.c.branch == branch
        )
        return (await conn.execute(query)).scalar_one_or_none()

    async def claimed(self, session_id: str) -> frozenset[str]:
        """The branch names the session owns."""
        query = sa.select(branch_claims.c.branch).where(branch_claims.c.session_id == session_id)
        async with self._engine.connect() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def claimed_by_others(
        self, session_id: str, repo_url: str, branch: str, prefix: str
    ) -> frozenset[str]:
        """The names of ``repo_url`` that are ``branch`` or start with ``prefix`` and that another
        session owns (a session's own names, taken by someone before the rules were strict)."""
        column = branch_claims.c.branch
        query = sa.select(column).where(
            branch_claims.c.repo_key == repo_key(repo_url),
            sa.or_(column == branch, sa.func.substr(column, 1, len(prefix)) == prefix),
            branch_claims.c.session_id != session_id,
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
