"""Tidying: idle sandboxes stop, abandoned drafts go.

Every server runs this loop every ``sessions.tidy_interval_s`` over what it holds:

- **Abandoned drafts.** A session still ``created`` (no prompt was ever queued: the web app makes
  one as soon as you start typing, to warm its sandbox) and older than ``sessions.draft_ttl_s`` is
  deleted with its log. The delete is one conditional SQL statement, so servers sweeping at once
  delete each draft once; each server then stops the sandboxes it ran for sessions that are gone.
- **Idle sandboxes.** A sandbox of this server whose session has no queued or running prompt and
  had no work (prompt, typing) for ``sessions.idle_stop_s`` (``sessions.idle_stop_watched_s``
  while someone has the session open, on any server: ``sessions.watched_at``) is stopped with a
  ``sandbox-status`` ``stopped`` event. The workspace and branch stay; the next prompt boots a
  new box on them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from openinspect.domain.events import utcnow
from openinspect.sessions.manager import SessionManager

log = logging.getLogger(__name__)
DRAFT_SWEEP_BATCH = 500
"""Most drafts deleted by one sweep (the rest wait for the next one)."""
WATCH_TOUCH_S = 30.0
"""How often an open WebSocket refreshes ``sessions.watched_at`` (at most)."""
WATCH_FRESH_MIN_S = 120.0
"""A ``watched_at`` younger than this (or three auth rechecks, if longer) means someone watches."""


def watch_fresh_s(ws_auth_recheck_s: float) -> float:
    """How recent ``watched_at`` must be to count: a few of the refreshes that keep it fresh."""
    return max(WATCH_FRESH_MIN_S, 3 * max(ws_auth_recheck_s, WATCH_TOUCH_S))


@dataclass
class TidyReport:
    """What one sweep did."""

    drafts_deleted: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    idle_stopped: list[str] = field(default_factory=list)


class Tidier:
    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager
        self._settings = manager.services.settings.sessions

    async def sweep(self) -> TidyReport:
        """One pass: delete abandoned drafts, drop what this server ran for sessions that are
        gone, stop idle sandboxes. Safe to run on several servers at once."""
        report = TidyReport()
        store = self._manager.services.store
        if self._settings.draft_ttl_s > 0:
            cutoff = utcnow() - timedelta(seconds=self._settings.draft_ttl_s)
            report.drafts_deleted = list(
                await store.sessions.delete_abandoned_drafts(cutoff, DRAFT_SWEEP_BATCH)
            )
        report.discarded = await self._manager.discard_vanished()
        report.idle_stopped = await self._stop_idle()
        if report.drafts_deleted or report.idle_stopped:
            log.info(
                "tidy: %d abandoned drafts deleted, %d idle sandboxes stopped",
                len(report.drafts_deleted),
                len(report.idle_stopped),
            )
        return report

    async def _stop_idle(self) -> list[str]:
        idle_s, watched_s = self._settings.idle_stop_s, self._settings.idle_stop_watched_s
        candidates = [a for a in self._manager.live_actors() if a.is_idle()]
        if not candidates or (idle_s <= 0 and watched_s <= 0):
            return []
        since = utcnow() - timedelta(seconds=watch_fresh_s(self._settings.ws_auth_recheck_s))
        store = self._manager.services.store
        watched = await store.sessions.watched_since([a.session.id for a in candidates], since)
        presence = self._manager.presence
        stopped = []
        for actor in candidates:
            sid = actor.session.id
            limit = watched_s if sid in watched or presence.snapshot(sid) else idle_s
            if limit > 0 and await actor.stop_if_idle(limit):
                stopped.append(sid)
        return stopped

    async def run(self) -> None:
        """Sweep every ``sessions.tidy_interval_s`` until cancelled; a failed sweep is logged
        and the next one tries again."""
        interval = self._settings.tidy_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("tidy sweep failed")
