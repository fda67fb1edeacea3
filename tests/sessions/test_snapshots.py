"""Snapshots through the session engine, in real bubblewrap boxes: work in a box (a file git
does not track, a package installed in a venv) survives the box being killed, the next prompt
runs in a box restored from the snapshot, and the model sees the earlier conversation and is
told that its box was replaced; a corrupted snapshot is a failure the user sees, never a fresh
checkout; the idle reaper snapshots a box before it stops it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, User
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.sandboxes.local import LocalHandle
from openinspect.sandboxes.snapshots import marker_path
from openinspect.sandboxes.workspace_fs import image_path
from openinspect.services.tidy import Tidier
from openinspect.sessions.actor import SessionActor
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.store.snapshots import SnapshotRecord
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.wheels import build_wheel
from tests.conftest import MODEL, skip_or_fail
from tests.sessions.bridged import bridged_plane

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(300),
]
IDLE_S = 1.0
FIRST_PROMPT = "install tinypkg in a venv and keep a draft"
REPLACED = "Your sandbox was replaced"


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    if (why := probe_bwrap()) is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {why}")
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="bwrap"),
        sessions=SessionSettings(tidy_interval_s=0, idle_stop_s=IDLE_S, idle_stop_watched_s=600),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )
    async with bridged_plane(settings, git_proxy=True) as opened:
        yield opened


def _admin(plane: ControlPlane) -> User:
    user = plane.bootstrap.user
    assert user is not None
    return user


def bash(command: str) -> dict[str, Any]:
    return {"turns": [{"tool_calls": [{"name": "bash", "args": {"command": command}}]}]}


def install_work(tmp_path: Path) -> str:
    """The first prompt's work: a venv with a package beside the repo (in the workspace), and
    a file in the repo that git does not track (so no commit carries it)."""
    wheel = build_wheel(tmp_path / "wheels")
    data = base64.b64encode(wheel.read_bytes()).decode()
    return (
        f"mkdir -p ../wheels && echo {data} | base64 -d > ../wheels/{wheel.name} && "
        "python3 -m venv ../venv && "
        "../venv/bin/pip install -q --no-index --find-links ../wheels tinypkg && "
        "echo 'draft: not committed' > draft.txt && echo draft.txt >> .git/info/exclude && "
        "echo installed"
    )


CHECK_WORK = (
    "cat draft.txt; ../venv/bin/python -c 'import tinypkg; print(\"value\", tinypkg.VALUE)'"
)


async def _finished(plane: ControlPlane, prompt: Prompt, timeout_s: float = 240) -> Prompt:
    async with asyncio.timeout(timeout_s):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                return got
            await asyncio.sleep(0.1)


async def _snapshot_after(plane: ControlPlane, sid: str, count: int) -> SnapshotRecord:
    """The newest snapshot once the session has ``count`` (taken after the prompt ended)."""
    async with asyncio.timeout(60):
        while len(found := await plane.store.snapshots.for_session(sid)) < count:
            await asyncio.sleep(0.1)
    return found[0]


async def _events(plane: ControlPlane, sid: str) -> list[Any]:
    return await plane.store.events.after(sid, 0, 10_000)


async def _outputs(plane: ControlPlane, sid: str, prompt_id: str) -> str:
    events = await _events(plane, sid)
    return "".join(e.output for e in events if e.type == "tool-result" and e.prompt_id == prompt_id)


async def _kill_box(actor: SessionActor) -> None:
    """kill -9 of the box's process, as a crash would; the engine finds the box lost."""
    handle = actor.sandbox._handle
    assert isinstance(handle, LocalHandle)
    os.kill(handle.pid, signal.SIGKILL)
    async with asyncio.timeout(30):
        while actor.sandbox.status != "lost":
            await asyncio.sleep(0.05)


def _wipe_workspace(plane: ControlPlane, sid: str) -> None:
    """Remove everything this host keeps of the session's workspace (its image, its snapshot
    marker, its files), so that only the snapshot archive holds the work."""
    workspace = plane.settings.workspaces_dir / sid
    assert not os.path.ismount(workspace)  # the dead box's image was unmounted
    image_path(workspace).unlink(missing_ok=True)
    marker_path(workspace).unlink()
    shutil.rmtree(workspace)


