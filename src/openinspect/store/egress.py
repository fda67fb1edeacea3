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
from openinspect.store.tables import image_builds, repos, sandboxes, sessions
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


@dataclass(frozen=True)
class BoxScope:
    """What a box's egress depends on: its session, and that session's registered repo with the
    repo's own allow-list entries."""

    session_id: str | None
    repo_name: str | None
    entries: list[str]


def _record(row: sa.Row[Any]) -> EgressRecord:
    return EgressRecord(**row._mapping)


class EgressStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def scope(self, sandbox_id: str) -> BoxScope:
        """The box's session, repo and repo entries, in one round trip (every tunnel asks)."""
        query = (
            sa.select(sessions.c.id, repos.c.name, allow.c.entry)
            .select_from(
                sandboxes.join(sessions, sessions.c.id == sandboxes.c.session_id)
                .outerjoin(repos, repos.c.id == sessions.c.repo_id)
                .outerjoin(allow, allow.c.repo_id == repos.c.id)
            )
            .where(sandboxes.c.id == sandbox_id)
            .order_by(allow.c.entry)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:  # a box building a repo's image serves no session, but has its repo
                rows = (await conn.execute(_build_box_scope(sandbox_id))).all()
        if not rows:
            return BoxScope(None, None, [])
        return BoxScope(rows[0][0], rows[0][1], [r[2] for r in rows if r[2] is not None])

    async def repo_scope(self, repo_id: str) -> BoxScope:
        """The scope of a box of ``repo_id`` that serves no session (a warm pool's)."""
        query = (
            sa.select(repos.c.name, allow.c.entry)
            .select_from(repos.outerjoin(allow, allow.c.repo_id == repos.c.id))
            .where(repos.c.id == repo_id)
            .order_by(allow.c.entry)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return BoxScope(None, None, [])
        return BoxScope(None, rows[0][0], [r[1] for r in rows if r[1] is not None])

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
        self,
        record_id: str,
        *,
        bytes_up: int,
        bytes_down: int,
        duration_ms: int,
        outcome: tuple[int, str, str] | None = None,
    ) -> None:
        """What an allowed request moved, once it ended; ``outcome`` (status, code, message):
        what it ended with instead of its ``allowed`` 200 (an upstream that did not answer)."""
        values: dict[str, object] = {
            "bytes_up": bytes_up,
            "bytes_down": bytes_down,
            "duration_ms": duration_ms,
        }
        if outcome is not None:
            status, code, message = outcome
            values.update(status=status, code=code[:32], message=message[:MESSAGE_MAX_CHARS])
        async with self._engine.begin() as conn:
            await conn.execute(requests.update().where(requests.c.id == record_id).values(values))

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


def _build_box_scope(sandbox_id: str) -> sa.Select[Any]:
    """A running image build's box: no session, its repo and the repo's entries."""
    return (
        sa.select(sa.null(), repos.c.name, allow.c.entry)
        .select_from(
            image_builds.join(repos, repos.c.id == image_builds.c.repo_id).outerjoin(
                allow, allow.c.repo_id == repos.c.id
            )
        )
        .where(image_builds.c.sandbox_id == sandbox_id, image_builds.c.status == "running")
        .order_by(allow.c.entry)
    )
