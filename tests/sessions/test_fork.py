"""Forking a session, in real bubblewrap boxes with real git: the source has two prompts, each
committing its own file. A fork at the end of the first prompt has the first file and not the
second in its box, on a new branch that starts at the first prompt's commit, and its model sees
the first prompt and nothing of the second. Forks inside the second prompt (at a tool call, at
its result) send the model a valid history: every tool call answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import ForkSession
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, Session, User
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.sessions.fork_history import FORKED_TOOL_RESULT
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import MODEL, skip_or_fail
from tests.sessions.bridged import bridged_plane

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(300),
]
FIRST = "write the first file"
SECOND = "write the second file"
FIRST_DONE = "first file written"
SECOND_DONE = "second file written"


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    if (why := probe_bwrap()) is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {why}")
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="bwrap"),
        sessions=SessionSettings(tidy_interval_s=0),
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


def _script(command: str, final: str) -> dict[str, Any]:
    return {
        "turns": [
            {"tool_calls": [{"name": "bash", "args": {"command": command}}]},
            {"text": final},
        ]
    }


async def _run(plane: ControlPlane, session: Session, content: str) -> Prompt:
    actor = await plane.manager.actor(session.id)
    prompt = await actor.submit(_admin(plane), content)
    async with asyncio.timeout(240):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                break
            await asyncio.sleep(0.1)
        while actor.running_prompt_id is not None:  # the queue runner is done with it
            await asyncio.sleep(0.05)
    assert got.status == "success", (got.error_code, got.error_message)
    return got


async def _events(plane: ControlPlane, sid: str) -> list[Any]:
    return await plane.store.events.after(sid, 0, 10_000)


async def _source(plane: ControlPlane, llm: ScriptedLLMServer, origin: Path) -> Session:
    session = await plane.manager.create(_admin(plane), repo=str(origin))
    llm.reset(_script("echo one > first.txt && echo FIRST-OUT-$((0+1))", FIRST_DONE))
    await _run(plane, session, FIRST)
    llm.reset(_script("echo two > second.txt && echo SECOND-OUT-$((1+1))", SECOND_DONE))
    await _run(plane, session, SECOND)
    return session


async def _fork(plane: ControlPlane, source: Session, at_seq: int) -> Session:
    command = ForkSession(session_id=source.id, at_seq=at_seq)
    return await plane.commands.handle(_admin(plane), command, origin="api")


def _assert_every_call_answered(messages: list[dict[str, Any]]) -> None:
    """What providers require: each assistant tool call is answered by a tool message before
    the next assistant message."""
    pending: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            assert not pending, f"unanswered tool calls {pending}"
            pending = {c["id"] for c in message.get("tool_calls") or []}
        elif message["role"] == "tool":
            pending.discard(message["tool_call_id"])
        elif message["role"] == "user":
            assert not pending, f"unanswered tool calls {pending} before a user message"
    assert not pending


async def test_a_fork_at_the_end_of_a_prompt_has_its_history_and_its_commit(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    source = await _source(plane, llm, origin)
    events = await _events(plane, source.id)
    ends = [e for e in events if e.type == "prompt-finished"]
    commits = [e for e in events if e.type == "git-commit"]
    assert len(ends) == 2 and len(commits) == 2

    fork = await _fork(plane, source, ends[0].seq)
    assert fork.forked_from_id == source.id and fork.forked_from_seq == ends[0].seq
    assert fork.branch != source.branch and fork.creator_id == source.creator_id
    created = (await _events(plane, fork.id))[0]
    assert created.type == "session-created" and created.forked_from is not None
    assert (created.forked_from.session_id, created.forked_from.seq) == (source.id, ends[0].seq)
    # Its own branch, made at the first prompt's commit.
    assert await plane.store.branches.head(fork.id, fork.branch) == commits[0].sha

    llm.reset(
        _script("cat first.txt; test -e second.txt && echo HAS-SECOND || echo NO-SECOND", "ok")
    )
    prompt = await _run(plane, fork, "which files are there?")
    outputs = "".join(
        e.output
        for e in await _events(plane, fork.id)
        if e.type == "tool-result" and e.prompt_id == prompt.id
    )
    assert "one" in outputs and "NO-SECOND" in outputs and "HAS-SECOND" not in outputs
    # The model's first request of the fork: the first prompt's turns, none of the second's.
    body = llm.requests[0].body
    sent = json.dumps(body)
    assert FIRST in sent and "FIRST-OUT-1" in sent and FIRST_DONE in sent
    assert SECOND not in sent and "SECOND-OUT" not in sent and SECOND_DONE not in sent
    assert body["messages"][-1]["role"] == "user"
    assert "which files are there?" in json.dumps(body["messages"][-1])
    # ...told where its history and its code come from, at the head of that prompt.
    assert f"fork of session {source.id} at its event {ends[0].seq}" in json.dumps(
        body["messages"][-1]
    )
    _assert_every_call_answered(body["messages"])
    # The source is untouched: its branch still has both commits.
    assert await plane.store.branches.head(source.id, source.branch) == commits[1].sha


async def test_forks_inside_a_prompt_answer_every_tool_call(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    source = await _source(plane, llm, origin)
    events = await _events(plane, source.id)
    second_id = [e for e in events if e.type == "prompt-started"][1].prompt_id
    call = next(e for e in events if e.type == "tool-call" and e.prompt_id == second_id)
    result = next(e for e in events if e.type == "tool-result" and e.prompt_id == second_id)
    first_commit = next(e for e in events if e.type == "git-commit")

    # At the tool's result: the call and its output, not the answer that came after.
    at_result = await _fork(plane, source, result.seq)
    llm.reset({"turns": [{"text": "forked"}]})
    await _run(plane, at_result, "go on from the result")
    body = llm.requests[0].body
    sent = json.dumps(body)
    assert SECOND in sent and "SECOND-OUT-2" in sent and SECOND_DONE not in sent
    assert FORKED_TOOL_RESULT not in sent
    _assert_every_call_answered(body["messages"])
    # Its workspace is at the newest commit by then: the first prompt's.
    assert await plane.store.branches.head(at_result.id, at_result.branch) == first_commit.sha

    # At the tool call: the call is answered by the fork's note, not by its output.
    at_call = await _fork(plane, source, call.seq)
    llm.reset({"turns": [{"text": "forked"}]})
    await _run(plane, at_call, "go on from the call")
    body = llm.requests[0].body
    sent = json.dumps(body)
    assert SECOND in sent and FORKED_TOOL_RESULT in sent and "SECOND-OUT-2" not in sent
    _assert_every_call_answered(body["messages"])

    # Before the second prompt's first response: only the first prompt's turns.
    started = next(e for e in events if e.type == "prompt-started" and e.prompt_id == second_id)
    before = await _fork(plane, source, started.seq)
    rows = await plane.store.sessions.load_conversation(before.id)
    stored = "".join(rows)
    assert FIRST_DONE in stored and SECOND not in stored
