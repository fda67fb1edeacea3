"""Warm pool sizes: how many ready boxes each replica keeps per registered repo
(``repo_pools``; the pool itself is ``sessions/pool.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.models import Repo
from openinspect.store.tables import repo_pools, repos


@dataclass(frozen=True)
class PoolTarget:
    """A repo with a pool: its boxes are made from ``repo.url`` on ``repo.default_branch``."""

    repo: Repo
    size: int


class PoolStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def size(self, repo_id: str) -> int:
        """The repo's pool size (0 when it has none)."""
        query = sa.select(repo_pools.c.size).where(repo_pools.c.repo_id == repo_id)
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none() or 0

    async def set_size(self, repo_id: str, size: int, *, updated_by: str | None) -> None:
        """Set the repo's pool size (checked by the caller); 0 removes the pool."""
        async with self._engine.begin() as conn:
            if size == 0:
                await conn.execute(repo_pools.delete().where(repo_pools.c.repo_id == repo_id))
                return
            values = {"size": size, "updated_by": updated_by, "updated_at": utcnow()}
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            statement = insert(repo_pools).values(repo_id=repo_id, **values)
            await conn.execute(
                statement.on_conflict_do_update(index_elements=["repo_id"], set_=values)
            )

    async def targets(self) -> list[PoolTarget]:
        """Every repo with a pool, by name (one query: each replica's pool asks every pass)."""
        query = (
            sa.select(repos, repo_pools.c.size)
            .select_from(repos.join(repo_pools, repo_pools.c.repo_id == repos.c.id))
            .where(repo_pools.c.size > 0)
            .order_by(repos.c.name)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = []
        for row in rows:
            fields = dict(row._mapping)
            size = fields.pop("size")
            fields.pop("created_by", None)
            found.append(PoolTarget(Repo.model_validate(fields), size))
        return found
