"""The event log's seqs come from the database: writers that share no memory (two replicas, or
two event logs in one process) never take the same number, and a failed append leaves no gap.
Group commit: concurrent appends share transactions, each event is stored before it is
published, in order per session; a change that fails is neither stored nor published."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from openinspect.bus.memory import MemoryBus
from openinspect.domain.events import AgentText, AgentTextDelta, PromptCancelled, PromptQueued
from openinspect.domain.models import Author
from openinspect.errors import LeaseLost, NotFoundError, StoreError
from openinspect.sessions.eventlog import EventLog
from openinspect.store import Store
from openinspect.store.changes import Change, NewPrompt, PromptMove
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import prompt_record, session_record
from tests.store.test_changes import inject_failure
from tests.store.test_leases import expire_lease

PER_WRITER = 30


def text(session_id: str, n: int) -> AgentText:
    return AgentText(session_id=session_id, seq=0, part_id="p", text=f"{n}")


async def test_two_writers_of_one_session_take_distinct_gap_free_seqs(store_url: str) -> None:  # noqa: F811
    stores = [await Store.open(store_url), await Store.open(store_url, run_migrations=False)]
    try:
        user = await stores[0].users.create(name="Ada", email="ada@e", role="admin")
        session = session_record(f"ses_{secrets.token_hex(8)}", user.id)
        await stores[0].sessions.create(session)
        logs = [EventLog(store, MemoryBus()) for store in stores]

        async def write(log: EventLog, base: int) -> list[int]:
            return [(await log.append(text(session.id, base + n))).seq for n in range(PER_WRITER)]

        seqs = await asyncio.gather(write(logs[0], 0), write(logs[1], 1000))
        taken = sorted(seqs[0] + seqs[1])
        assert taken == list(range(1, 2 * PER_WRITER + 1))  # no duplicate, no gap
        stored = await stores[0].events.after(session.id, 0, 1000)
        assert [e.seq for e in stored] == taken
        assert (await stores[0].sessions.get(session.id)).last_seq == 2 * PER_WRITER  # type: ignore[union-attr]
        with pytest.raises(NotFoundError):
            await logs[0].append(text("ses_missing", 0))
        assert (await logs[1].append(text(session.id, 9))).seq == 2 * PER_WRITER + 1
    finally:
        for store in stores:
            await store.close()


async def test_after_a_forced_lease_loss_the_old_owner_appends_nothing(store_url: str) -> None:  # noqa: F811
    """Two replicas (two stores, two buses): A owns the session, its lease is taken over by B;
    A's next append is refused and never published, and B's seqs carry on without a gap."""
    stores = [await Store.open(store_url), await Store.open(store_url, run_migrations=False)]
    try:
        user = await stores[0].users.create(name="Ada", email="ada@e", role="admin")
        session = session_record(f"ses_{secrets.token_hex(8)}", user.id)
        await stores[0].sessions.create(session)
        bus_a = MemoryBus()
        log_a, log_b = EventLog(stores[0], bus_a), EventLog(stores[1], MemoryBus())
        name = f"session:{session.id}"
        lease_a = await stores[0].leases.acquire(name, "replica-a", 5.0)
        assert lease_a is not None
        assert (await log_a.append(text(session.id, 1), fence=lease_a)).seq == 1

        await expire_lease(stores[0], name)
        lease_b = await stores[1].leases.acquire(name, "replica-b", 5.0)
        assert lease_b is not None
        async with log_a.subscribe(session.id) as messages:
            with pytest.raises(LeaseLost):
                await log_a.append(text(session.id, 2), fence=lease_a)
            await log_a.publish(text(session.id, 3))  # ephemeral: the last stored seq
            envelope = json.loads(await anext(messages))
        assert envelope["event"]["seq"] == 1 and envelope["event"]["text"] == "3"

        seqs = [(await log_b.append(text(session.id, n), fence=lease_b)).seq for n in (4, 5)]
        assert seqs == [2, 3]
        stored = await stores[1].events.after(session.id, 0, 10)
        assert [e.seq for e in stored] == [1, 2, 3]
        assert [e.text for e in stored if isinstance(e, AgentText)] == ["1", "4", "5"]
    finally:
        for store in stores:
            await store.close()


async def _one_session(store: Store) -> str:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    session = session_record(f"ses_{secrets.token_hex(8)}", user.id)
    await store.sessions.create(session)
    return session.id


async def test_each_event_is_in_the_store_before_anyone_hears_of_it(store_url: str) -> None:  # noqa: F811
    """Persist, then publish: a subscriber that reads the store the moment a message arrives
    finds the event there, also while many appends run at once."""
    store = await Store.open(store_url)
    try:
        session_id = await _one_session(store)
        log = EventLog(store, MemoryBus())
        missing: list[int] = []
        heard: list[int] = []

        async def listen(messages: AsyncIterator[str]) -> None:
            async for raw in messages:
                seq = json.loads(raw)["event"]["seq"]
                heard.append(seq)
                if [e.seq for e in await store.events.after(session_id, seq - 1, 1)] != [seq]:
                    missing.append(seq)
                if len(heard) == PER_WRITER:
                    return

        async with log.subscribe(session_id) as messages:
            listener = asyncio.create_task(listen(messages))
            await asyncio.gather(*(log.append(text(session_id, n)) for n in range(PER_WRITER)))
            await asyncio.wait_for(listener, 10)
        assert missing == []
        # One process publishes in the order the database numbered the events, gap-free.
        assert heard == list(range(1, PER_WRITER + 1))
    finally:
        await store.close()


async def test_an_ephemeral_event_carries_the_last_stored_seq_and_is_not_stored(
    store_url: str,  # noqa: F811
) -> None:
    store = await Store.open(store_url)
    try:
        session_id = await _one_session(store)
        for n in range(3):
            await EventLog(store, MemoryBus()).append(text(session_id, n))
        # A fresh event log (another process, or after a restart) reads the last seq stored.
        bus = MemoryBus()
        log = EventLog(store, bus)
        delta = AgentTextDelta(session_id=session_id, part_id="p", delta="x")
        async with log.subscribe(session_id) as messages:
            assert (await log.append(delta)).seq == 0  # returned as given: nothing was stored
            first = json.loads(await asyncio.wait_for(anext(messages), 5))
            await log.append(text(session_id, 3))
            await log.append(delta)
            json.loads(await asyncio.wait_for(anext(messages), 5))  # the durable one
            second = json.loads(await asyncio.wait_for(anext(messages), 5))
        assert (first["event"]["type"], first["event"]["seq"]) == ("agent-text-delta", 3)
        assert second["event"]["seq"] == 4
        assert [e.seq for e in await store.events.after(session_id, 0, 100)] == [1, 2, 3, 4]
        with pytest.raises(ValueError, match="ephemeral"):
            await log.append(delta, session_values={"title": "no"})
    finally:
        await store.close()


class StoreCheckingBus(MemoryBus):
    """The real in-process bus, and at each publish a look in the store: a published event
    must already be committed there (persist before publish), seen from another connection."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.published: list[tuple[str, int]] = []

    async def publish(self, channel: str, message: str) -> None:
        if channel.startswith("session:"):
            event = json.loads(message)["event"]
            stored = await self.store.events.between(
                event["session_id"], event["seq"], event["seq"]
            )
            assert [e.seq for e in stored] == [event["seq"]], "published before it was stored"
            self.published.append((event["session_id"], event["seq"]))
        await super().publish(channel, message)


