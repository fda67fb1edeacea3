"""Spend-limit wake-ups, on every replica (``spend_wake``): a limit changed on any server is
published on the bus (:data:`SPEND_CHANNEL`); each server then has the sessions it paused at a
limit look again at once (``sessions.spend``). Without a bus message (a lost one, the service
off) a paused session still looks again every ``agent.spend_recheck_s``.
"""

from __future__ import annotations

from openinspect.bus import Bus
from openinspect.services.registry import ServiceContext
from openinspect.services.wake import run_woken
from openinspect.sessions.manager import SessionManager
from openinspect.sessions.spend import SPEND_CHANNEL, wake_paused


class SpendWake:
    name = "spend_wake"
    one_replica = False

    def __init__(self, manager: SessionManager, bus: Bus, poll_s: float) -> None:
        self._manager = manager
        self._bus = bus
        self._poll_s = poll_s
        self.interval_s = poll_s

    async def run_once(self) -> None:
        async def step() -> None:
            wake_paused(self._manager.live_actors())

        await run_woken(step, self._bus, [SPEND_CHANNEL], poll_s=self._poll_s, name=self.name)


def spend_wake(context: ServiceContext) -> SpendWake | None:
    if not context.settings.services.spend_wake_enabled or context.bus is None:
        return None
    return SpendWake(context.manager, context.bus, context.settings.agent.spend_recheck_s)
