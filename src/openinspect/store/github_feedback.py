"""GitHub objects turned into prompts (or refused), each once: fix requests and review feedback.

A row is keyed by the GitHub object (``review:<repo>:<review id>``, ``comment:<repo>:<comment
id>``, ``review-comment:<repo>:<comment id>``; ``repo`` lower-cased), so a redelivery, a replay
or a second server deciding the same object finds the first decision instead of making another.
``outcome`` says what was decided: ``prompted`` (review feedback sent into the session that
opened the pull request), ``attempt_limit`` (not sent: the pull request had its automatic
attempts), ``fix_branch`` / ``fix_pr`` (a fix session on the pull request's branch, or on a
branch of its own that opens a new one), ``unlinked`` (the asker has no account here),
``answer`` / ``answer_thread`` (a question for the review bot, answered when its prompt ends: on
the conversation, or in the review thread, whose root is in the key:
``answer_thread:<repo>:<root id>:<comment id>``).

:meth:`GithubFeedbackStore.decide_feedback` counts a pull request's ``prompted`` rows against
the cap in the transaction that inserts the new one, after taking the pull request's lock row
(``pull:<repo>#<number>``): two servers deciding two reviews of one pull request at once are
serialised there (a row lock on Postgres, the write lock on SQLite), so the cap holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.store.db import insert_once
from openinspect.store.tables import github_feedback

PROMPTED = "prompted"
ATTEMPT_LIMIT = "attempt_limit"
PULL_LOCK = "pull"
KEY_MAX = 200


def feedback_key(kind: str, repo: str, object_id: int) -> str:
    """The row key of one GitHub object of ``repo`` (``owner/name``)."""
    return f"{kind}:{repo.lower()}:{object_id}"[:KEY_MAX]


def _pull_key(repo: str, number: int) -> str:
    return f"{PULL_LOCK}:{repo.lower()}#{number}"[:KEY_MAX]


@dataclass(frozen=True)
class Feedback:
    key: str
    repo: str
    number: int
    session_id: str | None
    prompt_id: str | None
    outcome: str
    created_at: datetime


@dataclass(frozen=True)
class Decided:
    """A decision and whether this call made it (False: an earlier one had, and stands)."""

    feedback: Feedback
    fresh: bool


def _feedback(row: sa.Row[Any]) -> Feedback:
    m = row._mapping
    return Feedback(
        key=m["key"],
        repo=m["repo"],
        number=m["number"],
        session_id=m["session_id"],
        prompt_id=m["prompt_id"],
        outcome=m["outcome"],
        created_at=m["created_at"],
    )


OnLimit = Callable[[AsyncConnection], Awaitable[None]]
"""Called in the deciding transaction when the cap refused an object (to queue the one comment
saying so, by an outbox key that makes it once)."""


class GithubFeedbackStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, key: str) -> Feedback | None:
        async with self._engine.connect() as conn:
            return await self._get(conn, key)

    async def _get(self, conn: AsyncConnection, key: str) -> Feedback | None:
        query = github_feedback.select().where(github_feedback.c.key == key)
        row = (await conn.execute(query)).first()
        return _feedback(row) if row is not None else None

    async def record(
        self,
        *,
        key: str,
        repo: str,
        number: int,
        outcome: str,
        session_id: str | None = None,
        prompt_id: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> Decided:
        """Insert the decision on ``key`` once; the earlier one when there was one. With
        ``conn`` it is written in the caller's transaction."""
        if conn is not None:
            return await self._record(conn, key, repo, number, outcome, session_id, prompt_id)
        async with self._engine.begin() as own:
            return await self._record(own, key, repo, number, outcome, session_id, prompt_id)

    async def _record(
        self,
        conn: AsyncConnection,
        key: str,
        repo: str,
        number: int,
        outcome: str,
        session_id: str | None,
        prompt_id: str | None,
    ) -> Decided:
        values = {
            "key": key,
            "repo": repo,
            "number": number,
            "session_id": session_id,
            "prompt_id": prompt_id,
            "outcome": outcome,
            "created_at": utcnow(),
        }
        fresh = await insert_once(conn, github_feedback, values)
        found = await self._get(conn, key)
        assert found is not None  # inserted now, or by the decision that stands
        return Decided(found, fresh)

    async def decide_feedback(
        self,
        *,
        key: str,
        repo: str,
        number: int,
        session_id: str,
        cap: int,
        on_limit: OnLimit | None = None,
    ) -> Decided:
        """Decide a review of pull request ``repo#number`` once: ``prompted`` while the pull
        request has had fewer than ``cap`` prompted objects, else ``attempt_limit`` (and
        ``on_limit`` runs in the same transaction). An object decided before keeps its
        decision (``fresh`` False)."""
        async with self._engine.begin() as conn:
            await self._lock_pull(conn, repo, number)
            earlier = await self._get(conn, key)
            if earlier is not None:
                return Decided(earlier, False)
            prompted = await self._count(conn, repo, number, PROMPTED)
            outcome = PROMPTED if prompted < cap else ATTEMPT_LIMIT
            decided = await self._record(conn, key, repo, number, outcome, session_id, None)
            if outcome == ATTEMPT_LIMIT and on_limit is not None:
                await on_limit(conn)
            return decided

    async def _lock_pull(self, conn: AsyncConnection, repo: str, number: int) -> None:
        """Take the pull request's lock row (made on first use) until the transaction ends."""
        key = _pull_key(repo, number)
        await self._record(conn, key, repo, number, PULL_LOCK, None, None)
        await conn.execute(
            github_feedback.update()
            .where(github_feedback.c.key == key)
            .values(outcome=github_feedback.c.outcome)
        )

    async def _count(self, conn: AsyncConnection, repo: str, number: int, outcome: str) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(github_feedback)
            .where(
                sa.func.lower(github_feedback.c.repo) == repo.lower(),
                github_feedback.c.number == number,
                github_feedback.c.outcome == outcome,
            )
        )
        return int((await conn.execute(query)).scalar_one())

    async def count(self, repo: str, number: int, outcome: str = PROMPTED) -> int:
        """How many objects of pull request ``repo#number`` were decided ``outcome``."""
        async with self._engine.connect() as conn:
            return await self._count(conn, repo, number, outcome)

    async def set_prompt(self, key: str, *, session_id: str, prompt_id: str) -> None:
        """The prompt a decision made (once it was queued)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                github_feedback.update()
                .where(github_feedback.c.key == key)
                .values(session_id=session_id, prompt_id=prompt_id)
            )

    async def by_prompt(self, conn: AsyncConnection, prompt_ids: list[str]) -> list[Feedback]:
        """The decisions that made these prompts, read in the caller's transaction (a feed
        projection's)."""
        if not prompt_ids:
            return []
        query = github_feedback.select().where(github_feedback.c.prompt_id.in_(prompt_ids))
        return [_feedback(r) for r in (await conn.execute(query)).all()]
