"""Sandbox records: which provider ran one for a session, its status and token hash."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.models import SandboxStatus
from openinspect.store.tables import sandboxes


class SandboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self, *, sandbox_id: str, session_id: str, provider: str, token_hash: str
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sandboxes.insert().values(
                    id=sandbox_id,
                    session_id=session_id,
                    provider=provider,
                    status="warming",
                    token_hash=token_hash,
                    created_at=utcnow(),
                )
            )

    async def set_status(self, sandbox_id: str, status: SandboxStatus) -> None:
        values: dict[str, object] = {"status": status}
        if status == "ready":
            values["ready_at"] = utcnow()
        elif status in ("stopped", "lost", "failed"):
            values["stopped_at"] = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(
                sandboxes.update().where(sandboxes.c.id == sandbox_id).values(**values)
            )

    async def session_of(self, sandbox_id: str) -> str | None:
        query = sa.select(sandboxes.c.session_id).where(sandboxes.c.id == sandbox_id)
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()
