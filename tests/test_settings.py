"""Every setting is described, and docs/settings.md is the generated reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from openinspect.settings import Settings
from openinspect.settings_doc import render

DOCS = Path(__file__).parents[1] / "docs" / "settings.md"


def _fields(model: type[BaseModel]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out.extend(_fields(field.annotation))
        else:
            out.append((name, field.description))
    return out


def test_every_setting_is_described() -> None:
    assert [name for name, description in _fields(Settings) if not description] == []


def test_settings_reference_is_current() -> None:
    assert DOCS.read_text() == render(), "run: uv run python -m openinspect.settings_doc"


def test_nested_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENINSPECT_SANDBOX__PROVIDER", "process")
    monkeypatch.setenv("OPENINSPECT_SESSIONS__MAX_UNFINISHED_PROMPTS", "3")
    settings = Settings()
    assert settings.sandbox.provider == "process"
    assert settings.sessions.max_unfinished_prompts == 3
