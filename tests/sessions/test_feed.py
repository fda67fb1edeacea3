"""Feed consumers: each name sees every event once, survives being killed mid-batch, and one name
in two processes never handles an event twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.bus.memory import MemoryBus
from openinspect.sessions.eventlog import EventLog
from openinspect.sessions.feed import FeedConsumer, idempotency_key
from openinspect.store import Store
from openinspect.store.feed import FeedBatch
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.test_feed import new_sessions, text

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 30.0


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:  # noqa: F811 - the fixture
    opened = await Store.open(store_url)
    async with opened.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE effects (consumer VARCHAR(40), pos BIGINT)"))
    try:
        yield opened
    finally:
        await opened.close()


class Recorder:
    """A handler that keeps its effect in the database (a row per event, on the claim's
    connection) and "sends" one outside it (a list in memory), checking that no event is in
    two handlers' hands at once."""

    def __init__(self, label: str, in_flight: set[int] | None = None) -> None:
        self.label = label
        self.sent: list[str] = []
        self.in_flight = in_flight if in_flight is not None else set()
        self.overlaps: list[int] = []

    async def __call__(self, batch: FeedBatch, conn: AsyncConnection) -> None:
        positions = [e.pos for e in batch.entries]
        self.overlaps.extend(p for p in positions if p in self.in_flight)
        self.in_flight.update(positions)
        try:
            self.sent.extend(idempotency_key("n", p) for p in positions)
            await conn.execute(
                sa.text("INSERT INTO effects (consumer, pos) VALUES (:c, :p)"),
                [{"c": self.label, "p": p} for p in positions],
            )
            await asyncio.sleep(0.01)  # widen the window another holder could slip into
        finally:
            self.in_flight.difference_update(positions)


async def effects(store: Store, consumer: str | None = None) -> list[int]:
    query = "SELECT pos FROM effects" + (" WHERE consumer = :c" if consumer else "")
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.text(query + " ORDER BY pos"), {"c": consumer})).scalars()
        return [int(p) for p in rows]


async def append_all(log: EventLog, session_ids: list[str], per_session: int) -> None:
    async def one(session_id: str) -> None:
        for _ in range(per_session):
            await log.append(text(session_id, 0))

    await asyncio.gather(*(one(s) for s in session_ids))


async def all_positions(store: Store) -> list[int]:
    return [e.pos for e in await store.feed.read(0, 1000)]


async def until(condition: object, timeout_s: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_two_names_each_see_every_event_woken_by_the_bus(store: Store) -> None:
    """The poll is set to a minute, so only the bus notification can deliver within the test."""
    bus = MemoryBus()
    log = EventLog(store, bus)
    ids = await new_sessions(store, 3)
    await log.append(text(ids[0], 0))  # history before the cursors exist: not theirs
    for name in ("slack", "linear"):
        assert await store.feed.cursor(name) == 1  # a new cursor starts at the end
    slack, linear = Recorder("slack"), Recorder("linear")
    tasks = [
        asyncio.create_task(FeedConsumer(store, bus, name, handler, poll_interval_s=60).run())
        for name, handler in (("slack", slack), ("linear", linear))
    ]
    try:
        await asyncio.sleep(0.2)  # both idle, waiting on the bus
        await append_all(log, ids, 10)
        expected = (await all_positions(store))[1:]
        assert len(expected) == 30

        async def both_done() -> bool:
            return len(await effects(store)) >= 60

        await until(both_done, 10)
    finally:
        await stop(*tasks)
    assert await effects(store, "slack") == expected
    assert await effects(store, "linear") == expected


async def test_a_consumer_cancelled_between_handling_and_commit_resumes_without_loss(
    store: Store,
) -> None:
    """The handler has recorded its effects and is about to return when the task dies: none of
    it commits, the cursor stays, and a new consumer handles that batch again — the database
    effects exactly once, the outside "sends" twice with the same idempotency keys."""
    log = EventLog(store, MemoryBus())
    ids = await new_sessions(store, 2)
    await append_all(log, ids, 15)
    expected = await all_positions(store)
    recorder = Recorder("n")
    reached = asyncio.Event()

    async def stalls(batch: FeedBatch, conn: AsyncConnection) -> None:
        await recorder(batch, conn)
        reached.set()
        await asyncio.Event().wait()  # never returns: the commit never comes

    first = FeedConsumer(store, MemoryBus(), "n", stalls, start="beginning", batch_size=7)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(reached.wait(), WAIT_S)
    await stop(task)
    assert await store.feed.cursor("n") == 0
    assert await effects(store) == []
    assert recorder.sent == [idempotency_key("n", p) for p in expected[:7]]

    again = FeedConsumer(store, MemoryBus(), "n", recorder, batch_size=7)
    while await again.step():
        pass
    assert await effects(store) == expected
    assert await store.feed.cursor("n") == expected[-1]
    assert Counter(recorder.sent) == Counter(
        {idempotency_key("n", p): 2 if p in expected[:7] else 1 for p in expected}
    )


async def test_one_name_in_two_processes_handles_each_event_once(store_url: str) -> None:  # noqa: F811
    """Two stores on the same database (two connection pools, as two replicas have) run the
    consumer "n" while sessions append: every event is handled by exactly one of them, and
    never by both at once."""
    stores = [await Store.open(store_url), await Store.open(store_url, run_migrations=False)]
    one = stores[0]
    try:
        async with one.engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE effects (consumer VARCHAR(40), pos BIGINT)"))
        ids = await new_sessions(one, 4)
        await one.feed.cursor("n", start="beginning")
        in_flight: set[int] = set()
        recorders = [Recorder("a", in_flight), Recorder("b", in_flight)]
        tasks = [
            asyncio.create_task(
                FeedConsumer(s, MemoryBus(), "n", r, batch_size=5, poll_interval_s=0.05).run()
            )
            for s, r in zip(stores, recorders, strict=True)
        ]
        try:
            await append_all(EventLog(one, MemoryBus()), ids, 15)
            expected = await all_positions(one)

            async def caught_up() -> bool:
                return await one.feed.cursor("n") == expected[-1]

            await until(caught_up)
        finally:
            await stop(*tasks)
        assert await effects(one) == expected
        sent = recorders[0].sent + recorders[1].sent
        assert sorted(sent) == sorted(idempotency_key("n", p) for p in expected)
        assert recorders[0].overlaps == recorders[1].overlaps == []
    finally:
        for s in stores:
            await s.close()


async def test_a_consumer_killed_with_sigkill_resumes_with_nothing_lost_or_repeated(
    store: Store,
    store_url: str,  # noqa: F811
) -> None:
    """A real process, killed with SIGKILL while it handles batches; a second process finishes
    the feed. Each event's effect is in the database exactly once."""
    ids = await new_sessions(store, 4)
    await append_all(EventLog(store, MemoryBus()), ids, 50)
    expected = await all_positions(store)
    argv = [sys.executable, "-m", "tests.sessions.feed_worker", store_url, "n"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    worker = subprocess.Popen(argv, cwd=REPO_ROOT, env=env)
    try:

        async def some_committed() -> bool:
            return await store.feed.cursor("n", start="beginning") >= expected[40]

        await until(some_committed)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    cut = await store.feed.cursor("n")
    assert cut < expected[-1], "the worker finished before it was killed"
    assert await effects(store) == [p for p in expected if p <= cut]

    finisher = subprocess.run(argv, cwd=REPO_ROOT, env=env, timeout=WAIT_S, check=False)
    assert finisher.returncode == 0
    assert await effects(store) == expected
    assert await store.feed.cursor("n") == expected[-1]
