"""Memory per session: ``sessions_per_process``.

One real server (SQLite, the in-process bus, ``process`` sandboxes so that 50 boxes fit on a
small machine: the figure is the *server's* resident memory, the boxes are other processes).
Its RSS (``/proc/<pid>/status``) is read:

- ``baseline``: after one warm-up prompt ran and its session was evicted (imports, pools and
  caches the first prompt fills are in it);
- ``streaming``: once ``STREAMING`` sessions all stream a long scripted answer at once (every
  one of them has had its model request answered);
- ``after_eviction``: once every one of them finished, its sandbox was stopped as idle and its
  actor evicted (``/healthz`` reports no live session); then the same again with N new
  sessions (``after_second_round``).

CPython keeps the memory it freed for reuse rather than giving it back to the system, so RSS
after the first eviction stays near its peak; what tells whether evicted sessions still hold
memory is the second round: it reuses what the first one freed. Reported:
``per_streaming_session_kb`` = (streaming − baseline) / N and
``per_idle_session_after_eviction_kb`` = (after_second_round − after_eviction) / N, the memory
an evicted session keeps (goal: close to zero), with the raw figures.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import LOOPBACK, progress, server_env
from openinspect.cli.client import Client, Target
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import make_sample_repo
from openinspect.testing.server import ServerProcess

STREAMING = 50
ANSWER = "Streaming a long answer, slowly, to keep the session busy."
STREAM_S = 28.0
"""How long the scripted model takes to stream one answer (in 4 pieces): longer than it takes
to start all the sessions of a round."""
PIECES = 4
EVICT_IDLE_S = 2
SETTLE_TIMEOUT_S = 120.0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _env(llm: ScriptedLLMServer) -> dict[str, str]:
    return server_env(llm) | {
        "OPENINSPECT_SANDBOX__PROVIDER": "process",
        "OPENINSPECT_SESSIONS__IDLE_STOP_S": "1",
        "OPENINSPECT_SESSIONS__IDLE_STOP_WATCHED_S": "1",
        "OPENINSPECT_SESSIONS__TIDY_INTERVAL_S": "1",
        "OPENINSPECT_OWNERSHIP__EVICT_IDLE_S": str(EVICT_IDLE_S),
    }


async def _live_sessions(client: Client) -> int:
    health: dict[str, Any] = await client.request("GET", "/healthz")
    return int(health["live_sessions"])


async def _finished(client: Client, session_id: str, prompt_id: str) -> None:
    while True:
        detail: dict[str, Any] = await client.request("GET", f"/api/sessions/{session_id}")
        if all(p["id"] != prompt_id for p in detail["queue"]):
            return
        await asyncio.sleep(0.5)


async def _until_evicted(client: Client) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while await _live_sessions(client) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the idle sessions were not evicted")
        await asyncio.sleep(0.5)


async def _round(
    client: Client, llm: ScriptedLLMServer, origin: str, streaming: int, pid: int, stream_s: float
) -> tuple[int, int]:
    """N sessions stream at once, finish and are evicted: (live ones, RSS) while streaming."""
    turn = {"text": ANSWER, "chunk_delay_ms": int(stream_s * 1000 / PIECES)}
    llm.reset({"turns": [turn] * streaming, "final_text": "ok"})
    # One after another (each starts streaming at once): the figure is about sessions that
    # stream together, not about a burst of creates.
    started = [await client.create_session(repo=origin, prompt="talk") for _ in range(streaming)]
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while llm.turns_used < streaming:  # every one of them is streaming now
        if time.monotonic() > deadline:
            raise TimeoutError("the sessions did not all start streaming")
        await asyncio.sleep(0.1)
    live, during = await _live_sessions(client), rss_kb(pid)
    await asyncio.gather(
        *(_finished(client, s["session"]["id"], s["prompt"]["id"]) for s in started)
    )
    await _until_evicted(client)
    return live, during


async def run(streaming: int = STREAMING, stream_s: float = STREAM_S) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="openinspect-bench-sessions-"))
    llm = ScriptedLLMServer({"turns": [], "final_text": "ok"}, host=LOOPBACK)
    server: ServerProcess | None = None
    try:
        llm.start()
        (root / "repo").mkdir()
        origin = str(await asyncio.to_thread(make_sample_repo, root / "repo"))
        server = ServerProcess(root / "home", env=_env(llm))
        await asyncio.to_thread(server.start)
        assert server.proc is not None
        pid = server.proc.pid
        async with Client(Target(server.url, server.token)) as client:
            progress("sessions_per_process: warm-up prompt")
            first = await client.create_session(repo=origin, prompt="warm up")
            await _finished(client, first["session"]["id"], first["prompt"]["id"])
            await _until_evicted(client)
            baseline = rss_kb(pid)

            progress(f"sessions_per_process: {streaming} streaming sessions, twice")
            live, during = await _round(client, llm, origin, streaming, pid, stream_s)
            after = rss_kb(pid)
            await _round(client, llm, origin, streaming, pid, stream_s)
            after_second = rss_kb(pid)
            live_after = await _live_sessions(client)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
        await asyncio.to_thread(llm.stop)
        shutil.rmtree(root, ignore_errors=True)
    return {
        "sessions": streaming,
        "live_while_streaming": live,
        "live_after_eviction": live_after,
        "rss_kb": {
            "baseline": baseline,
            "streaming": during,
            "after_eviction": after,
            "after_second_round": after_second,
        },
        "per_streaming_session_kb": round((during - baseline) / streaming, 1),
        "per_idle_session_after_eviction_kb": round((after_second - after) / streaming, 1),
    }