SESSIONS = 12


async def test_group_commit_batches_sessions_and_keeps_order_and_persist_before_publish(
    store_url: str,  # noqa: F811
) -> None:
    store = await Store.open(store_url)
    try:
        user = await store.users.create(name="Ada", email="ada@e", role="admin")
        ids = [f"ses_{secrets.token_hex(8)}" for _ in range(SESSIONS)]
        for session_id in ids:
            await store.sessions.create(session_record(session_id, user.id))
        commits: list[object] = []
        sa.event.listen(store.engine.sync_engine, "commit", commits.append)
        bus = StoreCheckingBus(store)
        log = EventLog(store, bus)
        feed_wakeups: list[str] = []

        async def write(session_id: str) -> list[int]:
            return [(await log.append(text(session_id, n))).seq for n in range(PER_WRITER)]

        async with bus.subscribe("feed") as wakeups:

            async def listen() -> None:
                async for pos in wakeups:
                    feed_wakeups.append(pos)

            listener = asyncio.create_task(listen())
            results = await asyncio.gather(*(write(s) for s in ids))
            head = await store.feed.head()
            async with asyncio.timeout(5):  # the last flush's wake-up carries the head
                while not feed_wakeups or int(feed_wakeups[-1]) != head:
                    await asyncio.sleep(0.01)
            listener.cancel()
        total = SESSIONS * PER_WRITER
        assert all(r == list(range(1, PER_WRITER + 1)) for r in results)
        assert len(bus.published) == total
        for session_id in ids:  # each session's events published in seq order
            assert [seq for sid, seq in bus.published if sid == session_id] == results[0]
        # Concurrent writers share transactions: far fewer commits than events.
        assert len(commits) <= total // 4, len(commits)
        assert len(feed_wakeups) == len(commits)  # one wake-up per flush, not per event
    finally:
        await store.close()


async def test_a_failed_change_is_neither_stored_nor_published(store_url: str) -> None:  # noqa: F811
    store = await Store.open(store_url)
    try:
        user = await store.users.create(name="Ada", email="ada@e", role="admin")
        session = session_record(f"ses_{secrets.token_hex(8)}", user.id)
        await store.sessions.create(session)
        prompt = prompt_record(session.id, Author.of(user))
        bus = StoreCheckingBus(store)
        log = EventLog(store, bus)
        await inject_failure(store, "events", "NEW.type = 'prompt-queued'")
        queued = Change(
            PromptQueued(
                session_id=session.id,
                prompt_id=prompt.id,
                author=prompt.author,
                content=prompt.content,
                model="scripted:x",
                effort=None,
                position=0,
            ),
            prompt=NewPrompt(prompt, "f"),
        )
        with pytest.raises(StoreError):
            await log.commit(queued)
        assert await store.prompts.get(prompt.id) is None  # no prompt without its event
        cancel = Change(
            PromptCancelled(session_id=session.id, prompt_id=prompt.id),
            prompt=PromptMove(prompt.id, "cancelled", only_if=("queued",)),
        )
        assert await log.commit(cancel) is None  # refused by its guard: nothing written
        assert bus.published == []
        assert await store.events.after(session.id, 0, 10) == []
        assert (await log.append(text(session.id, 1))).seq == 1  # the log carries on
        assert bus.published == [(session.id, 1)]
    finally:
        await store.close()
