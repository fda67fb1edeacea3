"""The repo's AGENTS.md is a file from the box: what reaches the model is capped
(``agent.instructions_chars``) and says it was cut, a file that is not text or not a file is
skipped without a word of the server's, and a load_skill name cannot reach another repo's
skill or a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
from tests.sessions.test_guidance import _finished, _system

pytestmark = pytest.mark.timeout(180)
TAIL = "tail-marker-that-must-not-reach-the-model"


def _repo(root: Path) -> Path:
    origin = make_sample_repo(root)
    work = root / "work"
    (work / "AGENTS.md").write_text("head line\n" + "x" * 40_000 + f"\n{TAIL}\n")
    (work / "CLAUDE.md").mkdir()  # a directory of that name: skipped
    (work / "CLAUDE.md" / "keep").write_text("")
    git_output("add", ".", cwd=work)
    git_output("-c", "user.name=D", "-c", "user.email=d@e", "commit", "-qm", "big", cwd=work)
    git_output("push", "--quiet", str(origin), "main", cwd=work)
    return origin


async def test_a_big_agents_md_is_cut_and_a_skill_name_stays_in_its_scope(
    tmp_path: Path, llm: ScriptedLLMServer
) -> None:
    (tmp_path / "src").mkdir()
    origin = _repo(tmp_path / "src")
    llm.reset(
        {
            "turns": [
                {"text": "a", "tool_calls": [{"name": "glob", "args": {"pattern": "*"}}]},
                {"text": "b", "tool_calls": [{"name": "load_skill", "args": {"name": "other"}}]},
                {
                    "text": "c",
                    "tool_calls": [{"name": "load_skill", "args": {"name": "../../etc/passwd"}}],
                },
                {"text": "done"},
            ]
        }
    )
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL, instructions_chars=8192),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )
    async with bridged_plane(settings, in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        other = await plane.store.repos.create(
            name="acme/other", url="/r", default_branch="main", created_by=user.id
        )
        await plane.store.skills.put(other.id, "other", "Not this repo's", "OTHER-BODY", by=user.id)
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        done = await _finished(plane.store, await actor.submit(user, "go"))
        assert done.status == "success", done.error_message
    system = _system(llm.requests[1].body)
    assert "head line" in system and "AGENTS.md cut at 8,192 characters" in system
    assert TAIL not in json.dumps(llm.requests[-1].body)
    assert len(system) < 8192 + 4000  # the cap, plus the builtin instructions
    assert "<CLAUDE.md>" not in system
    sent = json.dumps(llm.requests[-1].body)
    assert "OTHER-BODY" not in sent and "root:" not in sent
    assert sent.count("skill_not_found") == 2
    assert str(tmp_path) not in sent
