"""The registry refuses, when a prompt is submitted, a model that cannot run here — with the
setting to set and a likely name — and the default it offers is one that can run."""

from __future__ import annotations

import asyncio
import time

import pytest

from openinspect.agent.models import ModelRegistry
from openinspect.errors import ModelNotConfigured, UnknownModel
from openinspect.settings import ModelProviderSettings, Settings
from openinspect.testing.llm_server import ScriptedLLMServer

KEY_VARS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OPENINSPECT_ANTHROPIC_API_KEY",
    "OPENINSPECT_OPENAI_API_KEY",
    "OPENINSPECT_MODELS__ANTHROPIC_API_KEY",
    "OPENINSPECT_MODELS__OPENAI_API_KEY",
    "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL",
    "OPENINSPECT_AGENT__DEFAULT_MODEL",
)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


def test_a_provider_without_a_key_is_refused_with_the_setting_to_set() -> None:
    registry = ModelRegistry(Settings())
    with pytest.raises(ModelNotConfigured) as anthropic:
        registry.validate("anthropic:claude-x", None)
    assert anthropic.value.code == "model_not_configured"
    assert anthropic.value.status == 422
    assert "ANTHROPIC_API_KEY" in (anthropic.value.hint or "")
    with pytest.raises(ModelNotConfigured) as openai:
        registry.validate("openai:gpt-4o", None)
    assert "OPENAI_API_KEY" in (openai.value.hint or "")
    with pytest.raises(ModelNotConfigured) as compatible:
        registry.validate("openai-compatible:foo", None)
    assert "OPENAI_COMPATIBLE_BASE_URL" in (compatible.value.hint or "")


def test_a_not_configured_model_suggests_a_close_one_that_runs_here() -> None:
    registry = ModelRegistry(Settings(openai_api_key="sk-test"))  # type: ignore[arg-type]
    registry.validate("openai:gpt-5-mini", None)
    with pytest.raises(ModelNotConfigured) as refused:
        registry.validate("anthropic:gpt-5-mini", None)
    assert "did you mean openai:gpt-5-mini?" in (refused.value.hint or "")


def test_an_unknown_provider_is_refused_with_a_did_you_mean() -> None:
    registry = ModelRegistry(Settings())
    with pytest.raises(UnknownModel) as typo:
        registry.validate("antropic:claude-sonnet-4-6", None)
    assert typo.value.code == "unknown_model"
    assert "Did you mean anthropic:claude-sonnet-4-6?" in (typo.value.hint or "")
    with pytest.raises(UnknownModel) as bogus:
        registry.validate("bogus:model", None)
    assert "Did you mean" not in (bogus.value.hint or "")
    assert "anthropic" in (bogus.value.hint or "")


def test_the_default_model_is_one_that_is_available() -> None:
    registry = ModelRegistry(Settings())
    default = registry.default_model()
    assert default in registry.available_models()
    registry.validate(default, None)
    keyed = ModelRegistry(Settings(anthropic_api_key="sk-test"))  # type: ignore[arg-type]
    assert keyed.default_model() == keyed.settings.agent.default_model
    assert keyed.default_model() in keyed.available_models()


def test_a_configured_compatible_server_is_accepted() -> None:
    settings = Settings(
        models=ModelProviderSettings(openai_compatible_base_url="http://127.0.0.1:1/v1")
    )
    ModelRegistry(settings).validate("openai-compatible:foo", None)


DEAD_URL = "http://127.0.0.1:1/v1"
"""A base URL nothing answers at: the provider cannot be asked for its models."""


async def test_a_misspelled_model_of_a_known_provider_is_refused_with_a_did_you_mean() -> None:
    settings = Settings(
        anthropic_api_key="sk-test",  # type: ignore[arg-type]
        openai_api_key="sk-test",  # type: ignore[arg-type]
        models=ModelProviderSettings(anthropic_base_url=DEAD_URL, openai_base_url=DEAD_URL),
    )
    registry = ModelRegistry(settings)
    for typo, meant in (
        ("anthropic:claude-sonet-4-6", "anthropic:claude-sonnet-4-6"),
        ("anthropic:claude-sonet-4", "anthropic:claude-sonnet-4-6"),
        ("openai:gpt-5-minii", "openai:gpt-5-mini"),
    ):
        with pytest.raises(UnknownModel) as refused:
            await registry.check(typo, None)
        assert refused.value.code == "unknown_model" and refused.value.status == 422
        assert f"Did you mean {meant}?" in (refused.value.hint or ""), typo
    # Known names pass without asking anyone; so does a name like no known one (a model newer
    # than this release), when the provider cannot be asked.
    await registry.check("anthropic:claude-sonnet-4-6", None)
    await registry.check("openai:gpt-5-codex", None)
    await registry.check("openai:o9-experimental", None)


async def test_the_providers_own_list_decides_when_it_answers() -> None:
    listed = ["gpt-6-custom", "qwen2.5-coder"]
    with ScriptedLLMServer({"models": listed}) as server:
        settings = Settings(
            openai_api_key="sk-test",  # type: ignore[arg-type]
            models=ModelProviderSettings(
                openai_base_url=server.openai_base_url,
                openai_compatible_base_url=server.openai_base_url,
            ),
        )
        registry = ModelRegistry(settings)
        await registry.check("openai:gpt-6-custom", None)
        await registry.check("openai-compatible:qwen2.5-coder", None)
        with pytest.raises(UnknownModel) as typo:
            await registry.check("openai-compatible:qwen2.5-codr", None)
        assert "Did you mean openai-compatible:qwen2.5-coder?" in (typo.value.hint or "")
        with pytest.raises(UnknownModel) as unknown:
            await registry.check("openai:o9-experimental", None)
        assert "openai:gpt-6-custom" in (unknown.value.hint or "")
        # The list is cached: a model the server lists later is not seen until it expires.
        server.reset({"models": [*listed, "llama3"]})
        with pytest.raises(UnknownModel):
            await registry.check("openai-compatible:llama3", None)
        await ModelRegistry(settings).check("openai-compatible:llama3", None)  # a fresh cache


async def test_a_compatible_server_that_cannot_list_is_not_a_reason_to_refuse() -> None:
    with ScriptedLLMServer({"turns": []}) as server:  # no model list: /v1/models is a 404
        for url in (server.openai_base_url, DEAD_URL):
            settings = Settings(models=ModelProviderSettings(openai_compatible_base_url=url))
            await ModelRegistry(settings).check("openai-compatible:anything-at-all", None)


async def test_checks_and_prompts_wait_for_the_model_clients_to_load() -> None:
    """The server imports the model clients in a thread once it listens; a request that came
    first importing pydantic-ai on the loop at the same time found it half-initialised (an
    intermittent 500 on ``POST /api/sessions``). Whatever imports it waits for the load."""
    settings = Settings(
        openai_api_key="sk-test",  # type: ignore[arg-type]
        models=ModelProviderSettings(openai_base_url=DEAD_URL),
    )
    registry = ModelRegistry(settings)
    order: list[str] = []
    real = registry.preload

    def slow_preload() -> None:
        time.sleep(0.3)
        real()
        order.append("loaded")

    registry.preload = slow_preload  # type: ignore[method-assign]
    warm = asyncio.create_task(registry.loaded())
    await asyncio.sleep(0)
    await registry.check("openai:gpt-5-mini", None)
    order.append("checked")
    await warm
    await registry.loaded()  # once: a second wait does not load again
    assert order == ["loaded", "checked"]
