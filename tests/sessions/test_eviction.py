"""200 sessions opened and left idle: once evicted, their actors are gone, their leases free,
and the memory they held is given back (measured with tracemalloc, so the allocator's and other
processes' noise does not blur it): memory follows the active sessions, not every session ever
opened."""

from __future__ import annotations

import gc
import secrets
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.settings import SandboxSettings, ServiceSettings, SessionSettings, Settings
from tests.store.records import session_record

SESSIONS = 200
KEPT_MAX = 0.05
"""Share of what 200 live sessions take that may stay allocated after a second round of them."""
FIRST_KEPT_MAX = 0.25
"""The same after the first round, which also tops up the process's bounded caches."""
WARM_UP = 20
"""Sessions opened and evicted before the baseline, so the bounded caches (compiled statements,
connection pools) are mostly full when it is taken: each new query a session runs adds to them
once, and that is not memory a session keeps."""

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        services=ServiceSettings(failover_enabled=False, evict_enabled=False),
    )
    async with open_control_plane(settings) as opened:
        yield opened


def allocated() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_idle_sessions_leave_memory_after_eviction(plane: ControlPlane) -> None:
    """Two rounds of 200: what the first round leaves is the process's bounded caches (compiled
    statements, connection pools), and the second round adds next to nothing to it."""
    manager = plane.manager
    admin = (await plane.store.users.list_all())[0]
    rounds: list[list[str]] = [[], []]
    for ids in rounds:
        for _ in range(SESSIONS):
            session = session_record(f"ses_{secrets.token_hex(8)}", admin.id)
            await plane.store.sessions.create(session)
            ids.append(session.id)

    for _ in range(WARM_UP):
        session = session_record(f"ses_{secrets.token_hex(8)}", admin.id)
        await plane.store.sessions.create(session)
        await (await manager.actor(session.id)).rename("warming up")
    assert len(await manager.evict_idle(0)) == WARM_UP
    tracemalloc.start()
    try:
        baseline = allocated()
        growth, kept = [], []
        for ids in rounds:
            for sid in ids:
                await (await manager.actor(sid)).rename("opened")  # live, with a durable event
            assert len(manager.live_actors()) == len(manager.ownership.owned()) == SESSIONS
            growth.append(allocated() - baseline)
            assert sorted(await manager.evict_idle(0)) == sorted(ids)
            kept.append(allocated() - baseline)
            assert manager.live_actors() == [] and manager.ownership.owned() == []
    finally:
        tracemalloc.stop()
    for sid in rounds[0][:10] + rounds[1][:10]:
        assert await plane.store.owners.holder(sid) is None
    live = min(growth)
    assert live > 0
    assert kept[0] <= FIRST_KEPT_MAX * live, f"{kept[0]} of {live} bytes stayed after round 1"
    assert kept[1] - kept[0] <= KEPT_MAX * live, f"round 2 kept {kept[1] - kept[0]} more bytes"
