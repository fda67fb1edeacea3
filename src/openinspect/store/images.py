"""Repo images: which repos opted in (``repo_images``) and every build of their images
(``image_builds``).

A build goes ``queued → running → succeeded | failed``; a succeeded build is a good image until
its archive fails its check (``bad``) or newer ones push it past the number kept (its
``discarded_at`` is set, and ``finish`` returns its snapshot fields for the caller to delete:
the row goes first, so an image whose data is gone is never offered again). A repo has at most
one queued or running build (the unique ``pending`` key), so a build asked for twice, by two
replicas at once, is queued once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.store.db import insert_once
from openinspect.store.snapshots import SnapshotData
from openinspect.store.tables import image_builds as builds
from openinspect.store.tables import repo_images as opted
from openinspect.store.tables import repos

BuildStatus = Literal["queued", "running", "succeeded", "failed", "bad"]
BuildTrigger = Literal["manual", "first", "moved"]
LOG_MAX_BYTES = 64 * 1024
"""The end of a build's boot log that is kept."""
ERROR_MAX_CHARS = 1000
DEFAULT_LIST_LIMIT = 50


@dataclass(frozen=True)
class RepoImageSettings:
    repo_id: str
    enabled: bool
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True)
class ImageRepo:
    """A repo that opted in, with what a build needs of it."""

    repo_id: str
    name: str
    url: str
    default_branch: str


@dataclass(frozen=True)
class ImageBuild:
    id: str
    repo_id: str
    base_branch: str
    commit_sha: str | None
    status: BuildStatus
    trigger: BuildTrigger
    requested_by: str | None
    sandbox_id: str | None
    data: SnapshotData | None
    """The image (a provider snapshot), once the build succeeded."""
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    discarded_at: datetime | None
    log: str | None = None
    """The end of the build's boot log; read by ``get`` only."""

    @property
    def good(self) -> bool:
        """A build a box may start from."""
        return self.status == "succeeded" and self.data is not None and self.discarded_at is None


def cap_log(text: str) -> str:
    """The last :data:`LOG_MAX_BYTES` of ``text`` (whole characters), marked when cut."""
    raw = text.encode()
    if len(raw) <= LOG_MAX_BYTES:
        return text
    tail = raw[-LOG_MAX_BYTES:].decode(errors="ignore")
    return "[earlier lines cut]\n" + tail.partition("\n")[2]


_LISTED = [c for c in builds.c if c.name not in ("log", "pending")]


