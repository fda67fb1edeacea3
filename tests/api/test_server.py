"""The server's own shutdown: a slow one names what it still waits for."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from openinspect.api.server import _name_the_waits


async def test_a_slow_shutdown_logs_the_tasks_it_waits_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="openinspect.api.server")

    async def stuck_in_a_box_stop() -> None:
        await asyncio.Event().wait()

    stuck = asyncio.create_task(stuck_in_a_box_stop(), name="session s-1 stop")
    watchdog = asyncio.create_task(_name_the_waits(every_s=0.2))
    try:
        while len(caplog.records) < 2:
            await asyncio.sleep(0.01)
    finally:
        for task in (watchdog, stuck):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    first, second = (r.getMessage() for r in caplog.records[:2])
    assert "session s-1 stop: stuck_in_a_box_stop:" in first
    assert "after 0.2 s" in first and "after 0.4 s" in second  # the time waited grows
    assert "_name_the_waits" not in first  # it does not name itself
