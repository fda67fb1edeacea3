"""The tidy sweep deletes abandoned drafts (once, however many servers sweep), keeps every session
that got a prompt, and stops the sandbox a deleted draft had started."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.controlplane import ControlPlane
from openinspect.domain.events import utcnow
from openinspect.domain.models import User
from openinspect.services.tidy import Tidier
from openinspect.settings import SandboxSettings, SessionSettings, Settings
from openinspect.store.tables import sessions
from tests.sessions.bridged import bridged_plane

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
DRAFT_TTL_S = 60.0


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0, draft_ttl_s=DRAFT_TTL_S),
    )
    async with bridged_plane(settings, in_process=True) as opened:
        yield opened


def _admin(plane: ControlPlane) -> User:
    user = plane.bootstrap.user
    assert user is not None
    return user


async def _age(plane: ControlPlane, session_id: str, seconds: float) -> None:
    """Pretend the session was created ``seconds`` ago."""
    async with plane.store.engine.begin() as conn:
        await conn.execute(
            sessions.update()
            .where(sessions.c.id == session_id)
            .values(created_at=utcnow() - timedelta(seconds=seconds))
        )


async def test_old_drafts_go_and_everything_else_stays(plane: ControlPlane, origin: Path) -> None:
    user = _admin(plane)
    manager = plane.manager
    old_draft = await manager.create(user, repo=str(origin))
    new_draft = await manager.create(user, repo=str(origin))
    prompted = await manager.create(user, repo=str(origin))
    archived_draft = await manager.create(user, repo=str(origin))
    (await manager.actor(prompted.id)).start = lambda: None  # type: ignore[method-assign]
    await (await manager.actor(prompted.id)).submit(user, "do it")
    await (await manager.actor(archived_draft.id)).archive()  # archived on purpose: kept
    for sid in (old_draft.id, prompted.id, archived_draft.id):
        await _age(plane, sid, DRAFT_TTL_S + 5)

    # Two servers sweeping at once: the draft is deleted once, nothing fails.
    reports = await asyncio.gather(Tidier(manager).sweep(), Tidier(manager).sweep())
    assert [sid for r in reports for sid in r.drafts_deleted] == [old_draft.id]
    assert await plane.store.sessions.get(old_draft.id) is None
    assert await plane.store.events.after(old_draft.id, 0, 10) == []
    for kept in (new_draft, prompted, archived_draft):
        assert await plane.store.sessions.get(kept.id) is not None
    assert (await Tidier(manager).sweep()).drafts_deleted == []


async def test_a_deleted_drafts_sandbox_is_stopped(plane: ControlPlane, origin: Path) -> None:
    user = _admin(plane)
    manager = plane.manager
    draft = await manager.create(user, repo=str(origin))
    actor = await manager.actor(draft.id)
    actor.typing()  # what the web app's typing does: the sandbox starts
    box = await actor.sandbox.ready()
    assert actor.sandbox.status == "ready"
    await _age(plane, draft.id, DRAFT_TTL_S + 5)

    report = await Tidier(manager).sweep()
    assert report.drafts_deleted == [draft.id] and report.discarded == [draft.id]
    assert actor.sandbox.status == "stopped" and box.status == "lost"
    assert actor not in manager.live_actors()


async def test_a_draft_deleted_by_another_server_loses_its_sandbox_here(
    plane: ControlPlane, origin: Path
) -> None:
    """Another server's sweep deleted the row; this one ran the box and stops it next sweep."""
    user = _admin(plane)
    manager = plane.manager
    draft = await manager.create(user, repo=str(origin))
    actor = await manager.actor(draft.id)
    actor.typing()
    await actor.sandbox.ready()
    await _age(plane, draft.id, DRAFT_TTL_S + 5)
    assert await _lease_names(plane) == [f"session:{draft.id}"]  # its owner's
    deleted = await plane.store.sessions.delete_abandoned_drafts(utcnow(), 10)
    assert list(deleted) == [draft.id]
    assert await _lease_names(plane) == []  # nothing will own it again

    report = await Tidier(manager).sweep()
    assert report.drafts_deleted == [] and report.discarded == [draft.id]
    assert actor.sandbox.status == "stopped"


async def _lease_names(plane: ControlPlane) -> list[str]:
    """The session leases in the store."""
    leases = sa.table("leases", sa.column("name"))
    async with plane.store.engine.connect() as conn:
        names = (await conn.execute(sa.select(leases.c.name))).scalars().all()
    return sorted(n for n in names if n.startswith("session:"))