def _build(row: sa.Row[Any], *, log: bool = False) -> ImageBuild:
    m = row._mapping
    data = None
    if m["key"] is not None:
        data = SnapshotData(m["provider"], m["key"], m["sha256"], int(m["size_bytes"]))
    return ImageBuild(
        id=m["id"],
        repo_id=m["repo_id"],
        base_branch=m["base_branch"],
        commit_sha=m["commit_sha"],
        status=m["status"],
        trigger=m["trigger"],
        requested_by=m["requested_by"],
        sandbox_id=m["sandbox_id"],
        data=data,
        error=m["error"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        discarded_at=m["discarded_at"],
        log=m["log"] if log else None,
    )


class ImageStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # -- the opt-in ---------------------------------------------------------------------------

    async def get_settings(self, repo_id: str) -> RepoImageSettings | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(opted).where(opted.c.repo_id == repo_id))).first()
        return RepoImageSettings(**row._mapping) if row is not None else None

    async def put_settings(
        self, repo_id: str, *, enabled: bool, updated_by: str | None
    ) -> RepoImageSettings:
        values = {"enabled": enabled, "updated_by": updated_by, "updated_at": utcnow()}
        async with self._engine.begin() as conn:
            if not await insert_once(conn, opted, {"repo_id": repo_id, **values}):
                await conn.execute(opted.update().where(opted.c.repo_id == repo_id).values(values))
            row = (await conn.execute(sa.select(opted).where(opted.c.repo_id == repo_id))).one()
        return RepoImageSettings(**row._mapping)

    async def enabled_repos(self) -> list[ImageRepo]:
        query = (
            sa.select(repos.c.id, repos.c.name, repos.c.url, repos.c.default_branch)
            .select_from(opted.join(repos, repos.c.id == opted.c.repo_id))
            .where(opted.c.enabled.is_(True))
            .order_by(repos.c.name)
        )
        async with self._engine.connect() as conn:
            return [ImageRepo(*row) for row in (await conn.execute(query)).all()]

    async def is_enabled(self, repo_id: str) -> bool:
        found = await self.get_settings(repo_id)
        return found is not None and found.enabled

    # -- builds -------------------------------------------------------------------------------

    async def queue(
        self,
        repo_id: str,
        base_branch: str,
        *,
        trigger: BuildTrigger,
        requested_by: str | None = None,
    ) -> tuple[ImageBuild, bool]:
        """Queue a build of the repo's image; returns it and whether it is new (a repo's queued
        or running build is returned as it is instead of queueing a second)."""
        build_id = new_id("img")
        values = {
            "id": build_id,
            "repo_id": repo_id,
            "base_branch": base_branch,
            "status": "queued",
            "trigger": trigger,
            "requested_by": requested_by,
            "pending": repo_id,
            "created_at": utcnow(),
        }
        async with self._engine.begin() as conn:
            made = await insert_once(conn, builds, values)
            row = (
                await conn.execute(sa.select(*_LISTED).where(builds.c.pending == repo_id))
            ).first()
        if row is None:  # finished between the two statements: ask again
            return await self.queue(
                repo_id, base_branch, trigger=trigger, requested_by=requested_by
            )
        return _build(row), made

    async def start(self, build_id: str, *, sandbox_id: str, commit_sha: str) -> bool:
        """Mark a queued build running in box ``sandbox_id`` at ``commit_sha``; False when it
        is not queued any more (another pass took it)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                builds.update()
                .where(builds.c.id == build_id, builds.c.status == "queued")
                .values(
                    status="running",
                    sandbox_id=sandbox_id,
                    commit_sha=commit_sha,
                    started_at=utcnow(),
                )
            )
        return bool(result.rowcount)

    async def finish(
        self,
        build_id: str,
        *,
        data: SnapshotData | None,
        error: str | None,
        log: str,
        keep: int,
    ) -> list[SnapshotData]:
        """End a running build: succeeded with its image ``data``, or failed with ``error``.
        Returns the snapshot fields of the images dropped to keep ``keep`` good ones (``data``
        itself when the build is not running any more: failed as interrupted meanwhile)."""
        values: dict[str, object] = {
            "status": "succeeded" if data is not None and error is None else "failed",
            "pending": None,
            "error": error[:ERROR_MAX_CHARS] if error else None,
            "log": cap_log(log),
            "finished_at": utcnow(),
        }
        if data is not None:
            values.update(
                provider=data.provider, key=data.key, sha256=data.sha256, size_bytes=data.size_bytes
            )
        async with self._engine.begin() as conn:
            ended = await conn.execute(
                builds.update()
                .where(builds.c.id == build_id, builds.c.status.in_(("queued", "running")))
                .values(values)
            )
            if not ended.rowcount:
                return [data] if data is not None else []
            row = (
                await conn.execute(
                    sa.select(builds.c.repo_id, builds.c.base_branch).where(builds.c.id == build_id)
                )
            ).first()
            if row is None or data is None:
                return []
            old = (
                await conn.execute(
                    sa.select(*_LISTED)
                    .where(*_good(row.repo_id, row.base_branch))
                    .order_by(builds.c.finished_at.desc(), builds.c.id.desc())
                    .offset(keep)
                )
            ).all()
            if old:
                await conn.execute(
                    builds.update()
                    .where(builds.c.id.in_([r.id for r in old]))
                    .values(discarded_at=utcnow())
                )
        return [d for d in (_build(r).data for r in old) if d is not None]

    async def interrupt_running(self, message: str) -> list[ImageBuild]:
        """Fail every running build (the server that ran them stopped or lost the builder);
        returns them, so their images' data, if any was written, can be deleted."""
        query = sa.select(*_LISTED).where(builds.c.status == "running")
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).all()
            if rows:
                await conn.execute(
                    builds.update()
                    .where(builds.c.id.in_([r.id for r in rows]), builds.c.status == "running")
                    .values(status="failed", pending=None, error=message, finished_at=utcnow())
                )
        return [_build(r) for r in rows]

    async def mark_bad(self, build_id: str, error: str) -> bool:
        """An image whose archive failed its check is never offered again."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                builds.update()
                .where(builds.c.id == build_id, builds.c.status == "succeeded")
                .values(status="bad", error=error[:ERROR_MAX_CHARS])
            )
        return bool(result.rowcount)

    async def newest_good(self, repo_id: str, base_branch: str) -> ImageBuild | None:
        """The image a new box of the repo on ``base_branch`` starts from."""
        query = (
            sa.select(*_LISTED)
            .where(*_good(repo_id, base_branch))
            .order_by(builds.c.finished_at.desc(), builds.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _build(row) if row is not None else None

    async def last_started(self, repo_id: str, base_branch: str) -> ImageBuild | None:
        """The newest build of the repo's branch that started (whatever its outcome)."""
        query = (
            sa.select(*_LISTED)
            .where(
                builds.c.repo_id == repo_id,
                builds.c.base_branch == base_branch,
                builds.c.started_at.is_not(None),
            )
            .order_by(builds.c.started_at.desc(), builds.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _build(row) if row is not None else None

    async def queued(self) -> list[ImageBuild]:
        """Every queued build, oldest first."""
        query = (
            sa.select(*_LISTED)
            .where(builds.c.status == "queued")
            .order_by(builds.c.created_at, builds.c.id)
        )
        async with self._engine.connect() as conn:
            return [_build(r) for r in (await conn.execute(query)).all()]

    async def of_repo(
        self, repo_id: str, *, limit: int = DEFAULT_LIST_LIMIT, before: str | None = None
    ) -> list[ImageBuild]:
        """The repo's builds, newest first (``before``: an id, for the page after it)."""
        query = sa.select(*_LISTED).where(builds.c.repo_id == repo_id)
        if before is not None:
            anchor = (
                sa.select(builds.c.created_at)
                .where(builds.c.id == before, builds.c.repo_id == repo_id)
                .scalar_subquery()
            )
            query = query.where(
                sa.or_(
                    builds.c.created_at < anchor,
                    sa.and_(builds.c.created_at == anchor, builds.c.id < before),
                )
            )
        query = query.order_by(builds.c.created_at.desc(), builds.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [_build(r) for r in (await conn.execute(query)).all()]

    async def get(self, repo_id: str, build_id: str) -> ImageBuild | None:
        """One build of the repo, with its log."""
        query = sa.select(builds).where(builds.c.id == build_id, builds.c.repo_id == repo_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _build(row, log=True) if row is not None else None

    async def repo_of_sandbox(self, sandbox_id: str) -> str | None:
        """The repo whose image the running build box ``sandbox_id`` builds."""
        query = sa.select(builds.c.repo_id).where(
            builds.c.sandbox_id == sandbox_id, builds.c.status == "running"
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()


def _good(repo_id: str, base_branch: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        builds.c.repo_id == repo_id,
        builds.c.base_branch == base_branch,
        builds.c.status == "succeeded",
        builds.c.key.is_not(None),
        builds.c.discarded_at.is_(None),
    )
