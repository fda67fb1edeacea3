"""Both bus backends deliver in order to every subscriber and cut off one that falls behind."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest

from openinspect.bus import Bus, SubscriberOverflow, open_bus
from openinspect.bus import base as bus_base
from openinspect.errors import ConfigError
from tests.conftest import skip_or_fail

REDIS_URL = os.environ.get("OPENINSPECT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        memory = open_bus("memory://")
        yield memory
        await memory.close()
        return
    redis_bus = open_bus(REDIS_URL)
    try:
        await redis_bus.publish("ping", "x")
    except OSError as exc:
        await redis_bus.close()
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield redis_bus
    await redis_bus.close()


async def _take(messages: AsyncIterator[str], n: int) -> list[str]:
    out = []
    async with asyncio.timeout(5):
        async for message in messages:
            out.append(message)
            if len(out) == n:
                return out
    return out


async def test_every_subscriber_gets_every_message_in_order(bus: Bus) -> None:
    channel = f"test:{secrets.token_hex(4)}"
    async with bus.subscribe(channel) as a, bus.subscribe(channel) as b:
        await asyncio.sleep(0.05)  # Redis confirms subscriptions asynchronously
        for i in range(50):
            await bus.publish(channel, str(i))
        expected = [str(i) for i in range(50)]
        assert await _take(a, 50) == expected
        assert await _take(b, 50) == expected


async def test_other_channels_are_not_delivered(bus: Bus) -> None:
    channel = f"test:{secrets.token_hex(4)}"
    async with bus.subscribe(channel) as messages:
        await asyncio.sleep(0.05)
        await bus.publish(channel + "-other", "no")
        await bus.publish(channel, "yes")
        assert await _take(messages, 1) == ["yes"]


async def test_a_slow_subscriber_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_base, "SUBSCRIBER_QUEUE_MAX", 10)
    from openinspect.bus import memory

    monkeypatch.setattr(memory, "SUBSCRIBER_QUEUE_MAX", 10)
    bus = open_bus("memory://")
    async with bus.subscribe("c") as messages:
        for i in range(11):
            await bus.publish("c", str(i))
        with pytest.raises(SubscriberOverflow):
            await _take(messages, 1)


def test_unknown_bus_url_says_what_is_supported() -> None:
    with pytest.raises(ConfigError, match="Unknown bus URL") as info:
        open_bus("kafka://x")
    assert info.value.hint is not None and "redis://" in info.value.hint
