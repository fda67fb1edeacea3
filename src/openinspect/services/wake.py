"""The loop of a service that works when told: run a pass, then wait for a wake-up on any of its
bus channels, a due time the pass returned, or the poll interval, whichever comes first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from openinspect.bus import Bus
from openinspect.timeouts import wait_for

log = logging.getLogger(__name__)
RESUBSCRIBE_S = 5.0
COALESCE_S = 0.05
"""After a wake-up, how long to let a burst of events gather before one pass: every durable
event of every session wakes such a service, and a pass costs a few queries."""


async def run_woken(
    step: Callable[[], Awaitable[float | None]],
    bus: Bus,
    channels: Sequence[str],
    *,
    poll_s: float,
    name: str,
) -> None:
    """Run ``step`` (it returns the seconds until it has work due, or None) until cancelled."""
    wake = asyncio.Event()
    listeners = [asyncio.create_task(_listen(bus, c, wake, name)) for c in channels]
    try:
        while True:
            wake.clear()
            due = await step()
            timeout_s = poll_s if due is None else min(poll_s, max(due, 0.01))
            with contextlib.suppress(TimeoutError):  # openinspect.timeouts: stops when cancelled
                await wait_for(wake.wait(), timeout_s)
                await asyncio.sleep(COALESCE_S)
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)


async def _listen(bus: Bus, channel: str, wake: asyncio.Event, name: str) -> None:
    while True:
        try:
            async with bus.subscribe(channel) as messages:
                wake.set()
                async for _ in messages:
                    wake.set()
        except Exception as exc:  # the poll carries on; subscribe again later
            log.warning("%s lost the bus channel %s (%s)", name, channel, exc)
        await asyncio.sleep(RESUBSCRIBE_S)
