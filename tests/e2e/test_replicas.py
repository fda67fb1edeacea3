"""End to end, several replicas: three real ``openinspect serve`` processes on one fresh Postgres
database and the Redis bus, real bwrap sandboxes, real git, the scripted LLM over HTTP.

A session created through A is watched from B and C with identical durable sequences; a prompt
posted through C runs; ``kill -9`` of the owner during a long command → another replica owns the
session within 15 s, the prompt is ``interrupted``, the log has no gap and no duplicate, and the
next prompt, posted through a replica that does not own the session, runs and commits."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.store import Store
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.bus.test_bus import REDIS_URL
from tests.conftest import server_env
from tests.e2e.helpers import client_for, collect, durable, finished
from tests.store.test_migrations import throwaway_pg_database

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
FAILOVER_MAX_S = 15.0


def script() -> dict[str, object]:
    return {
        "turns": [
            {"tool_calls": [{"name": "bash", "args": {"command": "echo one > one.txt"}}]},
            {"text": "First done."},
            {
                "text": "Waiting.",
                "tool_calls": [{"name": "bash", "args": {"command": "sleep 600"}}],
            },
            {"tool_calls": [{"name": "bash", "args": {"command": "echo two > two.txt"}}]},
            {"text": "After failover."},
        ]
    }


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, Store]]:
    async with throwaway_pg_database() as url:
        store = await Store.open(url)
        try:
            yield url, store
        finally:
            await store.close()


def start_replicas(tmp_path: Path, llm: ScriptedLLMServer, url: str) -> list[ServerProcess]:
    """A first (it makes the admin and its token), then B and C with the same token."""
    env = server_env(
        llm,
        OPENINSPECT_DATABASE_URL=url,
        OPENINSPECT_BUS_URL=REDIS_URL,
        # Shared storage for snapshots, as replicas that share sessions need.
        OPENINSPECT_SANDBOX__SNAPSHOTS_DIR=str(tmp_path / "snapshots"),
    )
    first = ServerProcess(tmp_path / "a", env=env).start()
    servers = [first]
    for name in ("b", "c"):
        home = tmp_path / name
        home.mkdir()
        shutil.copy(first.home / "admin.token", home / "admin.token")
        servers.append(ServerProcess(home, env=env).start())
    return servers


async def owner_pid(store: Store, session_id: str) -> int | None:
    holder = await store.owners.holder(session_id)
    return int(holder.split(":")[1]) if holder else None


async def test_three_replicas_share_a_session_and_survive_the_owners_kill(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path, database: tuple[str, Store]
) -> None:
    url, store = database
    llm.reset(script())
    servers = start_replicas(tmp_path, llm, url)
    try:
        a, b, c = servers
        async with client_for(a) as ca, client_for(b) as cb, client_for(c) as cc:
            sid = (await ca.create_session(repo=str(origin)))["session"]["id"]
            watch_b = asyncio.create_task(
                collect(cb, sid, lambda e: e["type"] == "prompt-finished")
            )
            watch_c = asyncio.create_task(
                collect(cc, sid, lambda e: e["type"] == "prompt-finished")
            )
            await asyncio.sleep(1)  # both subscribed
            first = await cc.post_prompt(sid, content="make a note")
            seen_b, seen_c = await watch_b, await watch_c
            assert seen_b[-1]["prompt_id"] == first["id"] and seen_b[-1]["status"] == "success"
            assert [(e["seq"], e["type"]) for e in durable(seen_b)] == [
                (e["seq"], e["type"]) for e in durable(seen_c)
            ]
            assert [e["seq"] for e in seen_b] == list(range(1, len(seen_b) + 1))

            # The long prompt, through A: forwarded to the owner, whoever it is.
            owner = {s.proc.pid: s for s in servers if s.proc}[await owner_pid(store, sid) or 0]
            long = await ca.post_prompt(sid, content="wait a long time")
            last = seen_b[-1]["seq"]
            await collect(cb, sid, lambda e: e["type"] == "tool-call", since_seq=last)
            await asyncio.sleep(1)  # the command runs in the box
            owner.kill()
            killed = time.monotonic()
            survivors = [s for s in servers if s is not owner]
            while True:
                pid = await owner_pid(store, sid)
                prompt = await store.prompts.get(long["id"])
                if (
                    pid in {s.proc.pid for s in survivors if s.proc}
                    and prompt is not None
                    and (prompt.status == "interrupted")
                ):
                    break
                assert time.monotonic() - killed < FAILOVER_MAX_S, "no replica took over in time"
                await asyncio.sleep(0.2)
            took_over_s = time.monotonic() - killed
            new_owner_pid = pid

            # The next prompt through a replica that does not own the session: forwarded.
            other = next(s for s in survivors if s.proc and s.proc.pid != new_owner_pid)
            async with client_for(other) as co:
                ended = await collect(co, sid, finished(long["id"]), since_seq=last)
                assert ended[-1]["status"] == "interrupted"
                nxt = await co.post_prompt(sid, content="carry on")
                after = await collect(co, sid, finished(nxt["id"]), since_seq=ended[-1]["seq"])
        assert after[-1]["status"] == "success", after[-1]
        assert any(e["type"] == "git-commit" for e in after)
        assert any(e["type"] == "agent-text" and e["text"] == "After failover." for e in after)
        events = await store.events.after(sid, 0, 10_000)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))  # no gap, no duplicate
        finishes = [e for e in events if e.type == "prompt-finished"]
        assert [e.prompt_id for e in finishes] == [first["id"], long["id"], nxt["id"]]
        assert took_over_s < FAILOVER_MAX_S
    finally:
        for server in servers:
            server.stop()
