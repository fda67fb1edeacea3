"""Who is watching a session, across every replica: one entry per user, merged from the rows of
their connected clients in the store (``store/presence.py``).

Each replica records the clients whose sockets it holds (``join`` / ``leave``) and renews their
rows on a heartbeat (``heartbeat``, every third of ``sessions.presence_ttl_s``, run by the
``presence_heartbeat`` service). A replica that dies stops renewing, so its watchers run out
within the TTL and the next heartbeat anywhere prunes them and announces the change. Every
change is written first, then the merged snapshot — read back from the store, so it includes
the watchers of every replica — is published on the session's bus channel.

Snapshots from two replicas can cross on the bus (each read before the other's write). To heal
that, the heartbeat publishes a session's snapshot again whenever it differs from the last one
this replica published, so every watcher converges within one heartbeat.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import Any

from openinspect.errors import WatcherLimitReached
from openinspect.sessions.eventlog import EventLog
from openinspect.settings import SessionSettings
from openinspect.store.leases import HOLDER_MAX
from openinspect.store.presence import PresenceStatus, PresenceStore, Watcher

log = logging.getLogger(__name__)
RENEWALS_PER_TTL = 3
"""Rows are renewed this many times per TTL, so one slow heartbeat loses nobody."""
Participants = list[dict[str, Any]]


def merge(watchers: list[Watcher]) -> Participants:
    """One entry per user: active if any of their clients is active; sorted by name."""
    users: dict[str, dict[str, Any]] = {}
    for watcher in watchers:
        entry = users.setdefault(
            watcher.user_id,
            {"user_id": watcher.user_id, "name": watcher.name, "status": "idle", "clients": 0},
        )
        entry["clients"] += 1
        if watcher.status == "active":
            entry["status"] = "active"
    return sorted(users.values(), key=lambda e: (e["name"], e["user_id"]))


def replica_name() -> str:
    """This process's name in the presence rows it holds (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:HOLDER_MAX]


class Presence:
    """This replica's side of presence: the clients it holds, written through to the store."""

    def __init__(
        self,
        store: PresenceStore,
        events: EventLog,
        settings: SessionSettings,
        *,
        holder: str | None = None,
    ) -> None:
        self.holder = holder or replica_name()
        self._store = store
        self._events = events
        self._ttl_s = settings.presence_ttl_s
        self._max_per_session = settings.max_watchers_per_session
        self._max_per_user = settings.max_watchers_per_user
        self._here: dict[tuple[str, str], Watcher] = {}
        self._published: dict[str, Participants] = {}

    @property
    def refresh_s(self) -> float:
        """How often ``heartbeat`` should run."""
        return self._ttl_s / RENEWALS_PER_TTL

    async def join(self, session_id: str, client_id: str, user_id: str, name: str) -> None:
        """Record a client this replica holds (active) and announce it. Raises
        :class:`WatcherLimitReached` when the session or the user has as many clients as the
        settings allow."""
        watcher = Watcher(session_id, client_id, user_id, name)
        crowded = await self._store.join(
            watcher,
            self.holder,
            self._ttl_s,
            max_per_session=self._max_per_session,
            max_per_user=self._max_per_user,
        )
        if crowded is not None:
            opened = f"{crowded.limit} connections open already"
            raise WatcherLimitReached(
                f"This session has {opened}, the most a session may have"
                if crowded.scope == "session"
                else f"You have {opened}, the most one person may have",
                hint="Close a tab or a watching CLI, then reconnect",
            )
        self._here[(session_id, client_id)] = watcher
        await self.publish(session_id)

    async def update(
        self, session_id: str, client_id: str, user_id: str, status: PresenceStatus
    ) -> bool:
        """Set the status of one of ``user_id``'s clients of ``session_id`` (held by any
        replica) and announce it; False, with nothing changed or sent, for a client that is not
        theirs or not of that session."""
        if not await self._store.set_status(session_id, client_id, user_id, status):
            return False
        held = self._here.get((session_id, client_id))
        if held is not None:
            self._here[(session_id, client_id)] = Watcher(
                session_id, client_id, held.user_id, held.name, status
            )
        await self.publish(session_id)
        return True

    async def leave(self, session_id: str, client_id: str) -> None:
        """Forget a client whose socket closed and announce it, if it was recorded (safe to
        call for a client whose ``join`` failed or was refused; its row runs out by itself if
        the store cannot be reached now)."""
        held = self._here.pop((session_id, client_id), None) is not None
        if not self.watching_here(session_id):
            self._published.pop(session_id, None)
        if await self._store.leave(session_id, client_id, self.holder) or held:
            await self.publish(session_id)

    def watching_here(self, session_id: str) -> bool:
        """Whether a client of ``session_id`` is connected to this replica."""
        return any(sid == session_id for sid, _ in self._here)

    async def snapshot(self, session_id: str) -> Participants:
        """Who watches ``session_id`` through any replica, one entry per user."""
        return merge(await self._store.watchers(session_id))

    async def watched(self, session_ids: list[str]) -> set[str]:
        """Which of ``session_ids`` someone watches through any replica."""
        return await self._store.watched(session_ids)

    async def publish(self, session_id: str) -> Participants:
        """Publish the session's snapshot as the store has it now."""
        participants = await self.snapshot(session_id)
        await self._events.publish_presence(session_id, participants)
        if self.watching_here(session_id):
            self._published[session_id] = participants
        return participants

    async def heartbeat(self) -> None:
        """Renew the rows of the clients held here, prune the rows that ran out (anyone's) and
        announce the sessions that changed: those that lost a watcher, and those held here
        whose snapshot differs from the one last published from here."""
        await self._store.renew(self.holder, list(self._here.values()), self._ttl_s)
        pruned = await self._store.prune()
        if pruned:
            log.info("presence: watchers that ran out removed from %d sessions", len(pruned))
        held = {sid for sid, _ in self._here}
        for session_id in sorted(held | set(pruned)):
            participants = await self.snapshot(session_id)
            if session_id in held and self._published.get(session_id) == participants:
                continue
            await self._events.publish_presence(session_id, participants)
            if session_id in held:
                self._published[session_id] = participants
