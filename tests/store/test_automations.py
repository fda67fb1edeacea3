"""The automation store on SQLite and Postgres: records round-trip, the secret is sealed, a key
makes one run however many firings race, the slot admits one run, and three failures in a row
pause the automation with the reason."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta

import pytest
import sqlalchemy as sa

from openinspect.domain.automations import (
    Automation,
    AutomationRun,
    Condition,
    ScheduleTrigger,
    WebhookTrigger,
)
from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.errors import ConfigError
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.tables import automations

PARALLEL_FIRINGS = 500


def automation(**fields: object) -> Automation:
    now = utcnow()
    values: dict[str, object] = {
        "id": new_id("aut"),
        "name": "nightly",
        "repo": "calc",
        "instructions": "Sweep the dependencies",
        "trigger": ScheduleTrigger(cron="0 3 * * *", tz="Europe/Berlin"),
        "run_as": "usr_1",
        "created_by": "usr_1",
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    return Automation.model_validate(values)


def run(automation_id: str, key: str, **fields: object) -> AutomationRun:
    values: dict[str, object] = {
        "id": new_id("arn"),
        "automation_id": automation_id,
        "trigger": "webhook",
        "key": key,
        "status": "queued",
        "created_at": utcnow(),
        **fields,
    }
    return AutomationRun.model_validate(values)


def sealed_store(store: Store) -> Store:
    """``store`` with a sealer for secrets (the fixture opens it without one)."""
    from openinspect.store.automations import AutomationStore

    store.automations = AutomationStore(store.engine, Sealer(b"k" * 32))
    return store


async def test_an_automation_round_trips_and_lists_newest_first(store: Store) -> None:
    first = automation(
        conditions=[Condition(path="$.action", op="equals", value="opened")],
        next_run_at=utcnow() + timedelta(hours=1),
    )
    await store.automations.create(first)
    assert await store.automations.get(first.id) == first
    second = automation(created_at=first.created_at + timedelta(seconds=1), run_as="usr_2")
    await store.automations.create(second)
    assert [a.id for a in await store.automations.list()] == [second.id, first.id]
    assert [a.id for a in await store.automations.list(owner_id="usr_2")] == [second.id]
    assert [a.id for a in await store.automations.list(before=second.id)] == [first.id]
    edited = await store.automations.update(first.model_copy(update={"name": "renamed"}))
    assert edited is not None and edited.name == "renamed" and edited.conditions == first.conditions
    assert await store.automations.delete(first.id)
    assert await store.automations.get(first.id) is None
    assert not await store.automations.delete(first.id)


async def test_the_secret_is_sealed_at_rest_and_opens_only_for_its_row(store: Store) -> None:
    store = sealed_store(store)
    hook = automation(trigger=WebhookTrigger())
    other = automation(trigger=WebhookTrigger())
    await store.automations.create(hook, secret="s3cret-value-123")
    await store.automations.create(other, secret="another-secret-456")
    async with store.engine.connect() as conn:
        stored = dict(
            (await conn.execute(sa.select(automations.c.id, automations.c.secret_enc))).all()
        )
    assert "s3cret-value-123" not in stored[hook.id]
    assert b"s3cret" not in base64.b64decode(stored[hook.id])
    assert await store.automations.secret(hook.id) == "s3cret-value-123"
    async with store.engine.begin() as conn:  # a ciphertext moved to another row does not open
        await conn.execute(
            automations.update()
            .where(automations.c.id == other.id)
            .values(secret_enc=stored[hook.id])
        )
    with pytest.raises(ConfigError):
        await store.automations.secret(other.id)


async def test_parallel_firings_with_one_key_make_one_run(store: Store) -> None:
    made = automation(trigger=WebhookTrigger())
    await store.automations.create(made)
    results = await asyncio.gather(
        *(
            store.automations.insert_run(run(made.id, "webhook:idem:abc"))
            for _ in range(PARALLEL_FIRINGS)
        )
    )
    assert sum(created for _, created in results) == 1
    assert len({r.id for r, _ in results}) == 1
    assert len(await store.automations.runs(made.id, limit=1000)) == 1


async def test_the_slot_admits_one_run_at_a_time(store: Store) -> None:
    made = automation()
    await store.automations.create(made)
    ids = [new_id("arn") for _ in range(20)]
    taken = await asyncio.gather(*(store.automations.take_slot(made.id, i) for i in ids))
    assert sum(taken) == 1
    holder = await store.automations.slot(made.id)
    assert holder == ids[taken.index(True)]
    assert not await store.automations.free_slot(made.id, "arn_other")
    assert await store.automations.free_slot(made.id, holder)
    assert await store.automations.slot(made.id) is None


async def test_three_failures_in_a_row_pause_and_a_success_resets(store: Store) -> None:
    made = automation(next_run_at=utcnow())
    await store.automations.create(made)

    async def finish(key: str, failed: bool) -> Automation | None:
        started = run(made.id, key, status="running")
        await store.automations.insert_run(started)
        assert await store.automations.take_slot(made.id, started.id)
        moved, paused = await store.automations.finish_run(
            started.id, ["running"], failed=failed, error_code="repo_unusable", reason="gone"
        )
        assert moved is not None and moved.status == ("failed" if failed else "succeeded")
        assert await store.automations.slot(made.id) is None  # the slot is freed either way
        return paused

    assert await finish("a", True) is None
    assert await finish("b", True) is None
    assert await finish("c", False) is None  # resets the counter
    got = await store.automations.get(made.id)
    assert got is not None and got.consecutive_failures == 0 and got.status == "enabled"
    assert await finish("d", True) is None
    assert (await store.automations.get(made.id)).status == "degraded"  # type: ignore[union-attr]
    assert await finish("e", True) is None
    paused = await finish("f", True)
    assert paused is not None and paused.paused and paused.next_run_at is None
    assert paused.paused_reason == (
        "paused after 3 failed runs in a row; last error: repo_unusable: gone"
    )
    again = await store.automations.finish_run("nope", ["running"], failed=True)
    assert again == (None, None)
    resumed = await store.automations.set_paused(
        made.id, paused=False, reason=None, next_run_at=None
    )
    assert resumed is not None and not resumed.paused and resumed.consecutive_failures == 0


async def test_runs_page_newest_first_and_last_runs_pick_each_newest(store: Store) -> None:
    a, b = automation(), automation()
    await store.automations.create(a)
    await store.automations.create(b)
    start = utcnow()
    made = [run(a.id, f"k{i}", created_at=start + timedelta(seconds=i)) for i in range(5)]
    for r in made:
        await store.automations.insert_run(r)
    await store.automations.insert_run(run(b.id, "only", created_at=start))
    page = await store.automations.runs(a.id, limit=2)
    assert [r.key for r in page] == ["k4", "k3"]
    nxt = await store.automations.runs(a.id, limit=2, before=page[-1].id)
    assert [r.key for r in nxt] == ["k2", "k1"]
    last = await store.automations.last_runs([a.id, b.id, "aut_none"])
    assert {k: v.key for k, v in last.items()} == {a.id: "k4", b.id: "only"}
    assert (await store.automations.oldest_queued(a.id)).key == "k0"  # type: ignore[union-attr]
    assert set(await store.automations.waiting()) == {a.id, b.id}
    moved = await store.automations.set_run(made[0].id, ["queued"], status="skipped", reason="x")
    assert moved is not None and moved.status == "skipped"
    assert await store.automations.set_run(made[0].id, ["queued"], status="starting") is None


async def test_due_schedules_and_a_guarded_advance(store: Store) -> None:
    now = utcnow()
    due = automation(next_run_at=now - timedelta(minutes=1))
    later = automation(next_run_at=now + timedelta(minutes=5))
    paused = automation(next_run_at=now - timedelta(minutes=1), paused=True)
    hook = automation(trigger=WebhookTrigger())
    for made in (due, later, paused, hook):
        await store.automations.create(made)
    assert [a.id for a in await store.automations.due(now, 10)] == [due.id]
    assert due.next_run_at is not None
    assert await store.automations.advance(due.id, expected=due.next_run_at, next_run_at=now)
    assert not await store.automations.advance(due.id, expected=due.next_run_at, next_run_at=now)
    assert [a.id for a in await store.automations.due(now, 10)] == [due.id]  # now <= now


async def test_runs_a_crash_left_between_slot_and_session_are_found(store: Store) -> None:
    made = automation()
    await store.automations.create(made)
    old = utcnow() - timedelta(minutes=10)
    starting = run(made.id, "a", status="starting", created_at=old)
    holder = run(made.id, "b", status="queued", created_at=old)
    waiting = run(made.id, "c", status="queued", created_at=old)
    linked = run(made.id, "d", status="starting", created_at=old, prompt_id="prm_1")
    fresh = run(made.id, "e", status="starting")
    for r in (starting, holder, waiting, linked, fresh):
        await store.automations.insert_run(r)
    assert await store.automations.take_slot(made.id, holder.id)
    stale = await store.automations.stale_starting(utcnow() - timedelta(minutes=5))
    assert {r.key for r in stale} == {"a", "b"}
