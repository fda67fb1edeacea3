"""The presence heartbeat as a service: on every server, over the watchers it holds.

It renews this server's presence rows, prunes everyone's rows that ran out (a server that died)
and announces what changed (``sessions/presence.py``). It is always on: without it, this
server's watchers would vanish from presence after ``sessions.presence_ttl_s``.
"""

from __future__ import annotations

from openinspect.services.registry import ServiceContext
from openinspect.sessions.presence import Presence


class PresenceHeartbeat:
    name = "presence_heartbeat"
    one_replica = False

    def __init__(self, presence: Presence) -> None:
        self._presence = presence
        self.interval_s = presence.refresh_s

    async def run_once(self) -> None:
        await self._presence.heartbeat()


def presence_heartbeat(context: ServiceContext) -> PresenceHeartbeat:
    return PresenceHeartbeat(context.manager.presence)
