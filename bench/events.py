"""Durable events into one process: ``events_per_s``.

Many sessions (``sessions`` writers, one task each, as live prompts are) append ``per_session``
events each through the real ``EventLog`` over the real store and the in-process bus: every
event gets its gap-free seq and feed position in the database, committed before it is published.
Measured on SQLite (the embedded default) and, when it is reachable, on a throwaway database of
the local Postgres (``OPENINSPECT_BENCH_POSTGRES_URL``, by default the test suite's server).

Three figures per database, in the same run, each the best of ``repeats`` runs: ``group_commit``
(the server's path: concurrent appends share transactions), ``per_event`` (the same path with one
event per transaction: what the store costs without batching; a fifth of the events, which is
enough for a rate that does not depend on the count), and, on SQLite, the baseline
``plain_insert_commit``: a bare ``sqlite3`` loop inserting rows of the same size with the same
pragmas, one commit per row. ``cpu_ms_per_event`` is this process's CPU time over the run. The
goal: ``group_commit`` on SQLite ≥ :data:`GOAL_EVENTS_PER_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import progress, ratio
from openinspect.bus.memory import MemoryBus
from openinspect.domain.events import AgentText
from openinspect.domain.models import Session
from openinspect.sessions.eventlog import MAX_BATCH, EventLog
from openinspect.store import Store
from openinspect.testing.records import session_record

GOAL_EVENTS_PER_S = 5000.0
PER_EVENT_SHARE = 5
"""The per-event run writes this fraction (1/n) of the events."""
TEXT = "x" * 200
"""A typical durable event's payload (a line of agent text)."""
PG_ADMIN_URL = os.environ.get(
    "OPENINSPECT_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def _session(session_id: str, creator_id: str) -> Session:
    return session_record(session_id, creator_id, repo_url="/bench").model_copy(
        update={"status": "active"}
    )


async def _event_log_run(
    url: str, sessions: int, per_session: int, max_batch: int
) -> dict[str, float]:
    store = await Store.open(url)
    try:
        user = await store.users.create(name="Bench", email="bench@e", role="admin")
        ids = [f"ses_{secrets.token_hex(8)}" for _ in range(sessions)]
        for session_id in ids:
            await store.sessions.create(_session(session_id, user.id))
        log = EventLog(store, MemoryBus(), max_batch=max_batch)

        async def write(session_id: str) -> None:
            for n in range(per_session):
                await log.append(AgentText(session_id=session_id, part_id=f"p{n}", text=TEXT))

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(write(s) for s in ids))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        total = sessions * per_session
        stored = await store.feed.head()
        if stored != total:
            raise RuntimeError(f"{stored} events stored of {total}")
        return {"events_per_s": total / wall, "cpu_ms_per_event": cpu * 1000 / total}
    finally:
        await store.close()


def _plain_sqlite_run(path: Path, events: int) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("CREATE TABLE events (session_id TEXT, seq INTEGER, data TEXT)")
        data = AgentText(session_id="ses_bench", part_id="p", text=TEXT).model_dump_json()
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(events):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO events VALUES (?, ?, ?)", ("ses_bench", n, data))
            conn.execute("COMMIT")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return {"events_per_s": events / wall, "cpu_ms_per_event": cpu * 1000 / events}
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def _throwaway_pg() -> AsyncIterator[str]:
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"openinspect_bench_{secrets.token_hex(4)}"
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with contextlib.suppress(OSError, sa.exc.SQLAlchemyError):
            async with admin.connect() as conn:
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    best = max(runs, key=lambda r: r["events_per_s"])
    return {k: round(v, 3 if k == "cpu_ms_per_event" else 0) for k, v in best.items()}


async def _database(
    url_of: Any, sessions: int, per_session: int, repeats: int
) -> dict[str, dict[str, float]]:
    out: dict[str, list[dict[str, float]]] = {"group_commit": [], "per_event": []}
    runs = (
        ("group_commit", MAX_BATCH, per_session),
        ("per_event", 1, max(1, per_session // PER_EVENT_SHARE)),
    )
    for _ in range(repeats):
        for name, max_batch, count in runs:
            async with url_of() as url:
                out[name].append(await _event_log_run(url, sessions, count, max_batch))
    return {name: _best(runs) for name, runs in out.items()}


async def run(sessions: int = 50, per_session: int = 100, repeats: int = 2) -> dict[str, Any]:
    """The ``events_per_s`` figure (see the module docstring)."""
    total = sessions * per_session
    with tempfile.TemporaryDirectory(prefix="oi-bench-events-") as tmp:
        root = Path(tmp)
        counter = iter(range(1_000_000))

        @contextlib.asynccontextmanager
        async def sqlite_url() -> AsyncIterator[str]:
            yield f"sqlite+aiosqlite:///{root}/events-{next(counter)}.db"

        progress(f"events: {total} events from {sessions} sessions on SQLite")
        sqlite_figures: dict[str, Any] = await _database(sqlite_url, sessions, per_session, repeats)
        sqlite_figures["baseline_plain_insert_commit"] = _best(
            [_plain_sqlite_run(root / f"plain-{n}.db", total) for n in range(repeats)]
        )
    group = sqlite_figures["group_commit"]["events_per_s"]
    sqlite_figures["ratio_group_commit_to_per_event"] = ratio(
        group, sqlite_figures["per_event"]["events_per_s"]
    )
    sqlite_figures["ratio_group_commit_to_baseline"] = ratio(
        group, sqlite_figures["baseline_plain_insert_commit"]["events_per_s"]
    )
    postgres: dict[str, Any]
    try:
        progress(f"events: {total} events from {sessions} sessions on Postgres")
        postgres = await _database(_throwaway_pg, sessions, per_session, repeats)
        postgres["ratio_group_commit_to_per_event"] = ratio(
            postgres["group_commit"]["events_per_s"], postgres["per_event"]["events_per_s"]
        )
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        postgres = {"skipped": f"PostgreSQL not reachable: {type(exc).__name__}"}
    return {
        "sqlite": sqlite_figures,
        "postgres": postgres,
        "sessions": sessions,
        "events": total,
        "goal_events_per_s": GOAL_EVENTS_PER_S,
        "meets_goal": group >= GOAL_EVENTS_PER_S,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
