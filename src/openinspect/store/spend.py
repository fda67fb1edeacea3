"""Spend limits and the spend ledger: what a session (tree) and a person may spend, and what
they spent.

Limits (``spend_limits``), in US dollars:

- a session's budget, set ``global``-ly, per ``repo`` and per ``automation``, inherited
  downwards: a session made by an automation has its automation's limit when one is set, else
  its repo's, else the global one, else none. The budget is of the session's tree: a child
  session (``sessions.parent_id``) counts against its root's budget.
- ``user-daily``: what each person may spend per UTC day, over all their sessions (the person
  who asked for each prompt pays for it).

The ledger (``spend_ledger``) has one row per model response, written by ``record`` in the
transaction that stores its ``usage`` event, under the same key: a re-sent event is neither
stored nor counted again. It keeps the root of the session's tree and the person who asked, so
both sums are one indexed query.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import Usage, utcnow
from openinspect.errors import InvalidInput
from openinspect.store.db import insert_once
from openinspect.store.tables import automation_runs, prompts, sessions, spend_ledger, spend_limits

LimitScope = Literal["global", "repo", "automation", "user-daily"]
LIMIT_SCOPES: tuple[LimitScope, ...] = get_args(LimitScope)
ANY = "*"
"""The key of the scopes that have one limit (``global``, ``user-daily``)."""
MAX_LIMIT_USD = 1_000_000.0
"""The largest limit accepted: anything above is a typo, not a budget."""
TREE_DEPTH_MAX = 8
"""How far up ``parent_id`` the root of a session is looked for (sessions nest 2 deep)."""


@dataclass(frozen=True)
class SpendLimit:
    scope: LimitScope
    key: str
    usd: float
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True)
class LimitHit:
    """A limit a session has reached: which, what was spent against it, and the limit."""

    scope: LimitScope
    key: str
    spent_usd: float
    limit_usd: float
    user_id: str | None = None
    """For ``user-daily``: whose day it is."""


def check_usd(usd: float) -> float:
    """Refuse a limit that is not a finite amount from 0 to ``MAX_LIMIT_USD``."""
    if not math.isfinite(usd) or usd < 0 or usd > MAX_LIMIT_USD:
        raise InvalidInput(
            f"A spend limit is an amount in US dollars from 0 to {MAX_LIMIT_USD:,.0f}",
            hint="e.g. 5 or 0.25; delete the limit to have none",
        )
    return round(usd, 6)


def today(now: datetime | None = None) -> str:
    """The UTC day a cost counts toward, as stored (``YYYY-MM-DD``)."""
    return (now or utcnow()).strftime("%Y-%m-%d")


class SpendStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def limits(self) -> list[SpendLimit]:
        query = sa.select(spend_limits).order_by(spend_limits.c.scope, spend_limits.c.key)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [SpendLimit(**r._mapping) for r in rows]

    async def set_limit(
        self, scope: LimitScope, key: str, usd: float | None, *, by: str | None
    ) -> None:
        """Set (or, with None, remove) the limit of ``scope`` and ``key``."""
        async with self._engine.begin() as conn:
            where = (spend_limits.c.scope == scope) & (spend_limits.c.key == key)
            if usd is None:
                await conn.execute(spend_limits.delete().where(where))
                return
            values = {"usd": check_usd(usd), "updated_by": by, "updated_at": utcnow()}
            if not await insert_once(conn, spend_limits, {"scope": scope, "key": key, **values}):
                await conn.execute(spend_limits.update().where(where).values(**values))

    async def check(self, session_id: str, user_ids: Sequence[str]) -> LimitHit | None:
        """The first limit reached by ``session_id``'s tree, or by the day of one of
        ``user_ids`` (the people whose prompts are to run), else None. Reached: spent at
        least the limit (a limit of 0 stops everything)."""
        async with self._engine.connect() as conn:
            limits = {
                (r.scope, r.key): float(r.usd)
                for r in (await conn.execute(sa.select(spend_limits))).all()
            }
            if not limits:  # the common case: one small query per model request
                return None
            row = (
                await conn.execute(
                    sa.select(sessions.c.repo_id, sessions.c.parent_id).where(
                        sessions.c.id == session_id
                    )
                )
            ).first()
            if row is None:
                return None
            root = await _root(conn, session_id, row.parent_id)
            budget = await _session_limit(
                conn, limits, root, row.repo_id, root_is_other=root != session_id
            )
            if budget is not None:
                spent = await _sum(conn, spend_ledger.c.root_session_id == root)
                if spent >= budget[2]:
                    return LimitHit(budget[0], budget[1], spent, budget[2])
            daily = limits.get(("user-daily", ANY))
            if daily is not None:
                day = today()
                for user_id in dict.fromkeys(user_ids):
                    spent = await _sum(
                        conn, (spend_ledger.c.user_id == user_id) & (spend_ledger.c.day == day)
                    )
                    if spent >= daily:
                        return LimitHit("user-daily", ANY, spent, daily, user_id)
        return None

    async def spent_by_tree(self, session_id: str) -> float:
        async with self._engine.connect() as conn:
            return await _sum(conn, spend_ledger.c.root_session_id == session_id)

    async def spent_today(self, user_id: str) -> float:
        async with self._engine.connect() as conn:
            return await _sum(
                conn, (spend_ledger.c.user_id == user_id) & (spend_ledger.c.day == today())
            )


async def _sum(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> float:
    query = sa.select(sa.func.coalesce(sa.func.sum(spend_ledger.c.cost_usd), 0.0)).where(where)
    return float((await conn.execute(query)).scalar_one())


async def _root(conn: AsyncConnection, session_id: str, parent_id: str | None) -> str:
    """The root of the session's tree: its topmost ancestor by ``parent_id``."""
    root = session_id
    for _ in range(TREE_DEPTH_MAX):
        if parent_id is None:
            break
        root = parent_id
        parent_id = (
            await conn.execute(sa.select(sessions.c.parent_id).where(sessions.c.id == root))
        ).scalar_one_or_none()
    return root


