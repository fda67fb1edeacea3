"""``linear_inbox``: every ``INBOX_INTERVAL_S``, handle again the Linear deliveries a crash or
a failure left pending (``LinearInbound.recover``); its first pass runs at start-up. One replica
at a time; on only with the Linear agent configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openinspect.services.registry import ServiceContext

if TYPE_CHECKING:
    from openinspect.integrations.linear.inbound import LinearInbound

INBOX_INTERVAL_S = 30.0


class LinearInbox:
    name = "linear_inbox"
    one_replica = True
    interval_s = INBOX_INTERVAL_S

    def __init__(self, inbound: LinearInbound) -> None:
        self._inbound = inbound

    async def run_once(self) -> None:
        await self._inbound.recover()


def linear_inbox(context: ServiceContext) -> LinearInbox | None:
    if context.linear_inbound is None:
        return None
    return LinearInbox(context.linear_inbound)
