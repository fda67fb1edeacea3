"""Tidying: idle sandboxes stop, abandoned drafts go. Two services, every
``sessions.tidy_interval_s``:

- **The draft sweep** (``draft_sweep``, one server at a time). A session still ``created`` (no
  prompt was ever queued: the web app makes one as soon as you start typing, to warm its
  sandbox) and older than ``sessions.draft_ttl_s`` is deleted with its log. The delete is one
  conditional SQL statement, so even servers sweeping at once would delete each draft once.
- **The idle-sandbox reaper** (``idle_reaper``, every server, over the sandboxes it runs). It
  stops the sandboxes this server ran for sessions that are gone (deleted by any server's
  sweep), and a sandbox whose session has no queued or running prompt and had no work (prompt,
  typing) for ``sessions.idle_stop_s`` (``sessions.idle_stop_watched_s`` while someone has the
  session open, on any server: ``sessions.watched_at``), with a ``sandbox-status`` ``stopped``
  event. The workspace and branch stay; the next prompt boots a new box on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from openinspect.domain.events import utcnow
from openinspect.services.registry import ServiceContext
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
        self._settings = manager.deps.settings.sessions

    async def sweep(self) -> TidyReport:
        """Both passes: the draft sweep, then the idle reaper. Safe to run on several servers
        at once."""
        report = await self.sweep_drafts()
        reaped = await self.reap()
        report.discarded = sorted({*report.discarded, *reaped.discarded})
        report.idle_stopped = reaped.idle_stopped
        return report

    async def sweep_drafts(self) -> TidyReport:
        """Delete abandoned drafts, and drop what this server ran for them at once."""
        report = TidyReport()
        if self._settings.draft_ttl_s > 0:
            cutoff = utcnow() - timedelta(seconds=self._settings.draft_ttl_s)
            store = self._manager.deps.store
            report.drafts_deleted = list(
                await store.sessions.delete_abandoned_drafts(cutoff, DRAFT_SWEEP_BATCH)
            )
        if report.drafts_deleted:
            report.discarded = await self._manager.discard_vanished()
            log.info("tidy: %d abandoned drafts deleted", len(report.drafts_deleted))
        return report

    async def reap(self) -> TidyReport:
        """Drop what this server ran for sessions that are gone, stop idle sandboxes."""
        report = TidyReport()
        report.discarded = await self._manager.discard_vanished()
        report.idle_stopped = await self._stop_idle()
        if report.idle_stopped:
            log.info("tidy: %d idle sandboxes stopped", len(report.idle_stopped))
        return report

    async def _stop_idle(self) -> list[str]:
        idle_s, watched_s = self._settings.idle_stop_s, self._settings.idle_stop_watched_s
        candidates = [a for a in self._manager.live_actors() if a.is_idle()]
        if not candidates or (idle_s <= 0 and watched_s <= 0):
            return []
        since = utcnow() - timedelta(seconds=watch_fresh_s(self._settings.ws_auth_recheck_s))
        store = self._manager.deps.store
        ids = [a.session.id for a in candidates]
        watched = await store.sessions.watched_since(ids, since)
        watched |= await self._manager.presence.watched(ids)
        stopped = []
        for actor in candidates:
            sid = actor.session.id
            limit = watched_s if sid in watched else idle_s
            if limit > 0 and await actor.stop_if_idle(limit):
                stopped.append(sid)
        return stopped


class DraftSweep:
    """The draft sweep as a service: one server at a time."""

    name = "draft_sweep"
    one_replica = True

    def __init__(self, tidier: Tidier, interval_s: float) -> None:
        self._tidier = tidier
        self.interval_s = interval_s

    async def run_once(self) -> None:
        await self._tidier.sweep_drafts()


class IdleReaper:
    """The idle-sandbox reaper as a service: every server, over the sandboxes it runs."""

    name = "idle_reaper"
    one_replica = False

    def __init__(self, tidier: Tidier, interval_s: float) -> None:
        self._tidier = tidier
        self.interval_s = interval_s

    async def run_once(self) -> None:
        await self._tidier.reap()


def draft_sweep(context: ServiceContext) -> DraftSweep | None:
    interval_s = context.settings.sessions.tidy_interval_s
    if not context.settings.services.draft_sweep_enabled or interval_s <= 0:
        return None
    return DraftSweep(Tidier(context.manager), interval_s)


def idle_reaper(context: ServiceContext) -> IdleReaper | None:
    interval_s = context.settings.sessions.tidy_interval_s
    if not context.settings.services.idle_reaper_enabled or interval_s <= 0:
        return None
    return IdleReaper(Tidier(context.manager), interval_s)
