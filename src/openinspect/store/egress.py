"""The egress proxy's records: every request a box made (``egress_requests``) and each
registered repo's own allow-list entries (``repo_egress_allow``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.store.tables import egress_requests as requests
from openinspect.store.tables import repo_egress_allow as allow

MESSAGE_MAX_CHARS = 500
DEFAULT_LIST_LIMIT = 200


@dataclass(frozen=True)
class EgressRecord:
    id: str
    session_id: str | None
    sandbox_id: str
    method: str
    host: str
    port: int
    allowed: bool
    code: str
    status: int
    message: str | None
    bytes_up: int
    bytes_down: int
    duration_ms: int | None
    created_at: datetime


def _record(row: sa.Row[Any]) -> EgressRecord:
    return EgressRecord(**row._mapping)


class EgressStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(
        self,
        *,
        session_id: str | None,
        sandbox_id: str,
        method: str,
        host: str,
        port: int,
        allowed: bool,
        code: str,
        status: int,
        message: str = "",
    ) -> str:
        """Record one request as it is decided; returns its id."""
        record_id = new_id("egr")
        async with self._engine.begin() as conn:
            await conn.execute(
                requests.insert().values(
                    id=record_id,
                    session_id=session_id,
                    sandbox_id=sandbox_id,
                    method=method[:16],
                    host=host[:255],
                    port=port,
                    allowed=allowed,
                    code=code[:32],
                    status=status,
                    message=message[:MESSAGE_MAX_CHARS] or None,
                    created_at=utcnow(),
                )
            )
        return record_id

    async def finish(
        self, record_id: str, *, bytes_up: int, bytes_down: int, duration_ms: int
    ) -> None:
        """What an allowed request moved, once it ended."""
        async with self._engine.begin() as conn:
            await conn.execute(
                requests.update()
                .where(requests.c.id == record_id)
                .values(bytes_up=bytes_up, bytes_down=bytes_down, duration_ms=duration_ms)
            )

    async def refused_before(self, sandbox_id: str, host: str) -> bool:
        """Whether a request of this box to ``host`` was refused already."""
        query = (
            sa.select(requests.c.id)
            .where(
                requests.c.sandbox_id == sandbox_id,
                requests.c.host == host,
                requests.c.allowed.is_(False),
            )
            .limit(1)
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def of_session(
        self, session_id: str, *, limit: int = DEFAULT_LIST_LIMIT, before: str | None = None
    ) -> list[EgressRecord]:
        """The session's requests, newest first (``before``: older than that record)."""
        query = sa.select(requests).where(requests.c.session_id == session_id)
        if before is not None:
            pivot = sa.select(requests.c.created_at, requests.c.id).where(requests.c.id == before)
            async with self._engine.connect() as conn:
                found = (await conn.execute(pivot)).first()
            if found is not None:
                query = query.where(
                    sa.tuple_(requests.c.created_at, requests.c.id) < (found[0], found[1])
                )
        query = query.order_by(requests.c.created_at.desc(), requests.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [_record(row) for row in (await conn.execute(query)).all()]

    async def repo_entries(self, repo_id: str) -> list[str]:
        """A repo's own allow-list entries, sorted."""
        query = sa.select(allow.c.entry).where(allow.c.repo_id == repo_id).order_by(allow.c.entry)
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def set_repo_entries(
        self, repo_id: str, entries: list[str], *, updated_by: str | None
    ) -> list[str]:
        """Replace a repo's own entries (already checked) with ``entries``."""
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(allow.delete().where(allow.c.repo_id == repo_id))
            if entries:
                await conn.execute(
                    allow.insert(),
                    [
                        {
                            "repo_id": repo_id,
                            "entry": e,
                            "created_by": updated_by,
                            "created_at": now,
                        }
                        for e in entries
                    ],
                )
        return await self.repo_entries(repo_id)
