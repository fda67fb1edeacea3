"""GitHub deliveries the bot acts on: stored before ``/webhooks/github`` answers, handled after.

A handler's ``dispatch`` parses a delivery, drops what it will never act on, and calls
:meth:`GithubInbox.accept` with a key naming the GitHub object (a comment, a review), not the
delivery: a redelivery or a replay of the same object (a new ``X-GitHub-Delivery``) writes
nothing. The row is then handled in the background (GitHub waits ten seconds at most for an
answer; reading a pull request and starting a session may take longer), by the handler
registered for its ``kind``. A handler that fails leaves the row pending: :meth:`recover` (the
``github_inbox`` service, every :data:`RECOVER_INTERVAL_S`) hands it over again once its claim is
:data:`RECOVER_AFTER` old, up to :data:`ATTEMPTS_MAX` attempts, then it is ``failed`` with the
error's code. Handlers are idempotent by their own keys (a prompt's ``client_request_id``, an
outbox key, a ledger row), so a row handled twice after a crash acts once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from openinspect.errors import OpenInspectError
from openinspect.store import Store
from openinspect.store.inbox import INBOX_KEY_MAX, InboxItem

log = logging.getLogger(__name__)
SOURCE = "github"
RECOVER_AFTER = timedelta(minutes=1)
RECOVER_INTERVAL_S = 30.0
ATTEMPTS_MAX = 5
Handle = Callable[[InboxItem], Awaitable[str]]
"""Handles one stored delivery: ``done`` or ``ignored``; raises to have it tried again."""


class GithubInbox:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._handlers: dict[str, Handle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, kind: str, handle: Handle) -> None:
        """``handle`` takes the rows of ``kind``."""
        self._handlers[kind] = handle

    async def accept(self, kind: str, key: str, payload: Mapping[str, Any]) -> bool:
        """Store a delivery (``payload``: what the handler needs of it) and start handling it;
        False when its ``key`` was accepted before (nothing is done again)."""
        item = await self._store.inbox.accept(
            source=SOURCE, key=key[:INBOX_KEY_MAX], kind=kind, payload=json.dumps(payload)
        )
        if item is None:
            return False
        task = asyncio.create_task(self.handle(item), name=f"github inbox {item.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def handle(self, item: InboxItem) -> None:
        """Claim and handle one row (see the module docstring)."""
        inbox = self._store.inbox
        handle = self._handlers.get(item.kind)
        if handle is None or not await inbox.claim(item):
            return
        try:
            status = await handle(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = exc.code if isinstance(exc, OpenInspectError) else type(exc).__name__
            if item.attempts + 1 >= ATTEMPTS_MAX:
                log.warning("github: inbox row %s failed for good (%s)", item.id, code)
                await inbox.finish(item.id, "failed", code[:64])
            else:
                log.warning("github: inbox row %s failed (%s); it is retried", item.id, code)
            return
        await inbox.finish(item.id, "ignored" if status == "ignored" else "done")

    async def recover(self) -> int:
        """Handle again the pending rows whose last claim is old; how many."""
        items = await self._store.inbox.stale(SOURCE, RECOVER_AFTER)
        for item in items:
            await self.handle(item)
        return len(items)

    async def idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no handling runs (tests; a graceful stop)."""
        async with asyncio.timeout(timeout_s):
            while self._tasks:
                await asyncio.gather(*set(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the handling in progress (its rows stay pending: recovered later)."""
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
