"""Presence shared by replicas, on SQLite and on the real Postgres: two ``Presence`` objects on one
store play two servers. Each sees the other's watchers, a status set through either is seen by
both, the watchers of a server that stops renewing run out by the database's clock and are
announced gone, and the caps on clients per session and per person hold across servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from openinspect.bus import open_bus
from openinspect.domain.events import utcnow
from openinspect.domain.models import User
from openinspect.errors import WatcherLimitReached
from openinspect.sessions.eventlog import EventLog
from openinspect.sessions.presence import Presence, merge
from openinspect.settings import SessionSettings
from openinspect.store import Store
from openinspect.store.leases import db_now_ms
from openinspect.store.presence import Watcher
from openinspect.store.tables import presence as presence_rows
from tests.store.databases import pg_url, store_url
from tests.store.records import session_record

__all__ = ["pg_url", "store_url"]
SID = "ses_0123456789abcdef"
TTL_S = 1.0


@dataclass
class Two:
    store: Store
    events: EventLog
    a: Presence
    b: Presence
    ada: User
    bob: User

    def replica(self, holder: str, **limits: Any) -> Presence:
        settings = SessionSettings(presence_ttl_s=TTL_S, **limits)
        return Presence(self.store.presence, self.events, settings, holder=holder)


@pytest.fixture
async def two(store_url: str) -> AsyncIterator[Two]:
    async with AsyncExitStack() as stack:
        store = await Store.open(store_url)
        stack.push_async_callback(store.close)
        bus = open_bus("memory://")
        stack.push_async_callback(bus.close)
        events = EventLog(store, bus)
        ada = await store.users.create(name="Ada", email="ada@example.com", role="admin")
        bob = await store.users.create(name="Bob", email="bob@example.com", role="member")
        await store.sessions.create(session_record(SID, ada.id))
        settings = SessionSettings(presence_ttl_s=TTL_S)
        a = Presence(store.presence, events, settings, holder="server-a")
        b = Presence(store.presence, events, settings, holder="server-b")
        yield Two(store, events, a, b, ada, bob)


@asynccontextmanager
async def _announcements(events: EventLog) -> AsyncIterator[list[list[dict[str, Any]]]]:
    """Every presence snapshot announced on the session's channel while the block runs."""
    announced: list[list[dict[str, Any]]] = []
    async with events.subscribe(SID) as messages:

        async def collect() -> None:
            while True:
                announced.append(await _next_presence(messages))

        collector = asyncio.create_task(collect())
        try:
            yield announced
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)


async def _next_presence(messages: AsyncIterator[str]) -> list[dict[str, Any]]:
    async with asyncio.timeout(5):
        async for raw in messages:
            message = json.loads(raw)
            if message["kind"] == "presence":
                participants: list[dict[str, Any]] = message["participants"]
                return participants
    raise AssertionError("the channel ended")


def test_the_snapshot_is_one_entry_per_user_active_if_any_client_is() -> None:
    watchers = [
        Watcher(SID, "c1", "usr_b", "Bob", "idle"),
        Watcher(SID, "c2", "usr_a", "Ada", "idle"),
        Watcher(SID, "c3", "usr_b", "Bob", "active"),
    ]
    assert merge(watchers) == [
        {"user_id": "usr_a", "name": "Ada", "status": "idle", "clients": 1},
        {"user_id": "usr_b", "name": "Bob", "status": "active", "clients": 2},
    ]
    assert merge([]) == []


async def test_each_server_sees_the_watchers_of_the_other(two: Two) -> None:
    async with two.events.subscribe(SID) as messages:
        await two.a.join(SID, "a1", two.ada.id, two.ada.name)
        assert await _next_presence(messages) == [
            {"user_id": two.ada.id, "name": "Ada", "status": "active", "clients": 1}
        ]
        await two.b.join(SID, "b1", two.bob.id, two.bob.name)
        await two.b.join(SID, "b2", two.ada.id, two.ada.name)
        await _next_presence(messages)
        announced = await _next_presence(messages)  # read back from the store: both servers
    assert announced == await two.a.snapshot(SID) == await two.b.snapshot(SID)
    assert announced == [
        {"user_id": two.ada.id, "name": "Ada", "status": "active", "clients": 2},
        {"user_id": two.bob.id, "name": "Bob", "status": "active", "clients": 1},
    ]
    assert two.a.watching_here(SID) and not two.a.watching_here("ses_other")
    assert await two.a.watched([SID, "ses_other"]) == {SID}


async def test_a_status_set_through_any_server_is_seen_by_all(two: Two) -> None:
    await two.a.join(SID, "a1", two.bob.id, two.bob.name)
    # The command may be handled by a server other than the one holding the socket.
    assert await two.b.update(SID, "a1", two.bob.id, "idle")
    assert (await two.a.snapshot(SID))[0]["status"] == "idle"
    assert await two.a.update(SID, "a1", two.bob.id, "active")
    assert (await two.b.snapshot(SID))[0]["status"] == "active"


async def test_a_status_is_only_set_by_the_clients_owner_for_its_session(two: Two) -> None:
    await two.a.join(SID, "a1", two.bob.id, two.bob.name)
    async with _announcements(two.events) as announced:
        assert not await two.a.update(SID, "a1", two.ada.id, "idle")  # not Ada's client
        assert not await two.a.update("ses_other", "a1", two.bob.id, "idle")  # not its session
        assert not await two.b.update(SID, "nobody", two.bob.id, "idle")
        await asyncio.sleep(0.2)
        assert announced == []  # nothing changed, nothing was announced
        assert await two.a.update(SID, "a1", two.bob.id, "idle")
        async with asyncio.timeout(5):
            while not announced:
                await asyncio.sleep(0.01)
    assert announced[0][0]["status"] == "idle"
    assert (await two.b.snapshot(SID))[0]["status"] == "idle"


