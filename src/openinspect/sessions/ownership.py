"""Which replica owns a live session: the lease ``session:<id>``, taken, renewed and released here.

Every server process is a replica with an id of its own (``replica_id``: host, pid and a random
part, new at each start; it is in the logs and ``/healthz``). A replica owns a session while it
holds the session's lease (``store/leases.py``, TTL ``ownership.lease_ttl_s``): its actor passes
the lease as the fence of every append, so once another replica took the session over, whatever
the old owner still tries to write is refused (``LeaseLost``) and nothing lands.

One task renews every lease this replica holds, every third of the TTL, in one statement
(``OwnerStore.renew``). A lease that is not renewed (taken over after a stall, or renewals failed
for longer than the TTL) is dropped at once and ``on_lost(session_id)`` is called: the manager
stops that actor without writing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from openinspect.services.base import RENEWALS_PER_TTL, default_holder
from openinspect.store import Store
from openinspect.store.leases import Lease
from openinspect.store.owners import lease_name

log = logging.getLogger(__name__)


@dataclass
class _Held:
    lease: Lease
    valid_until: float
    """On this process's monotonic clock: counted from before the request that took or last
    renewed the lease, so the lease surely lasts until then."""


class Ownership:
    """This replica's session leases."""

    def __init__(
        self,
        store: Store,
        *,
        ttl_s: float,
        replica_id: str | None = None,
        on_lost: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``on_lost`` is called with a session id whose lease was lost (the manager drops its
        actor)."""
        self.replica_id = replica_id or default_holder()
        self.ttl_s = ttl_s
        self._store = store
        self._held: dict[str, _Held] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._on_lost = on_lost

    def lease(self, session_id: str) -> Lease | None:
        """The lease this replica holds on the session, if any."""
        held = self._held.get(session_id)
        return held.lease if held is not None else None

    def owned(self) -> list[str]:
        return list(self._held)

    async def take(self, session_id: str) -> Lease | None:
        """Take the session's lease if it is free or expired; None while another holds it."""
        asked = time.monotonic()
        lease = await self._store.leases.acquire(
            lease_name(session_id), self.replica_id, self.ttl_s
        )
        if lease is not None:
            self._held[session_id] = _Held(lease, asked + self.ttl_s)
            log.info("session %s: owned by this replica (fence %d)", session_id, lease.fence)
        return lease

    async def release(self, session_id: str) -> None:
        """Free the session's lease now, so another replica need not wait for its TTL."""
        held = self._held.pop(session_id, None)
        if held is not None:
            with contextlib.suppress(Exception):  # it runs out by itself
                await self._store.leases.release(held.lease)

    def forget(self, session_id: str) -> None:
        """Drop a lease known to be lost (an append under it was refused), without a release."""
        self._held.pop(session_id, None)

    async def owner(self, session_id: str) -> str | None:
        """The replica that owns the session now (this one or another), if any."""
        if session_id in self._held:
            return self.replica_id
        return await self._store.owners.holder(session_id)

    def start(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever(), name="session leases")

    async def stop(self) -> None:
        """Stop renewing and release every lease held (the sessions were closed)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await asyncio.gather(*(self.release(sid) for sid in list(self._held)))

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / RENEWALS_PER_TTL)
            try:
                await self.renew()
            except Exception:  # a bug here must not end the renewals of every session
                log.exception("renewing the session leases failed")

    async def renew(self) -> list[str]:
        """One renewal of every lease held; returns the sessions whose lease was lost (already
        dropped, and ``on_lost`` called for each)."""
        held = dict(self._held)
        if not held:
            return []
        sent = time.monotonic()
        try:
            renewed = await self._store.owners.renew([h.lease for h in held.values()], self.ttl_s)
        except Exception as exc:  # the database is away: each lease lasts until it runs out
            log.warning("renewing %d session leases failed: %r", len(held), exc)
            lost = [sid for sid, h in held.items() if time.monotonic() >= h.valid_until]
        else:
            lost = []
            for sid, h in held.items():
                if h.lease.name in renewed:
                    h.valid_until = sent + self.ttl_s
                else:
                    lost.append(sid)
        for sid in lost:
            if self._held.get(sid) is not held[sid]:
                continue  # released (or taken again) meanwhile
            del self._held[sid]
            log.warning("session %s: this replica lost its lease; it stops here", sid)
            if self._on_lost is not None:
                await self._on_lost(sid)
        return lost
