"""The session engine's side of the egress proxy: whose a tunnel is, what it may reach, the log.

A tunnel carries the sandbox token its box's runtime adds. It must belong to a live sandbox
registered here (the hub), like the git proxy's; the store then says which session the box
serves and that session's registered repo, whose own entries (``openinspect repos egress``)
join the server's ``sandbox.egress.allow``. A warm pool's box that no session claimed yet has
no row: it gets its pool's repo's list (so its ``setup.sh`` installs what a session's would),
with no session to log a refusal in. Nothing the box sends names a session or a repo:
a token can only ever use its own repo's list.

Every attempt is a row in ``egress_requests`` written before the proxy connects (the log is the
truth); a refusal is also a ``warning`` event (``egress_refused``) in the session, once per box
and host, so whoever watches sees what was refused and how to allow it. The event is written
under the session owner's lease when the session is live here, as the git proxy's are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from openinspect.domain.events import WarningEvent
from openinspect.egress.allowlist import AllowEntry, AllowList, BadEntry, parse_entries
from openinspect.egress.proxy import Attempt, EgressGrant, Refused
from openinspect.errors import LeaseLost
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.sessions.eventlog import EventLog
from openinspect.store import Store
from openinspect.store.leases import Lease

log = logging.getLogger(__name__)
REFUSED_CODE = "egress_refused"


class SessionEgressAuthority:
    def __init__(
        self,
        *,
        store: Store,
        events: EventLog,
        hub: BridgeHub,
        allow: list[str],
        lease_of: Callable[[str], Lease | None] = lambda _: None,
        pool_repo_of: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        """``allow``: the server's entries (checked by the settings); ``pool_repo_of``: the
        repo of a warm pool's unclaimed box (``WarmPool.repo_of``), whose list it gets."""
        self._pool_repo_of = pool_repo_of
        self._store = store
        self._events = events
        self._hub = hub
        self._global = parse_entries(allow)
        self._lease_of = lease_of

    async def grant(self, token: str) -> EgressGrant | None:
        if not token:
            return None
        sandbox_id = self._hub.identify(token)
        if sandbox_id is None:
            return None
        scope = await self._store.egress.scope(sandbox_id)
        pool_repo = self._pool_repo_of(sandbox_id) if scope.session_id is None else None
        if pool_repo is not None:  # a pooled box's setup.sh: its repo's list, no session
            scope = await self._store.egress.repo_scope(pool_repo)
        entries: tuple[AllowEntry, ...] = self._global
        if scope.entries:
            try:
                entries = parse_entries([*(str(e) for e in self._global), *scope.entries])
            except BadEntry:  # stored entries were checked; a stricter release may disagree
                log.warning("repo %s has an egress entry this server cannot read", scope.repo_name)
        return EgressGrant(sandbox_id, scope.session_id, AllowList(entries), scope.repo_name)

    async def opened(self, grant: EgressGrant, attempt: Attempt) -> str:
        first_refusal = (
            not attempt.allowed
            and bool(attempt.host)  # a malformed request: logged, not announced
            and not await self._store.egress.refused_before(grant.sandbox_id, attempt.host)
        )
        record_id = await self._store.egress.record(
            session_id=grant.session_id,
            sandbox_id=grant.sandbox_id,
            method=attempt.method,
            host=attempt.host,
            port=attempt.port,
            allowed=attempt.allowed,
            code=attempt.code,
            status=attempt.status,
            message=attempt.message,
        )
        if first_refusal and grant.session_id is not None:
            await self._warn(grant.session_id, attempt)
        return record_id

    async def closed(
        self,
        record_id: str,
        *,
        bytes_up: int,
        bytes_down: int,
        duration_ms: int,
        failure: Refused | None = None,
    ) -> None:
        await self._store.egress.finish(
            record_id,
            bytes_up=bytes_up,
            bytes_down=bytes_down,
            duration_ms=duration_ms,
            outcome=(failure.status, failure.code, failure.message) if failure else None,
        )

    async def _warn(self, session_id: str, attempt: Attempt) -> None:
        event = WarningEvent(
            session_id=session_id,
            code=REFUSED_CODE,
            message=f"The sandbox's {attempt.method} to {attempt.host}:{attempt.port} was "
            f"refused: {attempt.message}",
        )
        try:
            await self._events.append(event, fence=self._lease_of(session_id))
        except LeaseLost:
            log.warning("session %s: an egress refusal was not announced here", session_id)
