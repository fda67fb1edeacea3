"""A registered repo's own review-bot settings (``repo_review_settings``): whether new pull
requests are reviewed, the review instructions, the model. A null field (or no row) means the
server's default (``settings.github.bot``); :func:`effective` combines the two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.settings import GitHubBotSettings
from openinspect.store.db import insert_once
from openinspect.store.tables import repo_review_settings as table

INSTRUCTIONS_MAX_CHARS = 8_000
MODEL_MAX_CHARS = 300


@dataclass(frozen=True)
class RepoReviewSettings:
    repo_id: str
    auto_review: bool | None
    instructions: str | None
    model: str | None
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True)
class EffectiveReviewSettings:
    """What the bot does for a repo: its own settings over the server's defaults."""

    auto_review: bool
    instructions: str | None
    model: str | None


def effective(
    own: RepoReviewSettings | None, defaults: GitHubBotSettings
) -> EffectiveReviewSettings:
    if own is None:
        return EffectiveReviewSettings(defaults.auto_review, None, defaults.model)
    return EffectiveReviewSettings(
        auto_review=defaults.auto_review if own.auto_review is None else own.auto_review,
        instructions=own.instructions,
        model=own.model or defaults.model,
    )


def _settings(row: sa.Row[Any]) -> RepoReviewSettings:
    m = row._mapping
    return RepoReviewSettings(
        repo_id=m["repo_id"],
        auto_review=m["auto_review"],
        instructions=m["instructions"],
        model=m["model"],
        updated_by=m["updated_by"],
        updated_at=m["updated_at"],
    )


class ReviewSettingsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, repo_id: str) -> RepoReviewSettings | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(table).where(table.c.repo_id == repo_id))).first()
        return _settings(row) if row is not None else None

    async def put(
        self,
        repo_id: str,
        *,
        auto_review: bool | None,
        instructions: str | None,
        model: str | None,
        updated_by: str | None,
    ) -> RepoReviewSettings:
        """Replace the repo's settings (None: the server's default for that field)."""
        values = {
            "auto_review": auto_review,
            "instructions": instructions,
            "model": model,
            "updated_by": updated_by,
            "updated_at": utcnow(),
        }
        async with self._engine.begin() as conn:
            if not await insert_once(conn, table, {"repo_id": repo_id, **values}):
                await conn.execute(table.update().where(table.c.repo_id == repo_id).values(values))
            row = (await conn.execute(sa.select(table).where(table.c.repo_id == repo_id))).one()
        return _settings(row)
