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


def test_each_backend_has_its_section_and_the_flat_names_still_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENINSPECT_SANDBOX__PYTHON", "/usr/local/bin/python3")
    monkeypatch.setenv("OPENINSPECT_SANDBOX__BOX_USER", "990:990")
    monkeypatch.setenv("OPENINSPECT_SANDBOX__PROCESS__PYTHON", "/opt/venv/bin/python")
    sandbox = Settings().sandbox
    # The earlier flat names land in the backend sections; a section's own value wins.
    assert (sandbox.bwrap.python, sandbox.bwrap.box_user) == ("/usr/local/bin/python3", "990:990")
    assert sandbox.process.python == "/opt/venv/bin/python"
    assert "python" not in type(sandbox).model_fields
    assert "box_user" not in type(sandbox).model_fields
