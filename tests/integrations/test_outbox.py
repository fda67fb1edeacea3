"""The outbox delivery against a real store: each row posted once, in order per target; a row
attempted before is adopted when its post is found; a rate limit pauses its source only; a
refusal fails the row and the next one goes; errors retry with a pause, then give up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from openinspect.domain.events import utcnow
from openinspect.integrations.outbox import (
    MAX_ATTEMPTS,
    OutboxDelivery,
    PermanentFailure,
    RetryLater,
    retry_pause_s,
)
from openinspect.store import Store
from openinspect.store.outbox import OutboxRow


class Clock:
    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self) -> datetime:
        return self.at

    def skip(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class Recorder:
    """A provider in a list: ``fail`` says what the next sends raise."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.posted: list[str] = []
        self.fail: list[Exception] = []
        self.finds: list[str] = []

    async def send(self, row: OutboxRow) -> dict[str, Any]:
        if self.fail:
            raise self.fail.pop(0)
        self.posted.append(row.key)
        return {"n": len(self.posted)}

    async def find(self, row: OutboxRow) -> dict[str, Any] | None:
        self.finds.append(row.key)
        return {"adopted": True} if row.key in self.posted else None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/oi.db")
    yield opened
    await opened.close()


async def _enqueue(store: Store, source: str, *keys: str, target: str = "t1") -> None:
    async with store.engine.begin() as conn:
        for key in keys:
            await store.outbox.enqueue(
                conn, source=source, key=key, kind="k", target={"to": target}, body={}
            )


async def test_rows_are_posted_once_in_order_and_a_post_made_before_a_crash_is_adopted(
    store: Store,
) -> None:
    github = Recorder("github")
    delivery = OutboxDelivery(store.outbox, {"github": github})
    await _enqueue(store, "github", "r1", "r2")
    assert await delivery.deliver() is None
    assert github.posted == ["r1", "r2"] and github.finds == []
    assert await delivery.deliver() is None and github.posted == ["r1", "r2"]

    # A crash after the provider answered and before the commit: the row is attempted again,
    # its post is found by its key, and adopted rather than made twice.
    await _enqueue(store, "github", "r3")
    [row] = await store.outbox.due()
    await store.outbox.begin_attempt(row.id)  # the attempt that died
    github.posted.append("r3")  # … after the provider made the post
    await delivery.deliver()
    assert github.posted == ["r1", "r2", "r3"] and github.finds == ["r3"]
    adopted = await store.outbox.get("r3")
    assert adopted is not None and adopted.result == {"adopted": True}


async def test_a_rate_limit_pauses_its_source_and_holds_back_its_targets_later_rows(
    store: Store,
) -> None:
    clock = Clock()
    github, linear = Recorder("github"), Recorder("linear")
    delivery = OutboxDelivery(store.outbox, {"github": github, "linear": linear}, now=clock)
    await _enqueue(store, "linear", "thought", "action", "response")
    await _enqueue(store, "github", "g1")
    linear.fail = [RetryLater(20, "rate_limited")]
    due = await delivery.deliver()
    assert due is not None and 19 <= due <= 20
    assert linear.posted == [] and github.posted == ["g1"]  # the other source goes on
    clock.skip(21)
    await delivery.deliver()
    assert linear.posted == ["thought", "action", "response"]  # the order held


async def test_a_refused_row_fails_and_errors_retry_then_give_up(store: Store) -> None:
    clock = Clock()
    github = Recorder("github")
    delivery = OutboxDelivery(store.outbox, {"github": github}, now=clock)
    await _enqueue(store, "github", "refused", target="a")
    await _enqueue(store, "github", "flaky", target="b")
    github.fail = [PermanentFailure("not_found"), RuntimeError("boom")]
    due = await delivery.deliver()
    refused = await store.outbox.get("refused")
    assert refused is not None and refused.failed and refused.error_code == "not_found"
    assert due == pytest.approx(retry_pause_s(1))
    github.fail = [RuntimeError("boom")] * MAX_ATTEMPTS
    for _ in range(MAX_ATTEMPTS):
        clock.skip(400)
        await delivery.deliver()
    flaky = await store.outbox.get("flaky")
    assert flaky is not None and flaky.failed
    assert flaky.error_code == "delivery_attempts_exhausted" and flaky.attempts == MAX_ATTEMPTS
    assert github.posted == []
