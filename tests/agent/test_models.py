"""The registry refuses, when a prompt is submitted, a model that cannot run here — with the
setting to set and a likely name — and the default it offers is one that can run."""

from __future__ import annotations

import pytest

from openinspect.agent.models import ModelRegistry
from openinspect.errors import ModelNotConfigured, UnknownModel
from openinspect.settings import ModelProviderSettings, Settings

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
