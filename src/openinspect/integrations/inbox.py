"""Handling stored deliveries in the background, the part every inbound integration shares
(Slack's inbox, the Linear agent's).

A door stores a delivery first (``store.inbox``, ``store.slack_inbox``) and acknowledges it;
:meth:`InboxWorker.spawn` then handles it in a task of its own. Handling *claims* the row (one
more attempt; a row another handler took is left alone), runs the integration's ``dispatch``
and finishes the row ``done`` or ``ignored`` by what it answered. A failure leaves the row
pending for the integration's recovery pass (its service hands the stale rows to
:meth:`InboxWorker.recover`), until ``attempts_max`` attempts: then it is ``failed`` with the
error's code. Events of one conversation can be serialised with :meth:`InboxWorker.lock`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Literal, Protocol, TypeVar

from openinspect.errors import OpenInspectError

log = logging.getLogger(__name__)
ATTEMPTS_MAX = 5
LOCKS_MAX = 1_000
ERROR_CODE_MAX = 64


class Claimable(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def attempts(self) -> int: ...


Finished = Literal["done", "ignored", "failed"]
R = TypeVar("R", bound=Claimable)
R_contra = TypeVar("R_contra", bound=Claimable, contravariant=True)


class InboxRows(Protocol[R_contra]):
    """The claim/finish side of an inbox store."""

    async def claim(self, row: R_contra, /) -> bool: ...

    async def finish(
        self, row_id: str, status: Finished, error_code: str | None = None, /
    ) -> None: ...


class InboxWorker(Generic[R]):
    def __init__(
        self,
        name: str,
        rows: InboxRows[R],
        dispatch: Callable[[R], Awaitable[str]],
        *,
        attempts_max: int = ATTEMPTS_MAX,
    ) -> None:
        self._name = name
        self._rows = rows
        self._dispatch = dispatch
        self._attempts_max = attempts_max
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def spawn(self, row: R) -> None:
        task = asyncio.create_task(self.handle(row), name=f"{self._name} inbox {row.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, row: R) -> None:
        """Claim and handle one row (see the module docstring)."""
        if not await self._rows.claim(row):
            return
        try:
            status = await self._dispatch(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = exc.code if isinstance(exc, OpenInspectError) else type(exc).__name__
            if row.attempts + 1 >= self._attempts_max:
                log.warning("%s: inbox row %s failed for good (%s)", self._name, row.id, code)
                await self._rows.finish(row.id, "failed", code[:ERROR_CODE_MAX])
            else:
                log.warning("%s: inbox row %s failed (%s); it is retried", self._name, row.id, code)
            return
        await self._rows.finish(row.id, "ignored" if status == "ignored" else "done")

    async def recover(self, rows: Iterable[R]) -> int:
        """Handle the stale rows a recovery pass found, one after another; how many."""
        count = 0
        for row in rows:
            await self.handle(row)
            count += 1
        return count

    def lock(self, key: str) -> asyncio.Lock:
        """The lock of one conversation (a thread, an agent session) in this process."""
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) >= LOCKS_MAX:  # forget the idle ones
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no handling runs (for tests and a graceful stop)."""
        async with asyncio.timeout(timeout_s):
            while self._tasks:
                await asyncio.gather(*set(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the handling in progress (its rows stay pending: recovered later)."""
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
