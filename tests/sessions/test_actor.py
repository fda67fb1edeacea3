"""The actor keeps its session's conversation: a follow-up continues it without reloading it,
and after a restart the next prompt resumes it from the store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, User
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import MODEL
from tests.sessions.bridged import bridged_plane

pytestmark = pytest.mark.timeout(180)


def _settings(home: Path, llm: ScriptedLLMServer) -> Settings:
    return Settings(
        home=home,
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )


def _admin(plane: ControlPlane) -> User:
    """The admin made on the first start (a restart makes none)."""
    user = plane.bootstrap.user
    assert user is not None
    return user


async def _finished(plane: ControlPlane, prompt: Prompt) -> Prompt:
    async with asyncio.timeout(120):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                return got
            await asyncio.sleep(0.05)


async def test_a_restarted_server_resumes_the_conversation(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"text": "Looking.", "tool_calls": [{"name": "glob", "args": {"pattern": "*"}}]},
                {"text": "The first answer mentions zebra-42."},
                {"text": "The second answer."},
                {"text": "The third answer."},
            ]
        }
    )
    settings = _settings(tmp_path / "home", llm)
    async with bridged_plane(settings, git_proxy=True, in_process=True) as plane:
        user = _admin(plane)
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        first = await _finished(plane, await actor.submit(user, "first question"))
        assert first.status == "success", first.error_message
        after_first = await plane.store.sessions.load_conversation(session.id)
        second = await _finished(plane, await actor.submit(user, "second question"))
        assert second.status == "success", second.error_message
        after_second = await plane.store.sessions.load_conversation(session.id)
    # The follow-up appended to what the first prompt stored; nothing before it changed.
    assert after_second[: len(after_first)] == after_first
    assert len(after_second) == len(after_first) + 2

    async with bridged_plane(settings, git_proxy=True, in_process=True) as plane:
        actor = await plane.manager.actor(session.id)
        third = await _finished(plane, await actor.submit(user, "third question"))
        assert third.status == "success", third.error_message
        after_third = await plane.store.sessions.load_conversation(session.id)
    assert after_third[: len(after_second)] == after_second
    sent = json.dumps(llm.requests[-1].body["messages"])
    for earlier in ("first question", "zebra-42", "second question", "The second answer"):
        assert earlier in sent