async def test_a_server_removes_only_the_clients_it_holds(two: Two) -> None:
    await two.a.join(SID, "a1", two.ada.id, two.ada.name)
    await two.b.join(SID, "b1", two.bob.id, two.bob.name)
    await two.b.leave(SID, "a1")  # not B's: nothing happens
    assert {p["user_id"] for p in await two.a.snapshot(SID)} == {two.ada.id, two.bob.id}
    await two.a.leave(SID, "a1")
    assert [p["user_id"] for p in await two.b.snapshot(SID)] == [two.bob.id]
    assert not two.a.watching_here(SID)


async def test_the_watchers_of_a_server_that_stopped_run_out_and_are_announced(two: Two) -> None:
    await two.a.join(SID, "a1", two.ada.id, two.ada.name)  # A then dies: no more heartbeats
    await two.b.join(SID, "b1", two.bob.id, two.bob.name)
    async with two.events.subscribe(SID) as messages:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TTL_S * 3
        while loop.time() < deadline:
            await two.b.heartbeat()  # B lives on and renews its own
            await asyncio.sleep(two.b.refresh_s)
        announced = None
        while True:  # the last announcement is the one that counts
            try:
                async with asyncio.timeout(0.2):
                    announced = await _next_presence(messages)
            except TimeoutError:
                break
    expected = [{"user_id": two.bob.id, "name": "Bob", "status": "active", "clients": 1}]
    assert announced == expected
    assert await two.a.snapshot(SID) == expected
    async with two.store.engine.connect() as conn:  # pruned, not only hidden
        holders = (await conn.execute(sa.select(presence_rows.c.holder))).scalars().all()
    assert holders == ["server-b"]


async def test_a_server_that_stalled_past_the_ttl_writes_its_watchers_again(two: Two) -> None:
    await two.a.join(SID, "a1", two.ada.id, two.ada.name)
    await two.a.update(SID, "a1", two.ada.id, "idle")
    async with two.store.engine.begin() as conn:
        await conn.execute(presence_rows.update().values(expires_at_ms=db_now_ms() - 1))
    assert await two.b.snapshot(SID) == []  # ran out: judged by the database's clock
    await two.b.heartbeat()  # B prunes it
    await two.a.heartbeat()  # A wakes up: its socket is still open, so its row comes back
    assert await two.b.snapshot(SID) == [
        {"user_id": two.ada.id, "name": "Ada", "status": "idle", "clients": 1}
    ]


async def test_the_caps_on_clients_hold_across_servers(two: Two) -> None:
    a = two.replica("server-a", max_watchers_per_session=3, max_watchers_per_user=2)
    b = two.replica("server-b", max_watchers_per_session=3, max_watchers_per_user=2)
    await a.join(SID, "a1", two.bob.id, two.bob.name)
    await b.join(SID, "b1", two.bob.id, two.bob.name)
    with pytest.raises(WatcherLimitReached, match="one person may have"):
        await a.join(SID, "a2", two.bob.id, two.bob.name)
    await a.join(SID, "a3", two.ada.id, two.ada.name)
    with pytest.raises(WatcherLimitReached, match="a session may have"):
        await b.join(SID, "b2", two.ada.id, two.ada.name)
    counts = [(p["name"], p["clients"]) for p in await a.snapshot(SID)]
    assert counts == [("Ada", 1), ("Bob", 2)]
    await a.leave(SID, "a2")  # the socket of a refused join closes: nothing of Bob's goes
    await b.leave(SID, "b2")
    assert [(p["name"], p["clients"]) for p in await b.snapshot(SID)] == counts
    await b.leave(SID, "b1")  # room again
    await b.join(SID, "b2", two.ada.id, two.ada.name)
    async with two.store.engine.begin() as conn:  # rows that ran out count for nothing
        await conn.execute(presence_rows.update().values(expires_at_ms=db_now_ms() - 1))
    for client in ("x1", "x2"):
        await a.join(SID, client, two.bob.id, two.bob.name)


async def test_a_long_name_is_cut_and_a_deleted_session_takes_its_watchers(two: Two) -> None:
    await two.a.join(SID, "a1", two.ada.id, "A" * 5000)
    assert (await two.a.snapshot(SID))[0]["name"] == "A" * 200
    deleted = await two.store.sessions.delete_abandoned_drafts(utcnow() + timedelta(hours=1), 5)
    assert deleted == [SID]
    assert await two.a.snapshot(SID) == []
    await two.a.heartbeat()  # the client is still held here: its row is not written again
    async with two.store.engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(presence_rows))
        ).scalar_one() == 0


async def test_a_heartbeat_publishes_again_a_snapshot_that_went_stale(two: Two) -> None:
    """A's snapshot was read before B's write landed, and B's own snapshot (the right one) was
    overtaken on the bus: clients hold A's stale one. A's next heartbeat sees the store differ
    from what it last published and publishes again; a heartbeat with nothing new is silent."""
    await two.a.join(SID, "a1", two.ada.id, two.ada.name)  # A published [Ada]
    await two.store.presence.join(  # B's write, its announcement lost
        Watcher(SID, "b1", two.bob.id, two.bob.name),
        "server-b",
        30.0,  # lives through the test however slow the machine
        max_per_session=10,
        max_per_user=10,
    )
    async with _announcements(two.events) as announced:
        await two.a.heartbeat()
        await two.a.heartbeat()  # the same again: nothing to say
        await asyncio.sleep(0.2)
    assert [[p["name"] for p in snapshot] for snapshot in announced] == [["Ada", "Bob"]]
