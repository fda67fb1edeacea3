"""Snapshot records: which captures of a session's box exist, newest first.

The row is written once the provider's capture is complete, so a row always names a whole
snapshot; the newest row is what the session's next box restores. Rows past the number kept
are returned by ``add`` for the caller to delete their data (the row goes first: a snapshot
whose data is gone is never offered again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.store.tables import snapshots

SnapshotReason = Literal["prompt", "idle"]


@dataclass(frozen=True)
class SnapshotData:
    """A provider's snapshot as stored: the fields of ``sandboxes.base.SnapshotRef``."""

    provider: str
    key: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class SnapshotRecord:
    id: str
    session_id: str
    sandbox_id: str
    data: SnapshotData
    reason: str
    created_at: datetime


class SnapshotStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(
        self,
        session_id: str,
        sandbox_id: str,
        data: SnapshotData,
        reason: SnapshotReason,
        *,
        keep: int,
    ) -> tuple[SnapshotRecord, list[SnapshotData]]:
        """Record a complete snapshot; returns it and the older ones dropped to keep ``keep``."""
        record = SnapshotRecord(new_id("snp"), session_id, sandbox_id, data, reason, utcnow())
        async with self._engine.begin() as conn:
            await conn.execute(
                snapshots.insert().values(
                    id=record.id,
                    session_id=session_id,
                    sandbox_id=sandbox_id,
                    provider=data.provider,
                    key=data.key,
                    sha256=data.sha256,
                    size_bytes=data.size_bytes,
                    reason=reason,
                    created_at=record.created_at,
                )
            )
            rows = (
                await conn.execute(
                    sa.select(snapshots)
                    .where(snapshots.c.session_id == session_id)
                    .order_by(snapshots.c.created_at.desc(), snapshots.c.id.desc())
                    .offset(keep)
                )
            ).all()
            if rows:
                await conn.execute(
                    snapshots.delete().where(snapshots.c.id.in_([r.id for r in rows]))
                )
        return record, [_record(row).data for row in rows]

    async def newest(self, session_id: str) -> SnapshotRecord | None:
        query = (
            sa.select(snapshots)
            .where(snapshots.c.session_id == session_id)
            .order_by(snapshots.c.created_at.desc(), snapshots.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row is not None else None

    async def for_session(self, session_id: str) -> list[SnapshotRecord]:
        """Every snapshot of the session, newest first."""
        query = (
            sa.select(snapshots)
            .where(snapshots.c.session_id == session_id)
            .order_by(snapshots.c.created_at.desc(), snapshots.c.id.desc())
        )
        async with self._engine.connect() as conn:
            return [_record(row) for row in (await conn.execute(query)).all()]


def _record(row: sa.Row[tuple[object, ...]]) -> SnapshotRecord:
    m = row._mapping
    data = SnapshotData(m["provider"], m["key"], m["sha256"], int(m["size_bytes"]))
    return SnapshotRecord(
        m["id"], m["session_id"], m["sandbox_id"], data, m["reason"], m["created_at"]
    )
