"""The scheduler under an injected clock, with real sessions: a schedule fires at its instants
in its zone (across both DST changes), once per instant, once after downtime for the latest
missed slot; two replicas on Postgres ticking at once never fire one instant twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.services.scheduler import Scheduler
from openinspect.settings import ServiceSettings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations.conftest import Clock, make, plane_settings, settled
from tests.sessions.bridged import bridged_plane
from tests.store.test_migrations import pg_url  # noqa: F401 - a fixture

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(300)]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    """The automations tests' plane: real sessions, the scheduler driven by the test."""
    async with bridged_plane(plane_settings(tmp_path / "home", llm), in_process=True) as opened:
        yield opened


@pytest.fixture
def clock(plane: ControlPlane) -> Clock:
    clock = Clock(utc(2026, 12, 2, 9, 0))
    plane.automations.now = clock
    return clock


async def fire_times(plane: ControlPlane, automation_id: str) -> list[datetime]:
    runs = await plane.store.automations.runs(automation_id, limit=1000)
    for run in runs:  # each finishes before the next slot: the skip policy skips none
        await settled(plane, run.id)
    return sorted(r.fire_time for r in runs if r.fire_time is not None)


async def test_the_services_are_registered_and_the_setting_turns_the_scheduler_off(
    tmp_path: Path, llm: ScriptedLLMServer
) -> None:
    settings = plane_settings(tmp_path / "on", llm).model_copy(
        update={"services": ServiceSettings()}
    )
    async with bridged_plane(settings) as on:
        assert {"scheduler", "automation_runs"} <= set(on.services.names)
    async with bridged_plane(plane_settings(tmp_path / "off", llm)) as off:
        assert "scheduler" not in off.services.names
        assert "automation_runs" in off.services.names


async def test_a_schedule_fires_once_at_its_instant_and_once_after_downtime(
    plane: ControlPlane, clock: Clock, origin: Path
) -> None:
    made = await make(plane, origin, {"kind": "schedule", "cron": "0 * * * *", "tz": "UTC"})
    aid = made.automation.id
    assert made.automation.next_run_at == utc(2026, 12, 2, 10, 0)
    scheduler = Scheduler(plane.automations, interval_s=20)
    clock.at = utc(2026, 12, 2, 9, 59, 59)
    await scheduler.run_once()
    assert await fire_times(plane, aid) == []
    clock.at = utc(2026, 12, 2, 10, 0, 5)
    await scheduler.run_once()
    await scheduler.run_once()  # the same instant again: nothing new
    assert await fire_times(plane, aid) == [utc(2026, 12, 2, 10, 0)]
    run = (await plane.store.automations.runs(aid))[0]
    assert run.key == "schedule:2026-12-02T10:00:00+00:00" and run.trigger == "schedule"
    assert (await settled(plane, run.id)).status == "succeeded"
    assert (await plane.store.automations.get(aid)).next_run_at == utc(2026, 12, 2, 11, 0)  # type: ignore[union-attr]

    clock.at = utc(2026, 12, 2, 15, 20)  # down from 10:00 to 15:20: five slots missed
    await scheduler.run_once()
    await scheduler.run_once()
    assert await fire_times(plane, aid) == [utc(2026, 12, 2, 10, 0), utc(2026, 12, 2, 15, 0)]
    assert (await plane.store.automations.get(aid)).next_run_at == utc(2026, 12, 2, 16, 0)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (  # spring forward (29 March): 02:30 does not exist; it fires at 03:00 CEST
            utc(2026, 3, 27, 12, 0),
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        ),
        (  # fall back (25 October): 02:30 happens twice; it fires at the first (CEST)
            utc(2026, 10, 23, 12, 0),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
    ],
    ids=["spring-forward", "fall-back"],
)
async def test_a_zoned_schedule_fires_at_its_instants_across_dst(
    plane: ControlPlane, clock: Clock, origin: Path, start: datetime, expected: list[datetime]
) -> None:
    clock.at = start
    made = await make(
        plane, origin, {"kind": "schedule", "cron": "30 2 * * *", "tz": "Europe/Berlin"}
    )
    scheduler = Scheduler(plane.automations, interval_s=20)
    end = expected[-1] + timedelta(hours=12)
    fired_at: dict[datetime, datetime] = {}
    while clock.at < end:  # a pass every 10 minutes of the simulated days
        clock.advance(minutes=10)
        before = {r.id for r in await plane.store.automations.runs(made.automation.id)}
        await scheduler.run_once()
        for run in await plane.store.automations.runs(made.automation.id):
            if run.id not in before:
                assert run.fire_time is not None
                fired_at[run.fire_time] = clock.at
                await settled(plane, run.id)
    assert sorted(fired_at) == expected
    assert all(timedelta(0) <= fired_at[t] - t < timedelta(minutes=10) for t in expected)


@pytest.fixture
async def replicas(
    tmp_path: Path,
    llm: ScriptedLLMServer,
    pg_url: str,  # noqa: F811 - the fixture
) -> AsyncIterator[tuple[ControlPlane, ControlPlane]]:
    async with (
        bridged_plane(plane_settings(tmp_path / "a", llm, pg_url), in_process=True) as a,
        bridged_plane(plane_settings(tmp_path / "b", llm, pg_url), in_process=True) as b,
    ):
        yield a, b


@pytest.mark.postgres
async def test_two_replicas_on_postgres_never_fire_one_instant_twice(
    replicas: tuple[ControlPlane, ControlPlane], origin: Path
) -> None:
    a, b = replicas
    clock = Clock(utc(2026, 12, 2, 9, 0))
    a.automations.now = b.automations.now = clock
    made = [
        await make(a, origin, {"kind": "schedule", "cron": "*/15 * * * *", "tz": "UTC"}, name=n)
        for n in ("one", "two")
    ]
    schedulers = [Scheduler(p.automations, interval_s=20) for p in (a, b)]
    slots = [utc(2026, 12, 2, 9, 15) + timedelta(minutes=15 * i) for i in range(4)]
    for slot in slots:
        clock.at = slot + timedelta(seconds=1)
        for _ in range(3):  # both replicas, several passes each, at the same time
            await asyncio.gather(*(s.run_once() for s in schedulers))
        for m in made:  # let this slot's runs end before the next (the policy is skip)
            for run in await a.store.automations.runs(m.automation.id):
                assert (await settled(a, run.id)).status == "succeeded"
    for m in made:
        runs = await b.store.automations.runs(m.automation.id, limit=100)
        assert sorted(r.fire_time for r in runs if r.fire_time) == slots
        assert len(runs) == len(slots)
    sessions = await a.store.sessions.list(limit=100)
    assert len(sessions) == len(slots) * len(made)
