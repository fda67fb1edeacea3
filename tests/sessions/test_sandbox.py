"""A session's sandbox boots in the background and reports a failed boot once; only a new
prompt (or typing) tries again."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.errors import SandboxError
from openinspect.settings import SandboxSettings, Settings
from tests.sessions.bridged import bridged_plane


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with bridged_plane(settings, in_process=True) as opened:
        yield opened


async def _warmings(plane: ControlPlane, session_id: str) -> int:
    events = await plane.store.events.after(session_id, 0, 1000)
    return sum(1 for e in events if e.type == "sandbox-status" and e.status == "warming")


async def test_a_failed_boot_is_not_retried_until_the_next_prompt(
    plane: ControlPlane, origin: Path, tmp_path: Path
) -> None:
    work = tmp_path / "broken"
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True)
    (work / ".openinspect" / "start.sh").write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "x"],
        cwd=work,
        check=True,
    )
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, check=True)
    user = plane.bootstrap.user
    assert user is not None
    session = await plane.manager.create(user, repo=str(origin))
    sandbox = (await plane.manager.actor(session.id)).sandbox

    with pytest.raises(SandboxError, match="start"):
        await sandbox.ready()
    # Every later tool call of the same prompt gets the failure without booting again.
    for _ in range(3):
        with pytest.raises(SandboxError):
            await sandbox.ready()
    assert sandbox.status == "failed"
    assert await _warmings(plane, session.id) == 1

    sandbox.reset_failure()  # what a new prompt does
    with pytest.raises(SandboxError):
        await sandbox.ready()
    assert await _warmings(plane, session.id) == 2


async def test_a_box_past_the_servers_cap_fails_its_boot_with_the_reason(
    tmp_path: Path, origin: Path
) -> None:
    settings = Settings(
        home=tmp_path / "home", sandbox=SandboxSettings(provider="process", max_live=1)
    )
    async with bridged_plane(settings, in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        first, second = [await plane.manager.create(user, repo=str(origin)) for _ in "ab"]
        running = (await plane.manager.actor(first.id)).sandbox
        waiting = (await plane.manager.actor(second.id)).sandbox
        await running.ready()

        with pytest.raises(SandboxError) as refused:
            await waiting.ready()
        assert "maximum of 1 sandboxes" in refused.value.message
        assert refused.value.hint is not None and "MAX_LIVE" in refused.value.hint
        events = await plane.store.events.after(second.id, 0, 1000)
        failed = [e for e in events if e.type == "sandbox-status" and e.status == "failed"]
        assert len(failed) == 1 and "maximum of 1 sandboxes" in str(failed[0].message)

        await running.destroy(message="idle")  # its place is free again
        waiting.reset_failure()
        conn = await waiting.ready()
        assert (await conn.exec("echo second", timeout_s=10)).stdout == "second\n"
