"""The loop of a service that works when told: it stops when cancelled, whenever the
cancellation lands — also in the same moment as a wake-up (asyncio.wait_for on 3.11 drops such
a cancellation, and the service then never stopped)."""

from __future__ import annotations

import asyncio

import pytest

from openinspect.bus.memory import MemoryBus
from openinspect.services.wake import run_woken

CHANNEL = "wake-test"


async def _waiting_loop(bus: MemoryBus) -> tuple[asyncio.Task[None], list[int]]:
    passes: list[int] = []

    async def step() -> float | None:
        passes.append(1)
        return None

    task = asyncio.create_task(run_woken(step, bus, [CHANNEL], poll_s=30, name="test"))
    while not passes:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # past the listener's first wake-up and its coalescing pause
    return task, passes


@pytest.mark.parametrize("turns", range(10))
async def test_a_cancellation_as_a_wake_up_lands_stops_the_loop(turns: int) -> None:
    bus = MemoryBus()
    task, _ = await _waiting_loop(bus)
    await bus.publish(CHANNEL, "x")
    for _ in range(turns):  # walk the cancellation across the steps of the wake-up
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done, "run_woken went on after it was cancelled"
    assert task.cancelled()


async def test_a_wake_up_runs_a_pass_and_the_poll_interval_bounds_the_wait() -> None:
    bus = MemoryBus()
    task, passes = await _waiting_loop(bus)
    before = len(passes)
    await bus.publish(CHANNEL, "x")
    for _ in range(100):
        if len(passes) > before:
            break
        await asyncio.sleep(0.01)
    assert len(passes) == before + 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
