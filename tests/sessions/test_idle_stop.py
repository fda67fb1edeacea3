"""Idle sandboxes stop (later while someone watches) and the next prompt wakes a new one on the
same workspace and branch: the real runtime in-process (no containment claim here), real git
through the git proxy, the scripted model over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.events import utcnow
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, User
from openinspect.services.tidy import Tidier
from openinspect.sessions.actor import SessionActor
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import git_output
from tests.conftest import MODEL
from tests.sessions.bridged import bridged_plane

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(300)]
IDLE_S = 1.0
WATCHED_S = 600.0


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(
            tidy_interval_s=0, idle_stop_s=IDLE_S, idle_stop_watched_s=WATCHED_S
        ),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )
    async with bridged_plane(settings, git_proxy=True, in_process=True) as opened:
        yield opened


def _admin(plane: ControlPlane) -> User:
    user = plane.bootstrap.user
    assert user is not None
    return user


def bash(command: str) -> dict[str, Any]:
    return {"turns": [{"tool_calls": [{"name": "bash", "args": {"command": command}}]}]}


async def _finished(plane: ControlPlane, prompt: Prompt, timeout_s: float = 180) -> Prompt:
    async with asyncio.timeout(timeout_s):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                await asyncio.sleep(0.2)  # the queue runner settles the session status
                return got
            await asyncio.sleep(0.1)


async def _statuses(plane: ControlPlane, sid: str) -> list[tuple[str, str | None]]:
    events = await plane.store.events.after(sid, 0, 10_000)
    return [(e.status, e.message) for e in events if e.type == "sandbox-status"]


async def _outputs(plane: ControlPlane, sid: str, prompt_id: str) -> str:
    events = await plane.store.events.after(sid, 0, 10_000)
    return "".join(e.output for e in events if e.type == "tool-result" and e.prompt_id == prompt_id)


async def _idle_for(actor: SessionActor, seconds: float) -> None:
    actor.last_work_at -= seconds  # as if the session had been idle that long


async def test_an_idle_sandbox_stops_and_the_next_prompt_wakes_it_with_the_work_kept(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    user = _admin(plane)
    session = await plane.manager.create(user, repo=str(origin))
    actor = await plane.manager.actor(session.id)
    tidy = Tidier(plane.manager)

    llm.reset(bash("echo one > notes.txt && cat notes.txt"))
    first = await _finished(plane, await actor.submit(user, "write notes"))
    assert first.status == "success", (first.error_code, first.error_message)
    assert actor.sandbox.status == "ready"
    assert (await tidy.sweep()).idle_stopped == []  # it just finished: not idle yet
    pushed = git_output("rev-parse", session.branch, cwd=origin)

    await asyncio.sleep(IDLE_S + 0.2)
    assert (await tidy.sweep()).idle_stopped == [session.id]
    status, message = (await _statuses(plane, session.id))[-1]
    assert status == "stopped" and message is not None and message.startswith("idle")
    assert actor.sandbox.status == "stopped"
    stored = await plane.store.sessions.get(session.id)
    assert stored is not None and stored.sandbox_status == "stopped"
    assert git_output("rev-parse", session.branch, cwd=origin) == pushed  # nothing lost

    # The next prompt boots a new box that continues where the last one stopped.
    llm.reset(bash("cat notes.txt && echo two >> notes.txt && git log --format=%s -1"))
    second = await _finished(plane, await actor.submit(user, "add to the notes"))
    assert second.status == "success", (second.error_code, second.error_message)
    output = await _outputs(plane, session.id, second.id)
    assert "one" in output and "write notes" in output
    # The agent is told its box was replaced (this backend keeps the workspace, no snapshot).
    assert "Your sandbox was replaced" in json.dumps(llm.requests[0].body)
    assert "keeps no snapshots" in json.dumps(llm.requests[0].body)
    assert [s for s, _ in await _statuses(plane, session.id)].count("ready") == 2
    notes = git_output("show", f"{session.branch}:notes.txt", cwd=origin)
    assert notes.split() == ["one", "two"]


async def test_a_watched_sandbox_stays_up_longer_whichever_server_holds_the_watcher(
    plane: ControlPlane, origin: Path
) -> None:
    user = _admin(plane)
    session = await plane.manager.create(user, repo=str(origin))
    actor = await plane.manager.actor(session.id)
    tidy = Tidier(plane.manager)
    actor.typing()  # someone typing boots the box
    await actor.sandbox.ready()
    await _idle_for(actor, IDLE_S + 1)

    # Watched here (a WebSocket on this server): kept.
    await plane.manager.presence.join(session.id, "c1", user.id, user.name)
    assert (await tidy.sweep()).idle_stopped == []
    await plane.manager.presence.leave(session.id, "c1")
    # Watched through another server (it refreshes watched_at): still kept.
    await plane.store.sessions.touch_watched(session.id, utcnow())
    assert (await tidy.sweep()).idle_stopped == []
    assert actor.sandbox.status == "ready"
    # Past the watched limit, a watched box stops too.
    await _idle_for(actor, WATCHED_S)
    assert (await tidy.sweep()).idle_stopped == [session.id]

    # Nobody watches any more (the last refresh is old): the short limit applies.
    actor.typing()
    await actor.sandbox.ready()
    await plane.store.sessions.touch_watched(session.id, utcnow() - timedelta(hours=1))
    await _idle_for(actor, IDLE_S + 1)
    assert (await tidy.sweep()).idle_stopped == [session.id]
    assert [s for s, _ in await _statuses(plane, session.id)].count("stopped") == 2
