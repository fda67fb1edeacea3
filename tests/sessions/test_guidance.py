"""The repo's instructions and the team's skills reach the model, on in-process boxes and the
scripted LLM (what reached it is read from the server's recorded requests): the root AGENTS.md
and CLAUDE.md from the box, a nested AGENTS.md with the first tool result under its directory,
the skills list in the instructions and a skill's body once the model loads it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import git_output, make_sample_repo
from tests.conftest import MODEL
from tests.sessions.bridged import bridged_plane

pytestmark = pytest.mark.timeout(180)

ROOT_LINE = "Run make lint-zebra before you finish."
CLAUDE_LINE = "Never touch the vendored okapi directory."
NESTED_LINE = "Modules in pkg use tabs-for-giraffes."
SKILL_BODY = "Tag the release vNEXT-pangolin and write the notes."


def _repo_with_instructions(root: Path) -> Path:
    origin = make_sample_repo(root)
    work = root / "work"
    (work / "AGENTS.md").write_text(f"# Agents\n{ROOT_LINE}\n")
    (work / "CLAUDE.md").write_text(f"{CLAUDE_LINE}\n")
    (work / "pkg").mkdir()
    (work / "pkg" / "AGENTS.md").write_text(f"{NESTED_LINE}\n")
    (work / "pkg" / "mod.py").write_text("VALUE = 1\n")
    git_output("add", ".", cwd=work)
    git_output(
        "-c", "user.name=D", "-c", "user.email=d@e", "commit", "--quiet", "-m", "agents", cwd=work
    )
    git_output("push", "--quiet", str(origin), "main", cwd=work)
    return origin


async def _finished(store: object, prompt: Prompt) -> Prompt:
    async with asyncio.timeout(120):
        while True:
            got = await store.prompts.get(prompt.id)  # type: ignore[attr-defined]
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                return got
            await asyncio.sleep(0.05)


def _system(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    return json.dumps([m for m in messages if m.get("role") == "system"])


async def test_agents_md_and_skills_reach_the_model(tmp_path: Path, llm: ScriptedLLMServer) -> None:
    (tmp_path / "src").mkdir()
    origin = _repo_with_instructions(tmp_path / "src")
    llm.reset(
        {
            "turns": [
                {
                    "text": "Reading.",
                    "tool_calls": [{"name": "read", "args": {"path": "pkg/mod.py"}}],
                },
                {
                    "text": "Loading.",
                    "tool_calls": [{"name": "load_skill", "args": {"name": "release"}}],
                },
                {"text": "Done."},
                {"text": "Second done."},
            ]
        }
    )
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )
    async with bridged_plane(settings, in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        await plane.store.skills.put(
            None, "release", "How we cut a release", SKILL_BODY, by=user.id
        )
        await plane.store.skills.put(None, "style", "Our code style", "Be terse.", by=user.id)
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        first = await _finished(plane.store, await actor.submit(user, "do it"))
        assert first.status == "success", first.error_message
        second = await _finished(plane.store, await actor.submit(user, "again"))
        assert second.status == "success", second.error_message
        events = await plane.store.events.after(session.id, 0, 500)
    bodies = [r.body for r in llm.requests]
    assert len(bodies) == 4
    # The skills are listed from the first request on (names and descriptions, no body).
    assert "release: How we cut a release" in _system(bodies[0])
    assert "style: Our code style" in _system(bodies[0])
    assert SKILL_BODY not in json.dumps(bodies[0])
    # The box was booting at the first request: the root files came with the first tool call,
    # and are in the instructions of every request after it.
    assert ROOT_LINE not in json.dumps(bodies[0])
    for body in bodies[1:]:
        assert ROOT_LINE in _system(body) and CLAUDE_LINE in _system(body)
    # The nested file came once, with the read under its directory.
    sent = json.dumps(bodies[1]["messages"])
    assert NESTED_LINE in sent and NESTED_LINE not in _system(bodies[1])
    assert json.dumps(bodies[2]).count(NESTED_LINE) == 1
    # The skill's body is the load_skill result the next request carries.
    assert SKILL_BODY in json.dumps(bodies[2]["messages"])
    # The second prompt started with the box ready: its first request has the root files.
    assert ROOT_LINE in _system(bodies[3])
    results = [e for e in events if e.type == "tool-result" and e.tool == "load_skill"]  # type: ignore[union-attr]
    assert len(results) == 1 and not results[0].is_error  # type: ignore[union-attr]


async def test_an_unknown_skill_is_a_result_naming_the_ones_there(
    tmp_path: Path, llm: ScriptedLLMServer
) -> None:
    (tmp_path / "src").mkdir()
    origin = _repo_with_instructions(tmp_path / "src")
    llm.reset(
        {
            "turns": [
                {
                    "text": "Loading.",
                    "tool_calls": [{"name": "load_skill", "args": {"name": "nope"}}],
                },
                {"text": "Done."},
            ]
        }
    )
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )
    async with bridged_plane(settings, in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        await plane.store.skills.put(None, "release", "How we release", SKILL_BODY, by=user.id)
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        done = await _finished(plane.store, await actor.submit(user, "do it"))
        assert done.status == "success", done.error_message
    sent = json.dumps(llm.requests[1].body["messages"])
    assert "skill_not_found" in sent and "available: release" in sent
    assert SKILL_BODY not in sent


async def test_an_agents_md_the_agent_changed_counts_from_the_next_prompt(
    tmp_path: Path, llm: ScriptedLLMServer
) -> None:
    (tmp_path / "src").mkdir()
    origin = _repo_with_instructions(tmp_path / "src")
    new_line = "From now on, name every branch after a narwhal."
    write = {"path": "AGENTS.md", "content": f"{new_line}\n"}
    llm.reset(
        {
            "turns": [
                {"text": "Editing.", "tool_calls": [{"name": "write", "args": write}]},
                {"text": "Done."},
                {"text": "Second done."},
            ]
        }
    )
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )
    async with bridged_plane(settings, git_proxy=True, in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        for content in ("rewrite it", "again"):
            done = await _finished(plane.store, await actor.submit(user, content))
            assert done.status == "success", done.error_message
    # Within the prompt that changed it, the run keeps what it read; the next prompt has it new.
    assert ROOT_LINE in _system(llm.requests[1].body)
    assert new_line in _system(llm.requests[2].body)
    assert ROOT_LINE not in _system(llm.requests[2].body)
