"""The service seam: a background loop of the control plane, and the runner the lifespan starts.

A :class:`Service` does one pass of its work in ``run_once``; the :class:`ServiceRunner` calls it
every ``interval_s`` seconds (the first pass at once) until the server stops. A service that
keeps its own loop simply does not return from ``run_once``; it is cancelled like any other.

Contract of ``run_once``:

- It may raise: the error is logged (with its traceback the first time in a row, then one line
  per failure) and the pass is retried after a pause that doubles from ``interval_s`` up to
  ``services.backoff_max_s``. A failing service never stops the runner, another service, or the
  server.
- It is cancelled (``asyncio.CancelledError``) when the server stops, or, for a one-replica
  service, when this server loses its lease; it must leave nothing half done that a later pass
  (here or on another server) cannot finish. Keep what it does safe to run twice.

``one_replica = True`` means one server at a time runs the service: the runner holds the lease
``service:<name>`` (``store/leases.py``) while the service runs, renews it every third of
``services.lease_ttl_s``, and cancels the service the moment a renewal is refused (another server
took over after a stall); it then waits like every other server to take the lease again. A
server that dies without releasing its leases is replaced within about one TTL. A service whose
writes must never land after a takeover guards them with ``assert_held(conn, runner_lease)``;
the built-in ones need not (each of their writes is idempotent).

``one_replica = False`` services run on every server over what that server holds (the sandboxes
it runs, for instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from openinspect.store.leases import HOLDER_MAX, Lease, LeaseStore

log = logging.getLogger(__name__)
LEASE_PREFIX = "service:"
RENEWALS_PER_TTL = 3
"""A lease is renewed this many times per TTL, so one slow renewal does not lose it."""
BACKOFF_MIN_S = 0.01
BACKOFF_DOUBLINGS_MAX = 16
STOP_GRACE_S = 2.0
"""How long ``ServiceRunner.stop`` lets a one-replica service's lease call finish."""


@runtime_checkable
class Service(Protocol):
    """A background loop. ``name`` is stable: it names the lease, the log lines and, for the
    built-ins, the setting ``services.<name>_enabled``."""

    name: str
    one_replica: bool
    interval_s: float

    async def run_once(self) -> None:
        """One pass of the work (or the service's own loop, if it never returns); see the
        module docstring for what happens when it raises or is cancelled."""
        ...


