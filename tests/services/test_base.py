"""The service runner: a one-replica service runs on exactly one of several servers sharing a
database (SQLite and Postgres), moves to another when its server stops or is killed, stops when
its lease is taken away and comes back with it; a failing service is retried without stopping
anything; services turned off in the settings are not started."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

import pytest

from openinspect.controlplane import open_control_plane
from openinspect.services.base import LEASE_PREFIX, STOP_GRACE_S, ServiceRunner
from openinspect.settings import (
    PoolSettings,
    SandboxSettings,
    ServiceSettings,
    SessionSettings,
    Settings,
)
from openinspect.store import Store
from openinspect.store.leases import Lease, LeaseStore, db_now_ms
from openinspect.store.tables import leases
from tests.services import lease_holder
from tests.store.test_migrations import throwaway_pg_database

TTL_S = 1.0
INTERVAL_S = 0.02
ROOT = Path(__file__).resolve().parents[2]


class Counting:
    """A service that counts its passes; the first ``fail_first`` raise."""

    def __init__(self, *, one_replica: bool = True, fail_first: int = 0, name: str = "") -> None:
        self.name = name or lease_holder.NAME
        self.one_replica = one_replica
        self.interval_s = INTERVAL_S
        self.calls = 0
        self.runs = 0
        self._fail_first = fail_first

    async def run_once(self) -> None:
        self.calls += 1
        if self.calls <= self._fail_first:
            raise RuntimeError(f"failure {self.calls}")
        self.runs += 1


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> float:
    """Wait for ``condition``; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        return
    async with throwaway_pg_database() as url:
        yield url


async def _store(stack: AsyncExitStack, url: str) -> Store:
    """One server's store: its own engine and connections."""
    store = await Store.open(url)
    stack.push_async_callback(store.close)
    return store


def _runner(store: Store, *services: Counting) -> ServiceRunner:
    return ServiceRunner(services, store.leases, lease_ttl_s=TTL_S, backoff_max_s=0.2)


async def test_a_one_replica_service_runs_on_exactly_one_server(db_url: str) -> None:
    async with AsyncExitStack() as stack:
        services = [Counting(), Counting()]
        runners = [_runner(await _store(stack, db_url), s) for s in services]
        for runner in runners:
            runner.start()
            stack.push_async_callback(runner.stop)
        await _until(lambda: any(s.runs >= 5 for s in services))
        await asyncio.sleep(TTL_S)  # several renewals: still one
        running = [i for i, s in enumerate(services) if s.runs]
        assert len(running) == 1, [s.runs for s in services]
        holder, other = running[0], 1 - running[0]
        assert runners[holder].holds(lease_holder.NAME) is not None
        assert runners[other].holds(lease_holder.NAME) is None

        # A clean stop releases the lease: the other server takes over without waiting a TTL.
        await runners[holder].stop()
        stopped_at = services[holder].runs
        took_s = await _until(lambda: services[other].runs > 0)
        assert took_s < TTL_S
        assert services[holder].runs == stopped_at


async def test_the_service_moves_when_its_server_is_killed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    marks = tmp_path / "runs"
    async with AsyncExitStack() as stack:
        store = await _store(stack, url)
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.services.lease_holder",
            url,
            str(marks),
            str(TTL_S),
            cwd=ROOT,
        )
        try:
            await _until(lambda: marks.exists() and marks.read_text().count("run") >= 3, 30)
            here = Counting()
            runner = _runner(store, here)
            runner.start()
            stack.push_async_callback(runner.stop)
            await asyncio.sleep(TTL_S * 1.5)
            assert here.runs == 0  # the other process holds it and renews it
        finally:
            os.kill(holder.pid, signal.SIGKILL)  # no release: the lease must run out
            await holder.wait()
        took_s = await _until(lambda: here.runs > 0)
        assert took_s < TTL_S * 2.5
        lease = await store.leases.current(LEASE_PREFIX + lease_holder.NAME)
        assert lease is not None and lease.holder == runner.holder and lease.fence == 2


