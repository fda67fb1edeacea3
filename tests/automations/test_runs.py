"""The engine with real sessions: a firing starts a session through the command path and its
prompt's end is the run's outcome; one key is one run however many firings race; the
concurrency policy queues or skips; three failures pause, run now still works, resume works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.automations import AutomationRun
from openinspect.domain.commands import Stop
from openinspect.errors import AutomationBusy
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations.conftest import admin, make, plane_settings, settled
from tests.sessions.bridged import bridged_plane
from tests.store.test_migrations import pg_url  # noqa: F401 - a fixture

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(300)]
WEBHOOK = {"kind": "webhook"}
PARALLEL = 500
SLOW = {"turns": [{"text": "thinking it over", "delay_ms": 4000}]}


async def test_a_firing_starts_a_session_and_the_prompts_end_is_the_outcome(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    made = await make(plane, origin, WEBHOOK, instructions="Triage the alert")
    assert made.secret is not None and len(made.secret) >= 40
    run = await plane.automations.fire(
        made.automation.id,
        trigger="webhook",
        key="webhook:idem:1",
        payload={"b": 1, "a": [1, 2]},
        context="<untrusted>payload</untrusted>",
        origin_ref="ticket:42",
    )
    assert run.status != "failed" and run.session_id is not None
    done = await settled(plane, run.id)
    assert done.status == "succeeded", (done.error_code, done.reason)
    assert done.started_at is not None and done.finished_at is not None
    assert done.payload_digest is not None and len(done.payload_digest) == 64
    session = await plane.manager.get(done.session_id or "")
    assert session.title == "[Auto] nightly sweep"
    # The session names its automation; what outside fired it stays on the run.
    assert session.origin == "webhook" and session.origin_ref == f"automation:{run.automation_id}"
    assert run.origin_ref == "ticket:42"
    assert session.creator_id == admin(plane).id
    prompt = await plane.store.prompts.get(done.prompt_id or "")
    assert prompt is not None
    assert prompt.content == "Triage the alert\n\n<untrusted>payload</untrusted>"
    assert prompt.client_request_id == f"automation:{run.id}"
    again = await plane.automations.fire(
        made.automation.id, trigger="webhook", key="webhook:idem:1"
    )
    assert again.id == run.id  # the same key is the same run: nothing new starts
    assert len(await plane.store.sessions.list(limit=50)) == 1
    assert (await plane.store.automations.get(made.automation.id)).consecutive_failures == 0  # type: ignore[union-attr]


@pytest.fixture
async def pg_plane(
    tmp_path: Path,
    llm: ScriptedLLMServer,
    pg_url: str,  # noqa: F811 - the fixture
) -> AsyncIterator[ControlPlane]:
    settings = plane_settings(tmp_path / "pg-home", llm, pg_url)
    async with bridged_plane(settings, in_process=True) as opened:
        yield opened


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_plane(request: pytest.FixtureRequest) -> ControlPlane:
    name = "plane" if request.param == "sqlite" else "pg_plane"
    found: ControlPlane = request.getfixturevalue(name)
    return found


async def test_parallel_firings_with_one_key_make_one_run_and_one_session(
    any_plane: ControlPlane, origin: Path
) -> None:
    plane = any_plane
    made = await make(plane, origin, WEBHOOK)
    runs = await asyncio.gather(
        *(
            plane.automations.fire(made.automation.id, trigger="webhook", key="webhook:idem:dup")
            for _ in range(PARALLEL)
        )
    )
    assert len({r.id for r in runs}) == 1
    assert len(await plane.store.automations.runs(made.automation.id, limit=1000)) == 1
    done = await settled(plane, runs[0].id)
    assert done.status == "succeeded", (done.error_code, done.reason)
    assert len(await plane.store.sessions.list(limit=50)) == 1


async def test_skip_policy_records_a_skipped_run_and_run_now_is_busy(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(SLOW)
    made = await make(plane, origin, WEBHOOK, concurrency="skip")
    first = await plane.automations.fire(made.automation.id, trigger="webhook", key="one")
    second = await plane.automations.fire(made.automation.id, trigger="webhook", key="two")
    assert second.status == "skipped"
    assert second.reason == f"run {first.id} of this automation was still active"
    with pytest.raises(AutomationBusy):
        await plane.automations.run_now(made.automation.id)
    assert (await settled(plane, first.id)).status == "succeeded"
    manual = await plane.automations.run_now(made.automation.id)  # free again
    assert manual.trigger == "manual"
    assert (await settled(plane, manual.id)).status == "succeeded"
    # skipped runs are neutral; every run is in the history, newest first
    history = await plane.store.automations.runs(made.automation.id)
    assert [r.id for r in history] == [manual.id, second.id, first.id]


async def test_queue_policy_starts_the_next_run_when_the_active_one_ends(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(SLOW)
    made = await make(plane, origin, WEBHOOK)  # webhooks queue by default
    assert made.automation.concurrency == "queue"
    first = await plane.automations.fire(made.automation.id, trigger="webhook", key="one")
    second = await plane.automations.fire(made.automation.id, trigger="webhook", key="two")
    assert second.status == "queued" and second.reason == f"waiting for run {first.id} to finish"
    assert second.session_id is None
    assert (await settled(plane, first.id)).status == "succeeded"
    done = await settled(plane, second.id)
    assert done.status == "succeeded" and done.session_id not in (None, first.session_id)
    assert done.created_at >= first.created_at


async def test_three_failed_runs_pause_run_now_still_works_and_resume_resets(
    plane: ControlPlane, tmp_path: Path
) -> None:
    gone = tmp_path / "not-a-repo"  # exists, but git cannot fetch it
    gone.mkdir()
    made = await make(plane, gone, {"kind": "schedule", "cron": "0 3 * * *", "tz": "UTC"})
    aid = made.automation.id
    assert made.automation.next_run_at is not None
    for n in range(3):
        run = await plane.automations.fire(aid, trigger="schedule", key=f"schedule:{n}")
        assert run.status == "failed" and run.error_code == "repo_unusable", run
    paused = await plane.store.automations.get(aid)
    assert paused is not None and paused.paused and paused.status == "paused"
    assert paused.next_run_at is None
    assert paused.paused_reason is not None
    assert paused.paused_reason.startswith(
        "paused after 3 failed runs in a row; last error: repo_unusable: Cannot fetch the repo"
    )
    assert str(plane.settings.home_dir) not in paused.paused_reason  # no server paths shown
    skipped = await plane.automations.fire(aid, trigger="schedule", key="schedule:later")
    assert skipped.status == "skipped" and (skipped.reason or "").startswith(
        "the automation is paused"
    )
    manual = await plane.automations.run_now(aid)  # works while paused
    assert manual.status == "failed" and manual.trigger == "manual"
    resumed = await plane.automations.resume(aid)
    assert (
        not resumed.paused and resumed.consecutive_failures == 0 and resumed.paused_reason is None
    )
    assert resumed.next_run_at is not None and resumed.next_run_at > plane.automations.now()


async def test_a_stopped_prompt_fails_its_run_through_the_feed(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "slow", "delay_ms": 30_000}]})
    made = await make(plane, origin, WEBHOOK)
    run = await plane.automations.fire(made.automation.id, trigger="webhook", key="k")
    running = await settled(plane, run.id, ("running",))
    assert running.started_at is not None and running.session_id is not None
    await plane.commands.handle(admin(plane), Stop(session_id=running.session_id), origin="api")
    done = await settled(plane, run.id)
    assert done.status == "failed" and done.error_code is not None
    got = await plane.store.automations.get(made.automation.id)
    assert got is not None and got.consecutive_failures == 1 and got.status == "degraded"


async def test_a_follow_up_prompts_the_same_session_or_skips_while_it_works(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    made = await make(plane, origin, {"kind": "sentry"}, secret="sentry-client-secret-1234")
    assert made.secret is None  # Sentry's secret is the caller's: never handed back
    aid = made.automation.id
    first = await plane.automations.fire(aid, trigger="sentry", key="sentry:issue:7")
    sid = first.session_id
    assert sid is not None
    llm.reset(SLOW)
    await settled(plane, first.id)
    more = await plane.automations.follow_up(
        aid, session_id=sid, key="sentry:issue:7:2", content="It happened again", trigger="sentry"
    )
    assert more.follow_up and more.session_id == sid
    busy = await plane.automations.follow_up(
        aid,
        session_id=sid,
        key="sentry:issue:7:3",
        content="And again",
        trigger="sentry",
        when_busy="skip",
    )
    assert busy.status == "skipped" and busy.reason == f"session {sid} is still working on a prompt"
    done = await settled(plane, more.id)
    assert done.status == "succeeded"
    prompts = await plane.store.prompts.for_session(sid)
    assert [p.content for p in prompts][-1] == "It happened again"
    assert len(await plane.store.sessions.list(limit=50)) == 1  # one issue, one session


async def test_recover_finishes_what_a_crash_left(plane: ControlPlane, origin: Path) -> None:
    made = await make(plane, origin, WEBHOOK)
    aid = made.automation.id
    store = plane.store.automations
    clock_start = plane.automations.now()
    # A starter that died after taking the slot, before the session: the run sits "starting".
    orphan = AutomationRun(
        id="arn_0rphan0000000001",
        automation_id=aid,
        trigger="webhook",
        key="crashed",
        status="starting",
        created_at=clock_start - timedelta(minutes=10),
    )
    await store.insert_run(orphan)
    assert await store.take_slot(aid, orphan.id)
    # A finished run still holding a slot elsewhere, and a queued run behind it.
    other = await make(plane, origin, WEBHOOK, name="other")
    done = AutomationRun(
        id="arn_d0ne000000000001",
        automation_id=other.automation.id,
        trigger="webhook",
        key="done",
        status="succeeded",
        created_at=clock_start,
    )
    behind = done.model_copy(
        update={"id": "arn_beh1nd000000001", "key": "behind", "status": "queued"}
    )
    await store.insert_run(done)
    await store.insert_run(behind)
    assert await store.take_slot(other.automation.id, done.id)

    await plane.automations.recover()
    assert (await settled(plane, orphan.id)).status == "succeeded"
    assert (await settled(plane, behind.id)).status == "succeeded"
    assert len(await plane.store.sessions.list(limit=50)) == 2
    await plane.automations.recover()  # again: nothing more starts
    assert len(await plane.store.sessions.list(limit=50)) == 2
