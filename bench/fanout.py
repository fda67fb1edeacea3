"""Fan-out at fixed offered rates: N WebSocket clients of one session while a driver publishes
events onto the server's bus at a fixed rate, against a bare ``websockets.broadcast`` server
sending the same events at the same rate to N clients.

The real server runs with a Redis bus; the driver publishes ``{"kind": "event", …}`` envelopes
on the session's channel, exactly what an append publishes, so everything from the bus to the
client's socket is the server's own path (its subscription, encoding, per-client queues and
sends). Event ``i`` is due at ``i / rate`` whatever the clients' pace (``common.offered``),
stamped when it is published; a client's latency for it is its receive time minus that stamp.
For each client count and each offered rate, fresh clients subscribe and ``rate × seconds``
events are offered; the delivered rate is every client's events over the time from the first
offer to the last receipt. The baseline (``ws_baseline``) does the same with nothing between
the clock and ``websockets.broadcast``. ``ratio_delivered_to_baseline`` compares the two at each
offered rate; at a rate both keep up with it is 1 by construction, and past what a server can
take both fall behind in their own ways, so the headline ``ratio`` per client count is of
capacities: the most either delivered at any of the offered rates.

Both servers are read by the same receivers, N sans-I/O clients in a process of their own
(:mod:`bench.receivers`), which read every frame as it arrives (so backpressure is real) and
parse frames only after the run: with full ``websockets`` clients in this process, 100 clients
× 1,000 frames/s saturated the harness before either server (the bare baseline's p99 at
1,000/s and 100 clients was 313 ms with them, 7 ms with these on the same 2 cores).

Both servers use the same compression setting (the server's ``server.ws_compression``);
``compression`` compares the real server with it on and off at the largest client count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    LOOPBACK,
    BenchEnv,
    bench_env,
    fanout_event,
    gc_paused,
    offered,
    progress,
    ratio,
)
from openinspect.settings import ServerSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("OPENINSPECT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CONNECT_CONCURRENCY = 10
CONNECT_TIMEOUT_S = 60.0
SETTLE_S = 0.5
"""Pause between the last client joining and the first offer, so join traffic is over."""
DRAIN_TIMEOUT_S = 15.0
"""How long clients may take to receive the rest once everything was offered."""
EVENT_CHARS = 400
"""About the size of a typical durable event frame (an ``agent-text`` or ``tool-call``)."""
CLIENT_MAX_BYTES = 16 * 1024 * 1024
LATENCY_RATE = 1000
"""The offered rate of the latency goal, with the largest client count."""
GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0


@contextlib.asynccontextmanager
async def receiving(
    clients: Sequence[dict[str, str | None]], first_seq: int, count: int, limit_s: float
) -> AsyncIterator[Callable[[], Awaitable[dict[str, Any]]]]:
    """The receivers process (:mod:`bench.receivers`) with ``clients`` connected and ready;
    yields the wait for its summary of seqs ``first_seq .. first_seq + count - 1``."""
    plan = {
        "clients": list(clients),
        "first_seq": first_seq,
        "count": count,
        "max_bytes": CLIENT_MAX_BYTES,
        "limit_s": limit_s,
    }
    async with _bench_process("bench.receivers", plan) as proc:
        assert proc.stdout is not None
        stdout = proc.stdout

        async def result() -> dict[str, Any]:
            line = await asyncio.wait_for(stdout.readline(), limit_s + CONNECT_TIMEOUT_S)
            if not line:
                raise RuntimeError("the receivers exited without a summary")
            return dict(json.loads(line))

        line = await asyncio.wait_for(stdout.readline(), CONNECT_TIMEOUT_S)
        if not json.loads(line or b"{}").get("ready"):
            raise RuntimeError("the receivers exited before every client was ready")
        yield result


@contextlib.asynccontextmanager
async def _bench_process(
    module: str, plan: dict[str, Any]
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m module PLAN.json`` with its stdout piped, waited for (or killed) on exit."""
    with tempfile.TemporaryDirectory(prefix="openinspect-bench-") as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(plan))
        pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            str(path),
            cwd=REPO_ROOT,
            env=os.environ | {"PYTHONPATH": os.pathsep.join(pythonpath)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def run_real(
    env: BenchEnv, redis: Any, clients: int, rate: float, seconds: float
) -> dict[str, Any]:
    """``clients`` subscribers of a new session; ``rate × seconds`` events offered on its
    channel of the server's bus."""
    count = max(1, round(rate * seconds))
    base = 1_000_000  # above any seq the session has: none is taken for a replayed one
    async with env.client() as client:
        created = await client.create_session(repo=str(env.origin), title=f"fanout {clients}")
        session_id = str(created["session"]["id"])
        subscribers: list[dict[str, str | None]] = []
        for _ in range(clients):
            minted = await client.request("POST", f"/api/sessions/{session_id}/ws-token")
            hello = {"type": "subscribe", "token": minted["token"], "batch": True}
            subscribers.append({"url": str(minted["url"]), "hello": json.dumps(hello)})
    channel = f"openinspect:session:{session_id}"

    async def send(seqs: range) -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for seq in seqs:
                event = fanout_event(base + seq, EVENT_CHARS)
                pipe.publish(channel, json.dumps({"kind": "event", "event": event}))
            await pipe.execute()

    async with receiving(subscribers, base + 1, count, _limit_s(rate, count)) as result:
        await asyncio.sleep(SETTLE_S)
        with gc_paused():
            await offered(rate, count, send)
        return {"offered_per_s": rate, **await result()}


def _limit_s(rate: float, count: int) -> float:
    """How long the receivers wait for the last event once all are ready."""
    return SETTLE_S + count / rate + DRAIN_TIMEOUT_S


async def run_baseline(
    clients: int, rate: float, seconds: float, compression: bool
) -> dict[str, Any]:
    """The same offer through a bare ``websockets`` broadcast server, to the same receivers."""
    count = max(1, round(rate * seconds))
    plan = {
        "clients": clients,
        "rate": rate,
        "count": count,
        "size": EVENT_CHARS,
        "compression": compression,
    }
    async with _bench_process("bench.ws_baseline", plan) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), CONNECT_TIMEOUT_S)
        if not line:
            raise RuntimeError("the baseline server exited before it listened")
        url = f"ws://{LOOPBACK}:{json.loads(line)['port']}"
        subscribers: list[dict[str, str | None]] = [{"url": url, "hello": None}] * clients
        async with receiving(subscribers, 1, count, _limit_s(rate, count)) as result:
            return {"offered_per_s": rate, **await result()}


