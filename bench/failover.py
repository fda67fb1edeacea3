"""Failover: ``failover_s``.

Two real servers (``openinspect serve``) on one fresh Postgres database and the Redis bus, the
scripted LLM, bwrap sandboxes, default ownership settings (10 s leases, a failover pass every
2 s). Per sample: a session owned by replica A runs a prompt whose command sleeps; A is killed
(SIGKILL); from then a client posts the next prompt through B, with one ``client_request_id``,
again after every error, until B accepts it. ``failover_s`` is the time from the kill to that
acceptance (goal: within :data:`GOAL_S`; reported as p50 and max, in seconds). The baseline is
a post through B while A is alive (``baseline_forwarded_accept_s``: B forwards it to A). A new
A is started for the next sample.

Needs Postgres and Redis (``OPENINSPECT_BENCH_POSTGRES_URL``, an admin URL, and
``OPENINSPECT_BENCH_REDIS_URL``); without them the part reports ``{"skipped": reason}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import LOOPBACK, percentile, progress, ratio, server_env
from openinspect.cli.client import ApiError, Client, Target
from openinspect.store import Store
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import make_sample_repo
from openinspect.testing.server import ServerProcess

GOAL_S = 15.0
POSTGRES_URL = os.environ.get(
    "OPENINSPECT_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("OPENINSPECT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RETRY_S = 0.2
ACCEPT_TIMEOUT_S = 60.0
LONG_COMMAND = {"name": "bash", "args": {"command": "sleep 600"}}


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"openinspect_bench_{secrets.token_hex(4)}"
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with contextlib.suppress(Exception):
            async with admin.connect() as conn:
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _reachable() -> str | None:
    """Why the part cannot run here, if it cannot."""
    from openinspect.bus import open_bus

    bus = open_bus(REDIS_URL)
    try:
        await bus.publish("ping", "x")
    except Exception as exc:
        return f"Redis is not reachable at {REDIS_URL}: {exc!r}"
    finally:
        await bus.close()
    engine = create_async_engine(POSTGRES_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return f"Postgres is not reachable at {POSTGRES_URL}: {exc!r}"
    finally:
        await engine.dispose()
    return None


def _replica(root: Path, name: str, env: dict[str, str], token_from: Path | None) -> ServerProcess:
    home = root / name
    if token_from is not None:
        home.mkdir(parents=True)
        shutil.copy(token_from / "admin.token", home / "admin.token")
    return ServerProcess(home, env=env).start()


async def _accepted(client: Client, session_id: str, request_id: str) -> float:
    """Post the prompt until the server accepts it; when it did (monotonic)."""
    deadline = time.monotonic() + ACCEPT_TIMEOUT_S
    while True:
        try:
            await client.post_prompt(session_id, content="carry on", client_request_id=request_id)
            return time.monotonic()
        except ApiError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(RETRY_S)


async def _sample(
    root: Path,
    n: int,
    llm: ScriptedLLMServer,
    origin: str,
    store: Store,
    servers: list[ServerProcess],
) -> tuple[float, float]:
    a, b = servers
    assert a.proc is not None
    llm.reset({"turns": [{"tool_calls": [LONG_COMMAND]}], "final_text": "done"})
    async with Client(Target(a.url, a.token)) as ca, Client(Target(b.url, b.token)) as cb:
        sid = (await ca.create_session(repo=origin))["session"]["id"]
        await ca.request("PATCH", f"/api/sessions/{sid}", json={"title": "owned by a"})
        holder = await store.owners.holder(sid)
        if holder is None or holder.split(":")[1] != str(a.proc.pid):
            raise RuntimeError(f"the session should be owned by A, not {holder}")
        sent = time.monotonic()
        await cb.post_prompt(sid, content="wait", client_request_id=f"long-{n}")
        forwarded_s = time.monotonic() - sent
        await asyncio.to_thread(llm.wait_for_requests, 1, ACCEPT_TIMEOUT_S)
        await asyncio.sleep(1)  # the command runs in A's box
        a.kill()
        killed = time.monotonic()
        accepted = await _accepted(cb, sid, f"next-{n}")
    servers[0] = await asyncio.to_thread(_replica, root, f"a{n}", a.env, b.home)
    return accepted - killed, forwarded_s


async def run(samples: int = 3) -> dict[str, Any]:
    reason = await _reachable()
    if reason is not None:
        progress(f"failover: skipped: {reason}")
        return {"skipped": reason}
    root = Path(tempfile.mkdtemp(prefix="openinspect-bench-failover-"))
    llm = ScriptedLLMServer({"turns": []}, host=LOOPBACK)
    servers: list[ServerProcess] = []
    try:
        llm.start()
        (root / "repo").mkdir()
        origin = str(await asyncio.to_thread(make_sample_repo, root / "repo"))
        async with _database() as url:
            env = server_env(llm) | {
                "OPENINSPECT_DATABASE_URL": url,
                "OPENINSPECT_BUS_URL": REDIS_URL,
                "OPENINSPECT_SANDBOX__SNAPSHOTS_DIR": str(root / "snapshots"),
            }
            first = await asyncio.to_thread(_replica, root, "a", env, None)
            servers = [first, await asyncio.to_thread(_replica, root, "b", env, first.home)]
            store = await Store.open(url, run_migrations=False)
            try:
                failover, forwarded = [], []
                for n in range(samples):
                    progress(f"failover: sample {n + 1} of {samples}")
                    took_s, forwarded_s = await _sample(root, n, llm, origin, store, servers)
                    failover.append(took_s)
                    forwarded.append(forwarded_s)
            finally:
                await store.close()
                for server in servers:
                    await asyncio.to_thread(server.stop)
    finally:
        await asyncio.to_thread(llm.stop)
        shutil.rmtree(root, ignore_errors=True)
    return {
        "p50": round(percentile(failover, 50), 2),
        "max": round(max(failover), 2),
        "n": samples,
        "baseline_forwarded_accept_s": round(percentile(forwarded, 50), 3),
        "goal_s": GOAL_S,
        "ratio_max_to_goal": ratio(max(failover), GOAL_S),
        "meets_goal": max(failover) <= GOAL_S,
    }
