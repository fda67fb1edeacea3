"""Automation engine fixtures: a control plane whose sessions really run (the real runtime
in-process, the scripted model over HTTP) with the outcome consumer polling fast and the
scheduler off (tests drive ``tick`` with their own clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from openinspect.automations import manage
from openinspect.controlplane import ControlPlane
from openinspect.domain.automations import AutomationRun, RunStatus, Trigger
from openinspect.domain.models import User
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    ServiceSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import MODEL
from tests.sessions.bridged import bridged_plane

RUN_TIMEOUT_S = 120.0


def plane_settings(home: Path, llm: ScriptedLLMServer, database_url: str | None = None) -> Settings:
    return Settings(
        home=home,
        database_url=database_url,
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
        services=ServiceSettings(scheduler_enabled=False, automation_runs_poll_s=0.1),
    )


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    async with bridged_plane(plane_settings(tmp_path / "home", llm), in_process=True) as opened:
        yield opened


@dataclass
class Clock:
    """A settable clock for the engine (``engine.now``)."""

    at: datetime = field(default_factory=lambda: datetime(2026, 12, 2, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


def admin(plane: ControlPlane) -> User:
    user = plane.bootstrap.user
    assert user is not None
    return user


async def make(
    plane: ControlPlane, repo: str | Path, trigger: Trigger | dict[str, Any], **fields: Any
) -> manage.Created:
    parsed: Trigger = TypeAdapter(Trigger).validate_python(trigger)
    return await manage.create(
        plane.automations,
        fields.pop("user", None) or admin(plane),
        name=fields.pop("name", "nightly sweep"),
        repo=str(repo),
        instructions=fields.pop("instructions", "Say hello"),
        trigger=parsed,
        **fields,
    )


async def settled(
    plane: ControlPlane,
    run_id: str,
    statuses: tuple[RunStatus, ...] = ("succeeded", "failed", "skipped"),
    timeout_s: float = RUN_TIMEOUT_S,
) -> AutomationRun:
    """The run once it reaches one of ``statuses``."""
    run = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                run = await plane.store.automations.get_run(run_id)
                assert run is not None
                if run.status in statuses:
                    return run
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"run {run_id} did not reach {statuses}: {run!r}") from None