def default_holder() -> str:
    """This server's name in the leases it holds: host, process and a random part (a restarted
    process with the same pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:HOLDER_MAX]


class ServiceRunner:
    """Runs services until ``stop``: every one on its own task, one-replica ones under a lease.

    ``lease_ttl_s`` and ``backoff_max_s`` come from ``services.*``; ``holder`` names this server
    in the leases (``default_holder()``).
    """

    def __init__(
        self,
        services: Sequence[Service],
        leases: LeaseStore,
        *,
        lease_ttl_s: float,
        backoff_max_s: float,
        holder: str | None = None,
    ) -> None:
        self.services = list(services)
        self.holder = holder or default_holder()
        self._leases = leases
        self._lease_ttl_s = lease_ttl_s
        self._backoff_max_s = backoff_max_s
        self._tasks: list[tuple[Service, asyncio.Task[None]]] = []
        self._held: dict[str, Lease] = {}
        self._stopping = asyncio.Event()

    @property
    def names(self) -> list[str]:
        """The services this runner runs (or waits to run, for one-replica ones)."""
        return [s.name for s in self.services]

    def holds(self, name: str) -> Lease | None:
        """The lease under which this server runs the one-replica service ``name`` now."""
        return self._held.get(name)

    def start(self) -> None:
        """Start every service on its own task (once)."""
        if self._tasks:
            return
        self._stopping.clear()
        for service in self.services:
            supervise = self._hold_and_run if service.one_replica else self._loop
            task = asyncio.create_task(supervise(service), name=f"service:{service.name}")
            self._tasks.append((service, task))
        if self.services:
            log.info("services started: %s", ", ".join(self.names))

    async def stop(self) -> None:
        """Cancel every service's work, wait for them, and release the leases held.

        The work (``run_once``) is cancelled at once. A one-replica service's supervisor is
        not: it is told to stop, and ends the lease call it is in (up to ``STOP_GRACE_S``)
        before it releases the lease. A database call cancelled half way costs more than it
        saves: on SQLite, the connections it leaves behind wait out the busy timeout (10 s)
        before they close."""
        started, self._tasks = self._tasks, []
        self._stopping.set()
        supervisors = []
        for service, task in started:
            if service.one_replica:
                supervisors.append(task)
            else:
                task.cancel()
        if supervisors:
            await asyncio.wait(supervisors, timeout=STOP_GRACE_S)
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*(task for _, task in started), return_exceptions=True)

    async def _pause(self, delay_s: float) -> bool:
        """Wait ``delay_s`` seconds, less if the runner is told to stop; whether it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _loop(self, service: Service) -> None:
        """``run_once`` every ``interval_s``, with a doubling pause after failures."""
        failures = 0
        while True:
            try:
                await service.run_once()
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.exception("service %s failed; it is retried", service.name)
                else:
                    log.warning(
                        "service %s failed again (%d in a row): %s",
                        service.name,
                        failures,
                        type(exc).__name__,
                    )
                doublings = min(failures, BACKOFF_DOUBLINGS_MAX)
                delay = min(
                    self._backoff_max_s, max(service.interval_s, BACKOFF_MIN_S) * 2**doublings
                )
            else:
                if failures:
                    log.info("service %s works again after %d failures", service.name, failures)
                failures = 0
                delay = service.interval_s
            await asyncio.sleep(delay)

    async def _hold_and_run(self, service: Service) -> None:
        """Wait for the service's lease, run the service while it is held, and start over when
        it is lost."""
        name, poll_s = LEASE_PREFIX + service.name, self._lease_ttl_s / RENEWALS_PER_TTL
        errors = 0
        while not self._stopping.is_set():
            asked = time.monotonic()
            try:
                lease = await self._leases.acquire(name, self.holder, self._lease_ttl_s)
                errors = 0
            except Exception:
                errors += 1
                if errors == 1:
                    log.exception("service %s: its lease could not be taken", service.name)
                lease = None
            if lease is None:
                await self._pause(poll_s)
                continue
            log.info("service %s runs on this server (fence %d)", service.name, lease.fence)
            self._held[service.name] = lease
            try:
                await self._run_while_held(service, lease, valid_until=asked + self._lease_ttl_s)
            finally:
                self._held.pop(service.name, None)
                with contextlib.suppress(Exception):
                    await self._leases.release(lease)

    async def _until_done(self, work: asyncio.Task[None], timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for ``work`` to end or the runner to stop; whether either
        happened."""
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({work, stopping}, timeout=timeout_s, return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
        return work.done() or self._stopping.is_set()

    async def _run_while_held(self, service: Service, lease: Lease, *, valid_until: float) -> None:
        """Run the service and renew its lease until a renewal is refused, or renewals failed
        for so long that the lease may have run out (``valid_until``, on this process's
        monotonic clock, counted from before the request that got or renewed the lease)."""
        ttl_s = self._lease_ttl_s
        work = asyncio.create_task(self._loop(service), name=f"service:{service.name}:run")
        try:
            while True:
                if await self._until_done(work, ttl_s / RENEWALS_PER_TTL):
                    return  # the runner stops (or, for the loop, only an interpreter exit)
                sent = time.monotonic()
                try:
                    renewed = await self._leases.renew(lease, ttl_s)
                except Exception as exc:
                    if time.monotonic() < valid_until:
                        log.warning("service %s: renewing its lease failed: %r", service.name, exc)
                        continue
                    renewed = False
                if not renewed:
                    log.warning(
                        "service %s lost its lease; it stops here until this server gets it again",
                        service.name,
                    )
                    return
                valid_until = sent + ttl_s
        finally:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
