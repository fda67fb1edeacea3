"""A repo whose boxes cannot boot: the pool logs why, makes none ready, and waits before trying
again (the runtime booted in this process: no containment claim here)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.settings import PoolSettings, SandboxSettings, SessionSettings, Settings
from openinspect.testing.repos import git_output
from tests.sessions.bridged import bridged_plane


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process", pool=PoolSettings(refill_interval_s=0.1)),
        sessions=SessionSettings(tidy_interval_s=0),
    )
    async with bridged_plane(settings, in_process=True) as opened:
        yield opened


def _break_start(origin: Path) -> None:
    work = origin.parent / "work"
    (work / ".openinspect" / "start.sh").write_text("echo broken >&2; exit 3\n")
    git_output("add", ".", cwd=work)
    identity = ["-c", "user.name=Demo", "-c", "user.email=d@example.com"]
    git_output(*identity, "commit", "-qm", "break start.sh", cwd=work)
    git_output("push", "--quiet", str(origin), "main", cwd=work)


async def test_a_repo_whose_boxes_fail_is_retried_after_a_pause(
    plane: ControlPlane, origin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="openinspect.sessions.pool")
    _break_start(origin)
    pool = plane.session_deps.pool
    assert pool is not None
    repo = await plane.store.repos.create(
        name="calc", url=str(origin), default_branch="main", created_by=None
    )
    await plane.store.pools.set_size(repo.id, 2, updated_by=None)
    async with asyncio.timeout(60):
        while not any("could not be made" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # ten refill passes: none may start another box meanwhile
    failures = [r.getMessage() for r in caplog.records if "could not be made" in r.getMessage()]
    assert 1 <= len(failures) <= 2, failures  # the two boxes begun at once; then a pause
    assert "retried in 5 s" in failures[0] and "start" in failures[0]
    assert pool.ready(repo.id) == [] and pool.booting(repo.id) == 0
    assert not list((plane.settings.workspaces_dir / ".pool").glob("sbx_*"))  # cleaned up
