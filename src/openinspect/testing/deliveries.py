"""What the fakes that send webhooks share: one worker thread delivering records in order
(``DeliveryQueue``), the waits a test makes on them (``DeliveryWaits``) and on the fake's state
(``ChangeWaits``).

The test thread only enqueues, so a receiver on the test's own event loop is never blocked by
the fake; a bug in one delivery is logged and does not stop the ones behind it; stopping gives
up on whatever is left (each record is marked ``done``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, Self, TypeVar

import httpx

logger = logging.getLogger(__name__)

DEFAULT_WAIT_S = 10.0


class Tracked(Protocol):
    """A delivery record: its id, its attempts so far, and whether it is finished."""

    id: str
    done: bool
    attempts: list[Any]


R = TypeVar("R", bound=Tracked)


class DeliveryQueue(Generic[R]):
    """Records delivered one at a time by a worker thread; subclasses give ``_deliver``."""

    name = "fake"
    """Named in the worker thread and in log lines."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[R] = []
        self._pending = 0
        self._queue: queue.Queue[R | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._http: httpx.Client | None = None

    def _deliver(self, record: R) -> None:
        raise NotImplementedError

    def _label(self, record: R) -> str:
        """What a timeout names a record by, besides its id."""
        return type(record).__name__

    def start(self) -> None:
        if self._worker is None:
            self._stopping.clear()
            self._http = httpx.Client(trust_env=False)
            self._worker = threading.Thread(
                target=self._run, name=f"{self.name}-deliver", daemon=True
            )
            self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._worker is not None:
            self._stopping.set()
            self._queue.put(None)
            self._worker.join(timeout_s)
            self._worker = None
        if self._http is not None:
            self._http.close()
            self._http = None

    def put(self, record: R) -> R:
        """Queue ``record`` behind the others; returns it (its attempts fill in later)."""
        with self._cond:
            self._records.append(record)
            self._pending += 1
        self._queue.put(record)
        return record

    def _run(self) -> None:
        while (record := self._queue.get()) is not None:
            try:
                self._deliver(record)
            except Exception:  # a bug here must not stop the deliveries queued behind it
                logger.exception("the %s could not deliver %s", self.name, record.id)
            finally:
                with self._cond:
                    record.done = True
                    self._pending -= 1
                    self._cond.notify_all()
        with self._cond:  # stopping: whatever is left is given up on
            for rec in self._records:
                rec.done = True
            self._pending = 0
            self._cond.notify_all()

    def _record_attempt(self, record: R, attempt: Any) -> None:
        with self._cond:
            record.attempts.append(attempt)
            self._cond.notify_all()

    # ------------------------------------------------------------------ reading

    def records(self) -> list[R]:
        """Every record so far (copies, with their attempts as of now)."""
        with self._cond:
            copies = [copy.copy(r) for r in self._records]
            for c in copies:
                c.attempts = list(c.attempts)
            return copies

    def find(self, record_id: str) -> R | None:
        with self._cond:
            return next((r for r in self._records if r.id == record_id), None)

    def wait_idle(self, timeout_s: float) -> list[R]:
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending == 0, timeout=timeout_s):
                left = [
                    (self._label(r), r.id, len(r.attempts)) for r in self._records if not r.done
                ]
                raise TimeoutError(
                    f"deliveries still under way after {timeout_s}s: {left} "
                    "(what, id, attempts so far)"
                )
        return self.records()

    def wait_for(self, predicate: Callable[[list[R]], bool], timeout_s: float) -> list[R]:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.records()), timeout=timeout_s):
                seen = [
                    (self._label(r), r.id, [getattr(a, "result", a) for a in r.attempts])
                    for r in self._records
                ]
                raise TimeoutError(
                    f"the expected deliveries did not happen within {timeout_s}s; so far: {seen}"
                )
        return self.records()


class DeliveryWaits(Generic[R]):
    """A fake's reading of its deliveries (mixed into the server; needs ``self.deliverer``)."""

    deliverer: DeliveryQueue[R]

    @property
    def deliveries(self) -> list[R]:
        """Every delivery queued so far, with its attempts (copies)."""
        return self.deliverer.records()

    def wait_for_deliveries(self, timeout_s: float = DEFAULT_WAIT_S) -> list[R]:
        """Until every delivery is answered or given up on (not from a loop the receiver runs
        on: use ``await_deliveries`` there)."""
        return self.deliverer.wait_idle(timeout_s)

    async def await_deliveries(self, timeout_s: float = DEFAULT_WAIT_S) -> list[R]:
        return await asyncio.to_thread(self.deliverer.wait_idle, timeout_s)

    def wait_for_delivery(
        self, predicate: Callable[[list[R]], bool], timeout_s: float = DEFAULT_WAIT_S
    ) -> list[R]:
        return self.deliverer.wait_for(predicate, timeout_s)

    async def await_delivery(
        self, predicate: Callable[[list[R]], bool], timeout_s: float = DEFAULT_WAIT_S
    ) -> list[R]:
        return await asyncio.to_thread(self.deliverer.wait_for, predicate, timeout_s)


class ChangeWaits:
    """Waiting until a predicate on the fake holds, re-checked whenever its state changes
    (mixed into the server; needs ``self.changed``, notified on every write)."""

    label: str

    @property
    def changed(self) -> threading.Condition:
        """The condition the fake notifies on every change of its state."""
        raise NotImplementedError

    def wait_until(
        self, predicate: Callable[[Self], bool], timeout_s: float = DEFAULT_WAIT_S
    ) -> None:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"the {self.label} did not reach the state within {timeout_s}s"
                    )
                self.changed.wait(min(left, 0.1))

    async def await_until(
        self, predicate: Callable[[Self], bool], timeout_s: float = DEFAULT_WAIT_S
    ) -> None:
        await asyncio.to_thread(self.wait_until, predicate, timeout_s)