async def _first_prompt(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path, origin: Path
) -> tuple[SessionActor, SnapshotRecord]:
    user = _admin(plane)
    session = await plane.manager.create(user, repo=str(origin))
    actor = await plane.manager.actor(session.id)
    llm.reset(bash(install_work(tmp_path)))
    first = await _finished(plane, await actor.submit(user, FIRST_PROMPT))
    assert first.status == "success", (first.error_code, first.error_message)
    assert "installed" in await _outputs(plane, session.id, first.id)
    snapshot = await _snapshot_after(plane, session.id, 1)
    async with asyncio.timeout(30):  # the queue runner is done with the prompt
        while actor.running_prompt_id is not None:
            await asyncio.sleep(0.05)
    return actor, snapshot


async def test_work_survives_a_killed_box_and_the_conversation_continues(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path, origin: Path
) -> None:
    actor, snapshot = await _first_prompt(plane, llm, tmp_path, origin)
    sid = actor.session.id
    assert snapshot.reason == "prompt" and snapshot.data.provider == "bwrap"
    await _kill_box(actor)
    _wipe_workspace(plane, sid)  # as on another host: only the snapshot has the work

    llm.reset(bash(CHECK_WORK))
    second = await _finished(plane, await actor.submit(_admin(plane), "is the work still there?"))
    assert second.status == "success", (second.error_code, second.error_message)
    output = await _outputs(plane, sid, second.id)
    assert "draft: not committed" in output and "value 42" in output
    statuses = [
        (e.status, e.message) for e in await _events(plane, sid) if e.type == "sandbox-status"
    ]
    ready = [message for status, message in statuses if status == "ready"]
    assert len(ready) == 2 and ready[0] is None
    assert ready[1] is not None and ready[1].startswith("restored from the snapshot taken")
    # The model's first request of the follow-up holds the earlier turns and the note.
    request = json.dumps(llm.requests[0].body)
    assert FIRST_PROMPT in request and "installed" in request and REPLACED in request
    # Told once: a prompt in the same restored box is not told again.
    llm.reset(bash("true"))
    third = await _finished(plane, await actor.submit(_admin(plane), "and now?"))
    assert third.status == "success"
    last = llm.requests[0].body["messages"][-1]
    assert "and now?" in json.dumps(last) and REPLACED not in json.dumps(last)


async def test_a_corrupted_snapshot_is_a_failure_the_user_sees(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path, origin: Path
) -> None:
    actor, snapshot = await _first_prompt(plane, llm, tmp_path, origin)
    sid = actor.session.id
    archive = plane.settings.home_dir / "snapshots" / snapshot.data.key
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0x55
    archive.write_bytes(bytes(data))
    await _kill_box(actor)

    llm.reset(bash(CHECK_WORK))
    second = await _finished(plane, await actor.submit(_admin(plane), "carry on"))
    events = await _events(plane, sid)
    errors = [e for e in events if e.type == "error" and e.code == "snapshot_corrupt"]
    assert len(errors) == 1 and "does not match its recorded digest" in errors[0].message
    failed = [e for e in events if e.type == "sandbox-status" and e.status == "failed"]
    assert failed and "could not be restored" in (failed[-1].message or "")
    # Nothing started fresh in its place: one box was ever ready, no command ran.
    assert [e.status for e in events if e.type == "sandbox-status"].count("ready") == 1
    assert "draft" not in await _outputs(plane, sid, second.id)
    assert actor.sandbox.status == "failed"


async def test_the_reaper_snapshots_an_idle_box_and_the_next_prompt_restores_it(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path, origin: Path
) -> None:
    actor, _ = await _first_prompt(plane, llm, tmp_path, origin)
    sid = actor.session.id
    actor.last_work_at -= IDLE_S + 1  # as if idle that long
    assert (await Tidier(plane.manager).sweep()).idle_stopped == [sid]
    newest = await _snapshot_after(plane, sid, 2)
    assert newest.reason == "idle"
    stopped = [e for e in await _events(plane, sid) if e.type == "sandbox-status"][-1]
    assert stopped.status == "stopped" and "snapshotted" in (stopped.message or "")
    assert actor.sandbox.status == "stopped"

    llm.reset(bash(CHECK_WORK))
    second = await _finished(plane, await actor.submit(_admin(plane), "wake up"))
    assert second.status == "success", (second.error_code, second.error_message)
    output = await _outputs(plane, sid, second.id)
    assert "draft: not committed" in output and "value 42" in output
    ready = [e for e in await _events(plane, sid) if e.type == "sandbox-status"][-1]
    assert ready.status == "ready" and "after the box went idle" in (ready.message or "")
    assert len(await plane.store.snapshots.for_session(sid)) == 2  # snapshots_kept