def _best(runs: dict[str, dict[str, Any]]) -> float:
    """The most events delivered per second (to all clients together) at any offered rate."""
    return max(float(run["delivered_per_s"] or 0) for run in runs.values())


async def _check_redis() -> Any:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except OSError as exc:
        await redis.aclose()
        raise RuntimeError(
            f"the fan-out bench publishes on the server's bus and needs Redis at {REDIS_URL} "
            f"(set OPENINSPECT_BENCH_REDIS_URL): {exc}"
        ) from exc
    return redis


def _bus_env(compression: bool) -> dict[str, str]:
    return {
        "OPENINSPECT_BUS_URL": REDIS_URL,
        "OPENINSPECT_SERVER__WS_COMPRESSION": "true" if compression else "false",
    }


async def _real_runs(
    clients: Sequence[int], rates: Sequence[float], seconds: float, compression: bool
) -> dict[str, dict[str, Any]]:
    redis = await _check_redis()
    try:
        async with bench_env("fanout", extra_env=_bus_env(compression)) as env:
            out: dict[str, dict[str, Any]] = {}
            for n in clients:
                for rate in rates:
                    progress(f"fan-out: {n} client(s) at {rate:g} events/s")
                    got = await run_real(env, redis, n, rate, seconds)
                    out.setdefault(f"clients_{n}", {})[f"rate_{rate:g}"] = got
                    progress(f"  {got['delivered_per_s']}/s, p99 {got.get('p99_latency_ms')} ms")
            return out
    finally:
        await redis.aclose()


async def run(clients: Sequence[int], rates: Sequence[float], seconds: float) -> dict[str, Any]:
    """The real server and the baseline at each client count and offered rate, then the real
    server with the other compression setting at the largest count and highest rate."""
    compression = ServerSettings().ws_compression
    real = await _real_runs(clients, rates, seconds, compression)
    baseline: dict[str, dict[str, Any]] = {}
    for n in clients:
        for rate in rates:
            progress(f"baseline websockets: {n} client(s) at {rate:g} events/s")
            got = await run_baseline(n, rate, seconds, compression)
            baseline.setdefault(f"clients_{n}", {})[f"rate_{rate:g}"] = got
            progress(f"  {got['delivered_per_s']}/s, p99 {got.get('p99_latency_ms')} ms")
    ratios = {
        key: {
            r: ratio(runs[r]["delivered_per_s"] or 0, baseline[key][r]["delivered_per_s"] or 0)
            for r in runs
        }
        for key, runs in real.items()
    }
    top, most = f"rate_{max(rates):g}", f"clients_{max(clients)}"
    other = await _real_runs([max(clients)], [max(rates)], seconds, not compression)
    result: dict[str, Any] = {
        **real,
        "offered_rates_per_s": list(rates),
        "seconds_per_rate": seconds,
        "event_chars": EVENT_CHARS,
        "compression": compression,
        "baseline_websockets": baseline,
        "ratio_delivered_to_baseline": ratios,
        "ratio": {key: ratio(_best(runs), _best(baseline[key])) for key, runs in real.items()},
        "ratio_is": "the most delivered/s at any offered rate, over the baseline's",
        "other_compression": {
            "compression": not compression,
            most: {top: other[most][top]},
            "ratio_to_chosen": ratio(
                other[most][top]["delivered_per_s"] or 0, real[most][top]["delivered_per_s"] or 0
            ),
        },
        "goal_ratio": GOAL_RATIO,
        "goal_p99_ms": GOAL_P99_MS,
    }
    latency_rate = f"rate_{LATENCY_RATE:g}"
    if latency_rate in real[most]:
        p99 = real[most][latency_rate].get("p99_latency_ms")
        result[f"p99_ms_at_{LATENCY_RATE}_per_s_{most}"] = p99
        result[f"baseline_p99_ms_at_{LATENCY_RATE}_per_s_{most}"] = baseline[most][
            latency_rate
        ].get("p99_latency_ms")
        result["meets_goal_p99"] = p99 is not None and p99 < GOAL_P99_MS
    result["meets_goal_ratio"] = (result["ratio"][most] or 0) >= GOAL_RATIO
    return result
