"""The event log's seqs come from the database: writers that share no memory (two replicas, or
two event logs in one process) never take the same number, and a failed append leaves no gap."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import pytest

from openinspect.bus.memory import MemoryBus
from openinspect.domain.events import AgentText, AgentTextDelta
from openinspect.errors import LeaseLost, NotFoundError
from openinspect.sessions.eventlog import EventLog
from openinspect.store import Store
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import session_record
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
