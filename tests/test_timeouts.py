"""``openinspect.timeouts.wait_for``: a cancellation that lands as the awaited thing finishes
cancels the caller (3.11's ``asyncio.wait_for`` returns the result instead), and the timeout
still fires."""

from __future__ import annotations

import asyncio

import pytest

from openinspect.timeouts import wait_for


@pytest.mark.parametrize("turns", range(6))
async def test_a_cancellation_as_the_wait_ends_cancels(turns: int) -> None:
    ready = asyncio.Event()
    after: list[str] = []

    async def waiter() -> None:
        await wait_for(ready.wait(), 10)
        after.append("ran on")  # a swallowed cancellation gets here
        await asyncio.sleep(10)

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    ready.set()
    for _ in range(turns):  # walk the cancellation across the steps of the wake-up
        await asyncio.sleep(0)
    cancelling = task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelling
    if turns == 0:  # landed before the wait returned: nothing after it ran
        assert after == []


async def test_the_timeout_fires_and_a_result_comes_back() -> None:
    with pytest.raises(TimeoutError):
        await wait_for(asyncio.sleep(10), 0.05)
    assert await wait_for(asyncio.sleep(0, result="ok"), 1) == "ok"
    assert await wait_for(asyncio.sleep(0, result="no limit"), None) == "no limit"
