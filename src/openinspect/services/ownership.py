"""Session ownership as services, on every replica:

- **Failover** (``failover``, every ``ownership.failover_interval_s``). Takes over the sessions
  with work (a running or queued prompt, a sandbox up, status active) whose lease ran out: their
  owner died. Each is recovered as ``SessionManager.owned_actor`` does (its running prompt
  ``interrupted``, its sandbox ``lost``) and its queue runs on here. All replicas race for each
  such lease and one wins, so with a TTL of 10 s and a pass every 2 s a dead owner's sessions
  are owned again within about 12 s.
- **Eviction** (``evict``, every fifth of ``ownership.evict_idle_s``, at least each second).
  Closes the actors that had no work for ``ownership.evict_idle_s`` seconds and have nothing
  queued or running and no sandbox up, and frees their leases: memory follows the active
  sessions, and the next command loads the session again on whichever replica it reaches.
"""

from __future__ import annotations

from openinspect.services.registry import ServiceContext
from openinspect.sessions.manager import SessionManager

EVICT_CHECKS_PER_IDLE = 5
EVICT_INTERVAL_MIN_S = 1.0


class Failover:
    name = "failover"
    one_replica = False

    def __init__(self, manager: SessionManager, interval_s: float) -> None:
        self._manager = manager
        self.interval_s = interval_s

    async def run_once(self) -> None:
        await self._manager.adopt_orphans()


class Evict:
    name = "evict"
    one_replica = False

    def __init__(self, manager: SessionManager, idle_s: float) -> None:
        self._manager = manager
        self._idle_s = idle_s
        self.interval_s = max(EVICT_INTERVAL_MIN_S, idle_s / EVICT_CHECKS_PER_IDLE)

    async def run_once(self) -> None:
        await self._manager.evict_idle(self._idle_s)


def failover(context: ServiceContext) -> Failover | None:
    if not context.settings.services.failover_enabled:
        return None
    return Failover(context.manager, context.settings.ownership.failover_interval_s)


def evict(context: ServiceContext) -> Evict | None:
    idle_s = context.settings.ownership.evict_idle_s
    if not context.settings.services.evict_enabled or idle_s <= 0:
        return None
    return Evict(context.manager, idle_s)
