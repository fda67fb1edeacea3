"""The fan-out: one bus subscription per session however many clients, each message encoded
once and shared, a bounded queue per client, and a client that falls behind cut off alone."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.api.ws_fanout import ClientFellBehind, ClientQueue, Fanout
from openinspect.bus import memory as memory_bus
from openinspect.bus.memory import MemoryBus
from openinspect.sessions.eventlog import EventLog, channel
from openinspect.store import Store
from tests.conftest import skip_or_fail


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[MemoryBus, Fanout]]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/oi.db")
    bus = MemoryBus()
    fanout = Fanout(EventLog(store, bus), queue_limit=5)
    try:
        yield bus, fanout
    finally:
        await fanout.close()
        await store.close()


def _event(seq: int, kind: str = "agent-text") -> str:
    return json.dumps({"kind": "event", "event": {"type": kind, "seq": seq, "text": f"t{seq}"}})


def _subscribers(bus: MemoryBus, session_id: str) -> int:
    return len(bus._subscribers.get(channel(session_id), ()))


async def _until(condition: object, timeout_s: float = 5) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0)


async def test_clients_of_a_session_share_one_subscription_and_each_frame(
    setup: tuple[MemoryBus, Fanout],
) -> None:
    bus, fanout = setup
    async with fanout.join("ses_a") as a, fanout.join("ses_a") as b, fanout.join("ses_b") as c:
        assert _subscribers(bus, "ses_a") == 1 and _subscribers(bus, "ses_b") == 1
        for seq in (1, 2, 3):
            await bus.publish(channel("ses_a"), _event(seq))
        await bus.publish(channel("ses_a"), _event(3, "agent-text-delta"))
        await _until(lambda: len(a._frames) == 4)
        got_a, got_b = await a.take(), await b.take()
        assert [seq for seq, _ in got_a] == [1, 2, 3, None]  # in order; ephemeral has no seq
        assert json.loads(got_a[0][1]) == {
            "type": "event",
            "event": {"type": "agent-text", "seq": 1, "text": "t1"},
        }
        # Encoded once: both clients hold the very same string.
        assert all(x[1] is y[1] for x, y in zip(got_a, got_b, strict=True))
        assert not _drain(c)  # another session's messages stay there
    # The last client gone, the session's subscription ends.
    assert _subscribers(bus, "ses_a") == 0 and _subscribers(bus, "ses_b") == 0
    assert len(fanout) == 0


def _drain(queue: ClientQueue) -> list[tuple[int | None, str]]:
    frames = list(queue._frames)
    queue._frames.clear()
    return frames


async def test_a_client_that_falls_behind_is_cut_off_and_the_others_go_on(
    setup: tuple[MemoryBus, Fanout],
) -> None:
    bus, fanout = setup
    async with fanout.join("ses_a") as slow, fanout.join("ses_a") as fast:
        got: list[int | None] = []
        for seq in range(1, 21):
            await bus.publish(channel("ses_a"), _event(seq))
            await _until(lambda: bool(fast._frames) or fast.fell_behind)
            got += [s for s, _ in await fast.take()]
        assert got == list(range(1, 21))
        assert slow.fell_behind  # past 5 waiting frames
        with pytest.raises(ClientFellBehind):
            await slow.take()
        assert not fast.fell_behind


async def test_a_bus_overflow_cuts_off_every_client_and_a_new_join_subscribes_again(
    setup: tuple[MemoryBus, Fanout], monkeypatch: pytest.MonkeyPatch
) -> None:
    bus, fanout = setup
    monkeypatch.setattr(memory_bus, "SUBSCRIBER_QUEUE_MAX", 3)
    async with fanout.join("ses_a") as a, fanout.join("ses_a") as b:
        for seq in range(1, 10):  # published without yielding: the bus queue overflows
            await bus.publish(channel("ses_a"), _event(seq))
        for queue in (a, b):
            with pytest.raises(ClientFellBehind):
                async with asyncio.timeout(5):
                    await queue.take()
        async with fanout.join("ses_a") as again:
            assert _subscribers(bus, "ses_a") == 1
            await bus.publish(channel("ses_a"), _event(10))
            assert [s for s, _ in await asyncio.wait_for(again.take(), 5)] == [10]


@pytest.mark.redis
async def test_on_redis_a_session_takes_one_subscription_however_many_clients(
    tmp_path: Path,
) -> None:
    """With several replicas each holds one Redis subscription per watched session, not one
    connection per client."""
    from redis.asyncio import Redis

    from openinspect.bus import open_bus
    from tests.bus.test_bus import REDIS_URL

    bus = open_bus(REDIS_URL)
    admin = Redis.from_url(REDIS_URL)
    try:
        await admin.ping()
    except OSError as exc:
        await bus.close()
        await admin.aclose()
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/oi.db")
    fanout = Fanout(EventLog(store, bus), queue_limit=5)
    sid = f"ses_{secrets.token_hex(8)}"
    name = f"openinspect:{channel(sid)}"
    try:
        async with fanout.join(sid) as a, fanout.join(sid) as b, fanout.join(sid) as c:
            assert (await admin.pubsub_numsub(name)) == [(name.encode(), 1)]
            await bus.publish(channel(sid), _event(1))
            for queue in (a, b, c):
                assert [s for s, _ in await asyncio.wait_for(queue.take(), 5)] == [1]
        assert (await admin.pubsub_numsub(name)) == [(name.encode(), 0)]
    finally:
        await fanout.close()
        await store.close()
        await bus.close()
        await admin.aclose()
