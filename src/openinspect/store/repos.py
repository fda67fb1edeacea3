"""Registered repositories: a name, where to clone from, and the default base branch."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.domain.models import Repo
from openinspect.errors import ConflictError, StoreConflict
from openinspect.store.tables import repos


class RepoStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, *, name: str, url: str, default_branch: str, created_by: str) -> Repo:
        repo = Repo(
            id=new_id("rep"),
            name=name,
            url=url,
            default_branch=default_branch,
            created_at=utcnow(),
        )
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    repos.insert().values(**repo.model_dump(), created_by=created_by)
                )
        except StoreConflict as exc:
            raise ConflictError(
                f"A repo named {name!r} is already registered",
                hint="Pick another name or use the registered one",
            ) from exc
        return repo

    async def list(self) -> list[Repo]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(repos.select().order_by(repos.c.name))).all()
        return [Repo.model_validate(r._mapping) for r in rows]

    async def find(self, key: str) -> Repo | None:
        """A repo by id or by name."""
        query = repos.select().where(sa.or_(repos.c.id == key, repos.c.name == key))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return Repo.model_validate(row._mapping) if row else None
