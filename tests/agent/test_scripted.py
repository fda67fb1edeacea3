"""Scripted models: every session replays its script from the first turn, and the shipped demo
scripts are valid and offered when no provider is configured."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from openinspect.agent import scripted
from openinspect.agent.conversation import Conversation
from openinspect.agent.models import ModelRegistry
from openinspect.agent.runner import run_prompt
from openinspect.settings import AgentSettings, ModelProviderSettings, Settings
from tests.agent.test_runner import RUN, MemoryHost


def _texts(host: MemoryHost) -> list[str]:
    return [e.text for e in host.events if e.type == "agent-text"]  # type: ignore[attr-defined]


async def test_each_session_replays_the_script_from_the_start(tmp_path: Path) -> None:
    script = {"turns": [{"text": "first turn"}], "final_text": "no more turns"}
    (tmp_path / "one.json").write_text(json.dumps(script))
    models = ModelRegistry(Settings(models=ModelProviderSettings(scripted_dir=tmp_path)))
    try:
        texts = {}
        for session_id in ("ses_a", "ses_b", "ses_a"):
            run = dataclasses.replace(RUN, session_id=session_id, model_id="scripted:one.json")
            host = MemoryHost()
            outcome = await run_prompt(run, host, Conversation(), models, AgentSettings())
            assert outcome.status == "success", outcome.error
            texts.setdefault(session_id, []).extend(_texts(host))
    finally:
        models.close()
    # Each session got the first turn; ses_a's second prompt continued its own script.
    assert texts == {"ses_a": ["first turn", "no more turns"], "ses_b": ["first turn"]}


def test_the_shipped_demo_scripts_are_valid_and_offered_without_a_provider() -> None:
    names = scripted.packaged_names()
    assert "demo-fix-add" in names and "demo-tour" in names
    for name in names:
        assert scripted.load(scripted.resolve(name, None)).turns
    bare = ModelRegistry(Settings(_env_file=None, anthropic_api_key=None, openai_api_key=None))
    if bare.settings.anthropic_key() is None and bare.settings.openai_key() is None:
        assert bare.default_model() == "scripted:demo-fix-add"
    keyed = ModelRegistry(Settings(anthropic_api_key="sk-test"))  # type: ignore[arg-type]
    assert keyed.default_model() == keyed.settings.agent.default_model
    available = {m.id for m in bare.catalog() if m.available}
    assert {"scripted:demo-fix-add", "scripted:demo-tour"} <= available


def test_an_empty_scripts_dir_setting_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENINSPECT_MODELS__SCRIPTED_DIR", "")
    assert Settings().models.scripted_dir is None  # not the working directory
