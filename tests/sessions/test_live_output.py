"""A running command's output reaches the session's channel live, as ephemeral
``tool-output-delta`` events in order, before its result; they are never stored, and a stopped
command's result keeps what it printed. The real runtime in-process (no containment claim
here), the real bridge socket, the scripted model."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.settings import AgentSettings, ModelProviderSettings, SandboxSettings, Settings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import MODEL
from tests.sessions.bridged import bridged_plane

SLOW = "for i in 1 2 3; do echo $i; sleep 0.5; done"
TIMEOUT_S = 60.0


def bash_turns(command: str) -> dict[str, Any]:
    return {
        "turns": [
            {"tool_calls": [{"name": "bash", "args": {"command": command}}]},
            {"text": "done"},
        ]
    }


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(openai_compatible_base_url=llm.openai_base_url),
    )
    async with bridged_plane(settings, in_process=True) as opened:
        yield opened


async def _watch(
    plane: ControlPlane, session_id: str, until: str, seen: list[tuple[float, dict[str, Any]]]
) -> None:
    """Collect (arrival time, event) from the session's channel until an event of type ``until``."""
    async with plane.manager.deps.events.subscribe(session_id) as messages:
        seen.append((time.monotonic(), {"type": "subscribed"}))
        async for raw in messages:
            message = json.loads(raw)
            if message["kind"] != "event":
                continue
            seen.append((time.monotonic(), message["event"]))
            if message["event"]["type"] == until:
                return


async def _start(
    plane: ControlPlane, origin: Path, command: str, llm: ScriptedLLMServer, until: str
) -> tuple[str, asyncio.Task[None], list[tuple[float, dict[str, Any]]]]:
    llm.reset(bash_turns(command))
    user = plane.bootstrap.user
    assert user is not None
    session = await plane.manager.create(user, repo=str(origin))
    seen: list[tuple[float, dict[str, Any]]] = []
    watcher = asyncio.create_task(_watch(plane, session.id, until, seen))
    while not seen:
        await asyncio.sleep(0.01)
    actor = await plane.manager.actor(session.id)
    await actor.submit(user, "count slowly")
    return session.id, watcher, seen


async def test_a_slow_command_streams_each_line_before_its_result_and_stores_none(
    plane: ControlPlane, origin: Path, llm: ScriptedLLMServer
) -> None:
    session_id, watcher, seen = await _start(plane, origin, SLOW, llm, "prompt-finished")
    await asyncio.wait_for(watcher, TIMEOUT_S)

    deltas = [(t, e) for t, e in seen if e["type"] == "tool-output-delta"]
    [(result_at, result)] = [(t, e) for t, e in seen if e["type"] == "tool-result"]
    [call] = [e for _, e in seen if e["type"] == "tool-call"]
    assert [e["index"] for _, e in deltas] == list(range(len(deltas)))
    assert "".join(e["data"] for _, e in deltas) == "1\n2\n3\n"
    assert all(e["call_id"] == call["call_id"] and e["skipped_chars"] == 0 for _, e in deltas)
    # Each line was seen while the command still ran: the first one a second before the end.
    assert len(deltas) >= 3, [e["data"] for _, e in deltas]
    assert deltas[0][1]["data"] == "1\n"
    assert result_at - deltas[0][0] > 0.8
    assert all(t <= result_at for t, _ in deltas)
    # Deltas carry the seq of the last durable event before them (the call).
    assert all(e["seq"] >= call["seq"] and e["seq"] < result["seq"] for _, e in deltas)

    stored = await plane.store.events.after(session_id, 0, 1000)
    assert not [e for e in stored if e.type == "tool-output-delta"]
    [stored_result] = [e for e in stored if e.type == "tool-result"]
    assert stored_result.output.count("1\n2\n3\n") == 1  # type: ignore[union-attr]
    assert not stored_result.stopped  # type: ignore[union-attr]


async def test_a_stopped_command_keeps_what_it_printed_and_says_when(
    plane: ControlPlane, origin: Path, llm: ScriptedLLMServer
) -> None:
    command = "echo started; sleep 600"
    session_id, watcher, seen = await _start(plane, origin, command, llm, "prompt-finished")
    async with asyncio.timeout(TIMEOUT_S):
        while not any(e["type"] == "tool-output-delta" for _, e in seen):
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    actor = await plane.manager.actor(session_id)
    assert await actor.stop()
    await asyncio.wait_for(watcher, TIMEOUT_S)

    [result] = [e for _, e in seen if e["type"] == "tool-result"]
    assert result["stopped"] and result["is_error"] and result["exit_code"] is None
    assert result["output"].startswith("started\n")
    assert "[stopped after 1." in result["output"] or "[stopped after 2." in result["output"]
    assert result["duration_ms"] >= 1000
    [finished] = [e for _, e in seen if e["type"] == "prompt-finished"]
    assert finished["status"] == "stopped" and finished["seq"] > result["seq"]
    stored = await plane.store.events.after(session_id, 0, 1000)
    assert [e.type for e in stored].count("tool-result") == 1
