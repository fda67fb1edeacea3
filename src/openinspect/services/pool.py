"""The warm pool's refill (``warm_pool``, every server, over its own pool): each pass reads the
repos' pool sizes, drops what is over them and starts making what is missing; a claimed or dead
box wakes it at once (``sessions/pool.py``)."""

from __future__ import annotations

from openinspect.services.registry import ServiceContext
from openinspect.sessions.pool import WarmPool


class WarmPoolService:
    name = "warm_pool"
    one_replica = False
    interval_s = 0.0
    """The pass waits for its cue itself (``WarmPool.wait_for_work``)."""

    def __init__(self, pool: WarmPool, refill_interval_s: float) -> None:
        self._pool = pool
        self._refill_interval_s = refill_interval_s

    async def run_once(self) -> None:
        await self._pool.fill()
        await self._pool.wait_for_work(self._refill_interval_s)


def warm_pool(context: ServiceContext) -> WarmPoolService | None:
    pool = context.manager.deps.pool
    settings = context.settings
    if pool is None or not settings.services.warm_pool_enabled:
        return None
    if settings.sandbox.pool.max_per_repo == 0:
        return None
    return WarmPoolService(pool, settings.sandbox.pool.refill_interval_s)