async def _session_limit(
    conn: AsyncConnection,
    limits: dict[tuple[str, str], float],
    root: str,
    repo_id: str | None,
    *,
    root_is_other: bool,
) -> tuple[LimitScope, str, float] | None:
    """The budget of the tree rooted at ``root``: its automation's, else its repo's, else the
    global one (the root session's, so a whole tree has one budget)."""
    automation_id = (
        await conn.execute(
            sa.select(automation_runs.c.automation_id)
            .where(automation_runs.c.session_id == root)
            .limit(1)
        )
    ).scalar_one_or_none()
    if root_is_other:
        repo_id = (
            await conn.execute(sa.select(sessions.c.repo_id).where(sessions.c.id == root))
        ).scalar_one_or_none()
    candidates: list[tuple[LimitScope, str]] = []
    if automation_id is not None:
        candidates.append(("automation", str(automation_id)))
    if repo_id is not None:
        candidates.append(("repo", str(repo_id)))
    candidates.append(("global", ANY))
    for scope, key in candidates:
        usd = limits.get((scope, key))
        if usd is not None:
            return scope, key, usd
    return None


async def record(conn: AsyncConnection, usage: Sequence[tuple[Usage, str]]) -> None:
    """Add the cost of freshly stored ``usage`` events (each with its dedupe key) to the ledger,
    in the caller's transaction: the person who asked (the prompt's author) and the tree's root
    with each. An entry already there (the same response) is left as it is."""
    for event, key in usage:
        author = None
        if event.prompt_id is not None:
            author = (
                await conn.execute(
                    sa.select(prompts.c.author_id).where(prompts.c.id == event.prompt_id)
                )
            ).scalar_one_or_none()
        parent = (
            await conn.execute(
                sa.select(sessions.c.parent_id).where(sessions.c.id == event.session_id)
            )
        ).scalar_one_or_none()
        await insert_once(
            conn,
            spend_ledger,
            {
                "session_id": event.session_id,
                "dedupe_key": key,
                "root_session_id": await _root(conn, event.session_id, parent),
                "user_id": author,
                "day": today(event.ts),
                "cost_usd": float(event.cost_usd),
                "created_at": event.ts,
            },
        )
