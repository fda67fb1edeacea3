"""Fan-out: N WebSocket clients subscribed to one session while a prompt produces many durable
events, against a bare ``websockets`` broadcast server replaying the same messages at the same pace.

For each N, a fresh session is created and its sandbox booted by a one-turn warm-up prompt (so the
measured prompt never waits for a boot); then N clients subscribe and a prompt of ``turns`` scripted
turns runs, each turn a short text and a ``glob`` call, so the server emits ``agent-text``,
``tool-call``, ``tool-result`` and ``usage`` per turn. The latency of an event is the client's
receive time minus the event's ``ts`` (stamped by the server when it created the event).
The baseline replays the events the first client received (type, message size, and offset of
``ts`` from the first event's) to N clients with ``websockets.broadcast``; see ``ws_baseline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import websockets

from bench.common import (
    LOOPBACK,
    PROMPT_TIMEOUT_S,
    BenchEnv,
    Listener,
    Received,
    Script,
    bench_env,
    finished,
    gc_paused,
    ms,
    parse_ts,
    percentile,
    progress,
    ratio,
)
from openinspect.domain.events import EPHEMERAL_TYPES

REPO_ROOT = Path(__file__).resolve().parent.parent
CONNECT_CONCURRENCY = 10
CONNECT_TIMEOUT_S = 60.0
SETTLE_S = 0.5
"""Pause between the last client joining and the prompt, so join traffic (presence) is over."""
BASELINE_TIMEOUT_S = 120.0
CLIENT_MAX_BYTES = 16 * 1024 * 1024


TURNS_PER_PROMPT = 45
"""Tool turns per prompt: the agent stops a prompt at 50 model requests (pydantic-ai's default
``request_limit``, below the server's own ``agent.max_steps``), so a long run is split into
consecutive prompts queued together."""


def split_turns(turns: int) -> list[int]:
    """``turns`` split into near-equal chunks of at most ``TURNS_PER_PROMPT``."""
    prompts = -(-turns // TURNS_PER_PROMPT)
    base, extra = divmod(turns, prompts)
    return [base + (1 if i < extra else 0) for i in range(prompts)]


def fanout_script(turns: int) -> Script:
    """Per prompt: tool turns (short text + ``glob``), then a text-only turn that ends it."""
    script: list[dict[str, Any]] = []
    step = 0
    for part, count in enumerate(split_turns(turns), start=1):
        for _ in range(count):
            step += 1
            script.append(
                {
                    "text": f"Step {step}: listing the Python files.",
                    "tool_calls": [{"name": "glob", "args": {"pattern": "*.py"}}],
                }
            )
        script.append({"text": f"Part {part} done."})
    return {"turns": script, "final_text": "All steps done."}


WARMUP_SCRIPT: Script = {
    "turns": [{"tool_calls": [{"name": "glob", "args": {"pattern": "*.py"}}]}],
    "final_text": "Warm.",
}


def summarize(received: Sequence[Received], clients: int) -> dict[str, Any]:
    """Delivery rate and latency of ``received`` (every client's events, together)."""
    if not received:
        raise RuntimeError("no events were received")
    latencies = [r.at - parse_ts(str(r.event["ts"])) for r in received]
    first = min(r.at for r in received)
    last = max(r.at for r in received)
    wall = last - first
    return {
        "clients": clients,
        "events": len(received),
        "events_per_client": round(len(received) / clients, 1),
        "wall_s": round(wall, 3),
        "events_per_s": round(len(received) / wall, 1) if wall > 0 else None,
        "p50_latency_ms": ms(percentile(latencies, 50)),
        "p99_latency_ms": ms(percentile(latencies, 99)),
        "max_latency_ms": ms(max(latencies)),
    }


def schedule_of(received: Sequence[Received]) -> list[dict[str, Any]]:
    """Type, message size and pace (offset of ``ts`` from the first event's) of events."""
    if not received:
        return []
    start = parse_ts(str(received[0].event["ts"]))
    return [
        {
            "offset_s": round(parse_ts(str(r.event["ts"])) - start, 6),
            "size": r.size,
            "type": str(r.event["type"]),
        }
        for r in received
    ]


async def open_listeners(
    n: int, opener: Callable[[], Any], *, limit: int = CONNECT_CONCURRENCY
) -> list[Listener]:
    """``n`` listeners, at most ``limit`` connecting at a time; all closed if one fails."""
    gate = asyncio.Semaphore(limit)
    opened: list[Listener] = []

    async def one() -> None:
        async with gate:
            opened.append(await opener())

    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await asyncio.gather(*(one() for _ in range(n)))
    except BaseException:
        await close_all(opened)
        raise
    return opened


async def close_all(listeners: Sequence[Listener]) -> None:
    await asyncio.gather(*(listener.close() for listener in listeners), return_exceptions=True)


async def _boot_session(env: BenchEnv, title: str) -> tuple[str, int]:
    """A session whose sandbox is ready and whose queue is idle; returns it and its last seq."""
    env.llm.reset(WARMUP_SCRIPT)
    async with env.client() as client:
        created = await client.create_session(repo=str(env.origin), title=title, prompt="warm up")
        session_id, prompt_id = str(created["session"]["id"]), str(created["prompt"]["id"])
        driver = await Listener.open(client, session_id, since_seq=0)
    try:
        done = await driver.wait_for(finished(prompt_id), PROMPT_TIMEOUT_S)
        if done.event.get("status") != "success":
            raise RuntimeError(f"the warm-up prompt failed: {done.event}")
        idle = await driver.wait_for(
            lambda e: (
                e["type"] == "session-updated"
                and e.get("status") == "idle"
                and e["seq"] > done.event["seq"]
            ),
            30.0,
        )
        return session_id, int(idle.event["seq"])
    finally:
        await driver.close()


async def run_real(env: BenchEnv, clients: int, turns: int) -> tuple[dict[str, Any], list[Any]]:
    """One measured prompt with ``clients`` subscribers. Returns its summary and its schedule."""
    session_id, last_seq = await _boot_session(env, f"fanout {clients}")
    async with env.client() as client:
        started = time.monotonic()
        listeners = await open_listeners(
            clients, lambda: Listener.open(client, session_id, since_seq=last_seq)
        )
        connect_s = time.monotonic() - started
        try:
            await asyncio.sleep(SETTLE_S)
            env.llm.reset(fanout_script(turns))
            with gc_paused():
                prompt_ids = [
                    str((await client.post_prompt(session_id, content=f"fan out {i + 1}"))["id"])
                    for i in range(len(split_turns(turns)))
                ]
                timeout_s = PROMPT_TIMEOUT_S * len(prompt_ids)
                ends = await asyncio.gather(
                    *(lst.wait_for(finished(prompt_ids[-1]), timeout_s) for lst in listeners)
                )
        finally:
            await close_all(listeners)
    for prompt_id in prompt_ids:
        done = await listeners[0].wait_for(finished(prompt_id), 0)
        if done.event.get("status") != "success":
            raise RuntimeError(f"a fan-out prompt failed: {done.event}")
    end_seq = int(ends[0].event["seq"])

    def durable(r: Received) -> bool:
        kind = r.event["type"]
        return kind not in EPHEMERAL_TYPES and last_seq < int(r.event["seq"]) <= end_seq

    per_client = [[r for r in lst.received if durable(r)] for lst in listeners]
    counts = {len(events) for events in per_client}
    if counts != {end_seq - last_seq}:
        raise RuntimeError(
            f"clients missed events: got {sorted(counts)}, {end_seq - last_seq} sent"
        )
    summary = summarize([r for events in per_client for r in events], clients)
    summary["connect_s"] = round(connect_s, 3)
    summary["ephemeral_events_per_client"] = sum(
        1 for r in listeners[0].received if r.event["type"] in EPHEMERAL_TYPES
    )
    summary["bytes_per_client"] = sum(r.size for r in per_client[0])
    return summary, schedule_of(per_client[0])


async def run_baseline(clients: int, schedule: list[dict[str, Any]]) -> dict[str, Any]:
    """The same messages, sizes and pace through a bare ``websockets`` broadcast server."""
    if not schedule:
        raise ValueError("an empty schedule")
    with tempfile.TemporaryDirectory(prefix="openinspect-bench-ws-") as tmp:
        path = Path(tmp) / "schedule.json"
        path.write_text(json.dumps({"clients": clients, "messages": schedule}))
        pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.ws_baseline",
            str(path),
            cwd=REPO_ROOT,
            env=os.environ | {"PYTHONPATH": os.pathsep.join(pythonpath)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        listeners: list[Listener] = []
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), CONNECT_TIMEOUT_S)
            if not line:
                raise RuntimeError("the baseline server exited before it listened")
            url = f"ws://{LOOPBACK}:{json.loads(line)['port']}"

            async def connect() -> Listener:
                return Listener.start(await websockets.connect(url, max_size=CLIENT_MAX_BYTES))

            listeners = await open_listeners(clients, connect)
            last = len(schedule)
            timeout_s = BASELINE_TIMEOUT_S + float(schedule[-1]["offset_s"])
            with gc_paused():
                await asyncio.gather(
                    *(lst.wait_for(lambda e: e["seq"] == last, timeout_s) for lst in listeners)
                )
        finally:
            await close_all(listeners)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return summarize([r for lst in listeners for r in lst.received], clients)


async def _run_real_all(
    env: BenchEnv, client_counts: Sequence[int], turns: int
) -> tuple[dict[int, dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    real: dict[int, dict[str, Any]] = {}
    schedules: dict[int, list[dict[str, Any]]] = {}
    for n in client_counts:
        progress(f"fan-out: {n} client(s), {turns} turns")
        real[n], schedules[n] = await run_real(env, n, turns)
        progress(
            f"fan-out {n}: {real[n]['events']} events, {real[n]['events_per_s']}/s, "
            f"p99 {real[n]['p99_latency_ms']} ms"
        )
    return real, schedules


async def run(
    client_counts: Sequence[int], turns: int, env: BenchEnv | None = None
) -> dict[str, Any]:
    """The real server (``env``, or one of its own) for each client count, then the baseline
    replaying each run's events."""
    if env is not None:
        real, schedules = await _run_real_all(env, client_counts, turns)
    else:
        async with bench_env("fanout") as own:
            real, schedules = await _run_real_all(own, client_counts, turns)
    baseline: dict[int, dict[str, Any]] = {}
    for n in client_counts:
        progress(f"baseline websockets: {n} client(s), {len(schedules[n])} messages")
        baseline[n] = await run_baseline(n, schedules[n])
        progress(f"baseline {n}: p99 {baseline[n]['p99_latency_ms']} ms")
    return {
        **{f"clients_{n}": real[n] for n in client_counts},
        "turns": turns,
        "prompts": len(split_turns(turns)),
        "baseline_websockets": {f"clients_{n}": baseline[n] for n in client_counts},
        "ratio_p99_to_baseline": {
            f"clients_{n}": ratio(real[n]["p99_latency_ms"], baseline[n]["p99_latency_ms"])
            for n in client_counts
        },
    }
