"""The warm pool in real bubblewrap boxes: a pool of 2 makes two ready boxes; two sessions each
start on one (no clone in their logs), their first tool call works and their work is pushed to
their own branch; the pool refills. A box made before the base branch moved gets the new commit
at claim; a pooled box that dies is replaced; at the box cap a session's box takes a pooled
box's place; a smaller pool stops its boxes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, Repo, User
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.sandboxes.local import LocalHandle
from openinspect.services.tidy import Tidier
from openinspect.sessions.actor import SessionActor
from openinspect.sessions.pool import WarmPool
from openinspect.sessions.sandbox import POOLED_MESSAGE
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    PoolSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import git_output
from tests.conftest import MODEL, skip_or_fail
from tests.sessions.bridged import bridged_plane

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(300),
]
READY_TIMEOUT_S = 180.0


def _settings(tmp_path: Path, llm: ScriptedLLMServer, **sandbox: Any) -> Settings:
    return Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(
            provider="bwrap", pool=PoolSettings(refill_interval_s=0.5), **sandbox
        ),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    if (why := probe_bwrap()) is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {why}")
    async with bridged_plane(_settings(tmp_path, llm), git_proxy=True) as opened:
        yield opened


def _admin(plane: ControlPlane) -> User:
    user = plane.bootstrap.user
    assert user is not None
    return user


def _pool(plane: ControlPlane) -> WarmPool:
    pool = plane.session_deps.pool
    assert pool is not None
    return pool


async def _register(plane: ControlPlane, origin: Path, size: int, name: str = "calc") -> Repo:
    repo = await plane.store.repos.create(
        name=name, url=str(origin), default_branch="main", created_by=_admin(plane).id
    )
    await plane.store.pools.set_size(repo.id, size, updated_by=None)
    return repo


async def _ready(pool: WarmPool, repo: Repo, count: int) -> list[str]:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while len(found := pool.ready(repo.id)) < count:
            await asyncio.sleep(0.1)
    return found


async def _finished(plane: ControlPlane, prompt: Prompt) -> Prompt:
    async with asyncio.timeout(240):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                return got
            await asyncio.sleep(0.1)


def bash(command: str) -> dict[str, Any]:
    return {"turns": [{"tool_calls": [{"name": "bash", "args": {"command": command}}]}]}


async def _run(
    plane: ControlPlane, llm: ScriptedLLMServer, repo: str, command: str
) -> tuple[SessionActor, str]:
    """A session on ``repo`` whose first prompt runs ``command``; its tool output."""
    user = _admin(plane)
    session = await plane.manager.create(user, repo=repo)
    actor = await plane.manager.actor(session.id)
    llm.reset(bash(command))
    done = await _finished(plane, await actor.submit(user, f"run {command}"))
    assert done.status == "success", (done.error_code, done.error_message)
    events = await plane.store.events.after(session.id, 0, 10_000)
    output = "".join(e.output for e in events if e.type == "tool-result")  # type: ignore[attr-defined]
    return actor, output


async def _sandbox_events(plane: ControlPlane, sid: str) -> list[Any]:
    events = await plane.store.events.after(sid, 0, 10_000)
    return [e for e in events if e.type in ("sandbox-status", "sandbox-log")]


async def test_two_sessions_start_on_pooled_boxes_and_the_pool_refills(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    pool = _pool(plane)
    repo = await _register(plane, origin, 2)
    pooled = await _ready(pool, repo, 2)
    assert len(set(pooled)) == 2

    sessions = []
    for name in ("one", "two"):
        actor, output = await _run(
            plane, llm, "calc", f"echo {name} > {name}.txt && git status --short && head -1 calc.py"
        )
        assert f"?? {name}.txt" in output and "def " in output, output
        sessions.append((actor, name))

    claimed = [actor.sandbox._sandbox_id for actor, _ in sessions]
    assert sorted(claimed) == sorted(pooled)  # each got one of the two, never the same
    for actor, name in sessions:
        sid = actor.session.id
        events = await _sandbox_events(plane, sid)
        statuses = [(e.status, e.message) for e in events if e.type == "sandbox-status"]
        assert statuses == [
            ("warming", None),
            ("booting", POOLED_MESSAGE),
            ("ready", POOLED_MESSAGE),
        ], statuses
        # The box booted before the session: no clone (or any boot phase) in its log.
        assert not [e for e in events if e.type == "sandbox-log" and e.source == "boot"]
        record = await plane.store.sandboxes.session_of(actor.sandbox._sandbox_id or "")
        assert record == sid
        # The prompt's work was committed and pushed to the session's own branch.
        branch = actor.session.branch
        assert git_output("show", f"{branch}:{name}.txt", cwd=origin).strip() == name

    refilled = await _ready(pool, repo, 2)
    assert not set(refilled) & set(pooled)


async def test_a_stale_pooled_box_gets_the_new_base_commit(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    pool = _pool(plane)
    repo = await _register(plane, origin, 1)
    (pooled,) = await _ready(pool, repo, 1)
    work = origin.parent / "work"  # the sample repo's working copy: the base moves on
    (work / "news.txt").write_text("made after the box\n")
    git_output("add", "news.txt", cwd=work)
    git_output(
        "-c",
        "user.name=Demo",
        "-c",
        "user.email=d@example.com",
        "commit",
        "-qm",
        "news",
        cwd=work,
    )
    git_output("push", "--quiet", str(origin), "main", cwd=work)
    head = git_output("rev-parse", "main", cwd=origin).strip()

    actor, output = await _run(plane, llm, "calc", "cat news.txt && git rev-parse HEAD")
    assert actor.sandbox._sandbox_id == pooled
    assert "made after the box" in output and head in output, output
    # Once the box stops, its workspace is the session's (where its next box looks for it).
    await actor.sandbox.destroy(message="test")
    workspaces, sid = plane.settings.workspaces_dir, actor.session.id
    image = workspaces / f"{sid}.img"  # a root server's workspace is an image, unmounted now
    assert image.exists() or (workspaces / sid / "repo" / "news.txt").exists()
    assert (workspaces / f"{sid}.log").exists()
    assert not [p.name for p in (workspaces / ".pool").iterdir() if p.name.startswith(pooled)]


async def test_a_pooled_box_that_dies_is_replaced(
    plane: ControlPlane, origin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = _pool(plane)
    repo = await _register(plane, origin, 1)
    (first,) = await _ready(pool, repo, 1)
    # The idle reaper stops sessions' boxes only: a pooled box is no session's, never idle.
    reaped = await Tidier(plane.manager).sweep()
    assert (reaped.idle_stopped, reaped.discarded) == ([], []) and pool.ready(repo.id) == [first]
    box = pool._repos[repo.id].ready[0]
    assert isinstance(box.handle, LocalHandle)
    os.kill(box.handle.pid, signal.SIGKILL)
    async with asyncio.timeout(READY_TIMEOUT_S):
        while (found := pool.ready(repo.id)) in ([], [first]):
            await asyncio.sleep(0.1)
    assert len(found) == 1 and found != [first]
    assert any("exited" in r.message and "replaced" in r.message for r in caplog.records)
    assert plane.hub.get(first) is None  # its token is gone with it

    await plane.store.pools.set_size(repo.id, 0, updated_by=None)
    await pool.fill()
    assert pool.ready(repo.id) == [] and plane.hub.get(found[0]) is None


async def test_at_the_cap_a_sessions_box_takes_a_pooled_boxs_place(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    if (why := probe_bwrap()) is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {why}")
    settings = _settings(tmp_path, llm, max_live=2)
    async with bridged_plane(settings, git_proxy=True) as plane:
        pool = _pool(plane)
        repo = await _register(plane, origin, 2)
        await _ready(pool, repo, 2)
        # Another repo, not pooled: its session needs a box of its own, and the cap is full.
        actor, output = await _run(plane, llm, str(origin), "echo own-box")
        assert "own-box" in output
        assert actor.sandbox._sandbox_id not in pool.ready(repo.id)
        await pool.fill()
        assert len(pool.ready(repo.id)) == 1  # one made room; at the cap the pool stays smaller
        assert pool.booting(repo.id) == 0
        left = pool._repos[repo.id].ready[0]
        assert isinstance(left.handle, LocalHandle)
        pid = left.handle.pid
        os.kill(pid, 0)  # running
    # The server stopped: so did its pooled box, and its workspace is gone.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not left.workspace_dir.exists()


async def test_a_session_on_an_existing_branch_boots_its_own_box(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    pool = _pool(plane)
    repo = await _register(plane, origin, 1)
    (pooled,) = await _ready(pool, repo, 1)
    work = origin.parent / "work"  # a branch with work on it: the pooled clone lacks it
    git_output("checkout", "-qb", "feature", cwd=work)
    (work / "feature.txt").write_text("on the branch\n")
    git_output("add", "feature.txt", cwd=work)
    identity = ["-c", "user.name=Demo", "-c", "user.email=d@example.com"]
    git_output(*identity, "commit", "-qm", "feature", cwd=work)
    git_output("push", "--quiet", str(origin), "feature", cwd=work)

    user = _admin(plane)
    session = await plane.manager.create(user, repo="calc", work_branch="feature")
    actor = await plane.manager.actor(session.id)
    llm.reset(bash("cat feature.txt"))
    done = await _finished(plane, await actor.submit(user, "what is on the branch?"))
    assert done.status == "success", (done.error_code, done.error_message)
    events = await plane.store.events.after(session.id, 0, 10_000)
    output = "".join(e.output for e in events if e.type == "tool-result")  # type: ignore[attr-defined]
    assert "on the branch" in output
    assert actor.sandbox._sandbox_id != pooled and pool.ready(repo.id) == [pooled]
