"""Reading the egress log in tests: byte counts are written after the box got its answer."""

from __future__ import annotations

import asyncio

from openinspect.controlplane import ControlPlane
from openinspect.store.egress import EgressRecord

SETTLE_TIMEOUT_S = 10


async def settled(plane: ControlPlane, session_id: str) -> list[EgressRecord]:
    """The session's records once every allowed one has its byte counts."""
    async with asyncio.timeout(SETTLE_TIMEOUT_S):
        while True:
            records = await plane.store.egress.of_session(session_id)
            if all(r.duration_ms is not None for r in records if r.allowed):
                return records
            await asyncio.sleep(0.02)