async def test_a_lost_lease_stops_the_service_until_it_is_back(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        store = await _store(stack, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        service = Counting()
        runner = _runner(store, service)
        runner.start()
        stack.push_async_callback(runner.stop)
        await _until(lambda: service.runs > 0)
        # Another server takes the lease over (as after this one stalled past the TTL).
        name = LEASE_PREFIX + lease_holder.NAME
        async with store.engine.begin() as conn:
            await conn.execute(
                leases.update().where(leases.c.name == name).values(expires_at_ms=db_now_ms())
            )
        thief = await store.leases.acquire(name, "another-server", TTL_S * 3)
        assert thief is not None
        await _until(lambda: runner.holds(lease_holder.NAME) is None, TTL_S)
        await asyncio.sleep(INTERVAL_S * 3)
        stopped_at = service.runs
        await asyncio.sleep(TTL_S / 2)
        assert service.runs == stopped_at  # not a single pass without the lease

        await store.leases.release(thief)
        await _until(lambda: service.runs > stopped_at, TTL_S)
        held = runner.holds(lease_holder.NAME)
        assert held is not None and held.fence > thief.fence


async def test_a_failing_service_is_retried_and_stops_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncExitStack() as stack:
        store = await _store(stack, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        failing = Counting(one_replica=False, fail_first=3, name="failing")
        steady = Counting(name="steady")
        runner = _runner(store, failing, steady)
        with caplog.at_level(logging.INFO, logger="openinspect.services.base"):
            runner.start()
            stack.push_async_callback(runner.stop)
            await _until(lambda: failing.runs >= 2)
        assert failing.calls == failing.runs + 3
        assert steady.runs > 0
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert len(tracebacks) == 1 and "failing" in tracebacks[0].getMessage()
        assert any("works again after 3 failures" in r.getMessage() for r in caplog.records)


async def test_a_stopped_runner_runs_nothing_and_keeps_no_lease(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        store = await _store(stack, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        service = Counting()
        runner = _runner(store, service)
        runner.start()
        await _until(lambda: service.runs > 0)
        await runner.stop()
        runs = service.runs
        await asyncio.sleep(INTERVAL_S * 5)
        assert service.runs == runs
        assert await store.leases.acquire(LEASE_PREFIX + lease_holder.NAME, "next", TTL_S)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_the_lifespan_starts_the_services_the_settings_turn_on(tmp_path: Path) -> None:
    def settings(**services: bool) -> Settings:
        return Settings(
            home=tmp_path / "home",
            sandbox=SandboxSettings(provider="process"),
            services=ServiceSettings(**services),
        )

    async with open_control_plane(settings()) as plane:
        assert plane.services.names == [
            "automation_runs",
            "draft_sweep",
            "evict",
            "failover",
            "idle_reaper",
            "presence_heartbeat",
            "scheduler",
            "spend_wake",
            "warm_pool",
            "webhook_prune",
        ]
        # Every one-replica service holds its lease before the plane stops: a lease write
        # cancelled mid-statement by the stop can leave SQLite locked for the next plane.
        one_replica = [s.name for s in plane.services.services if s.one_replica]
        assert one_replica == ["automation_runs", "draft_sweep", "scheduler", "webhook_prune"]
        await _until(lambda: all(plane.services.holds(name) for name in one_replica))
    off = settings(
        draft_sweep_enabled=False,
        webhook_prune_enabled=False,
        evict_enabled=False,
        scheduler_enabled=False,
        automation_runs_enabled=False,
        spend_wake_enabled=False,
        warm_pool_enabled=False,
    )
    async with open_control_plane(off) as plane:
        assert plane.services.names == ["failover", "idle_reaper", "presence_heartbeat"]
    no_tidy = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        services=ServiceSettings(
            webhook_prune_enabled=False,
            failover_enabled=False,
            evict_enabled=False,
            scheduler_enabled=False,
            automation_runs_enabled=False,
            spend_wake_enabled=False,
            warm_pool_enabled=False,
        ),
    )
    async with open_control_plane(no_tidy) as plane:
        assert plane.services.names == ["presence_heartbeat"]
    no_pools = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process", pool=PoolSettings(max_per_repo=0)),
        sessions=SessionSettings(tidy_interval_s=0),
    )
    async with open_control_plane(no_pools) as plane:  # no pool on this server: no service
        assert "warm_pool" not in plane.services.names


class SlowLeases:
    """A lease store whose calls take ``delay_s``, and which notes the ones cut short."""

    def __init__(self, inner: LeaseStore, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s
        self.started = asyncio.Event()
        self.cut: list[str] = []
        self.released: list[str] = []

    async def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        self.started.set()
        try:
            await asyncio.sleep(self._delay_s)
        except asyncio.CancelledError:
            self.cut.append("acquire")
            raise
        return await self._inner.acquire(name, holder, ttl_s)

    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        return await self._inner.renew(lease, ttl_s)

    async def release(self, lease: Lease) -> bool:
        self.released.append(lease.name)
        return await self._inner.release(lease)


async def test_a_stop_lets_the_lease_call_in_flight_finish_and_releases_the_lease(
    tmp_path: Path,
) -> None:
    """A database call cancelled half way leaves SQLite connections that wait out the busy
    timeout; so ``stop`` lets a supervisor's lease call end, then releases the lease."""
    async with AsyncExitStack() as stack:
        store = await _store(stack, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        leases = SlowLeases(store.leases, delay_s=0.3)
        service = Counting()
        runner = ServiceRunner(
            [service], cast(LeaseStore, leases), lease_ttl_s=TTL_S, backoff_max_s=0.2
        )
        runner.start()
        await leases.started.wait()
        started = time.monotonic()
        await runner.stop()
        assert time.monotonic() - started < STOP_GRACE_S
        assert leases.cut == []
        assert leases.released == [LEASE_PREFIX + service.name]
        assert await store.leases.acquire(LEASE_PREFIX + service.name, "next", TTL_S) is not None
