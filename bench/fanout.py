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
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.common import (
    LOOPBACK,
    BenchEnv,
    bench_env,
    fanout_event,
    gc_paused,
    ms,
    offered,
    parse_ts,
    percentile,
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


@dataclass
class Recorder:
    """A subscribed socket that keeps every frame it reads with its receive time; frames are
    parsed after the run, so a client costs the measurement as little as possible."""

    ws: ClientConnection
    frames: list[tuple[float, str | bytes]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    last_seq: int = 0
    """The seq whose frame sets ``done`` (the last one offered)."""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> Recorder:
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append((time.time(), raw))
                if self.last_seq and f'"seq":{self.last_seq},' in str(raw):
                    self.done.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.done.set()  # closed (cut off): nothing more will come

    def events(self) -> list[tuple[float, dict[str, Any]]]:
        out = []
        for at, raw in self.frames:
            message = json.loads(raw)
            if message.get("type") == "event":
                out.append((at, message["event"]))
        return out

    @property
    def cut_off(self) -> bool:
        return self.ws.close_code is not None and self.ws.close_code != 1000

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


async def open_recorders(n: int, opener: Callable[[], Awaitable[Recorder]]) -> list[Recorder]:
    """``n`` recorders, at most ``CONNECT_CONCURRENCY`` connecting at a time; all closed if one
    fails."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    opened: list[Recorder] = []

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


async def close_all(recorders: Sequence[Recorder]) -> None:
    await asyncio.gather(*(r.close() for r in recorders), return_exceptions=True)


async def _drained(recorders: Sequence[Recorder]) -> None:
    """Wait until every client got the last event or was cut off, or the drain time is over."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            await asyncio.gather(*(rec.done.wait() for rec in recorders))


def _expect(recorders: Sequence[Recorder], last_seq: int) -> None:
    for rec in recorders:
        rec.last_seq = last_seq


def summarize(
    recorders: Sequence[Recorder], first_seq: int, count: int, rate: float
) -> dict[str, Any]:
    """Delivery of events ``first_seq .. first_seq + count - 1`` to every recorder, timed from
    the stamp of the first event offered to the last receipt."""
    latencies: list[float] = []
    started, last = float("inf"), 0.0
    for rec in recorders:
        for at, event in rec.events():
            if first_seq <= int(event.get("seq", 0)) < first_seq + count:
                stamp = parse_ts(str(event["ts"]))
                latencies.append(at - stamp)
                started, last = min(started, stamp), max(last, at)
    wall = last - started if latencies else 0.0
    expected = count * len(recorders)
    out: dict[str, Any] = {
        "offered_per_s": rate,
        "events": count,
        "delivered": len(latencies),
        "delivered_share": round(len(latencies) / expected, 3),
        "cut_off_clients": sum(1 for r in recorders if r.cut_off),
        "wall_s": round(wall, 3),
        "delivered_per_s": round(len(latencies) / wall, 1) if wall > 0 else None,
    }
    if latencies:
        out |= {
            "p50_latency_ms": ms(percentile(latencies, 50)),
            "p99_latency_ms": ms(percentile(latencies, 99)),
            "max_latency_ms": ms(max(latencies)),
        }
    return out


async def run_real(
    env: BenchEnv, redis: Any, clients: int, rate: float, seconds: float
) -> dict[str, Any]:
    """``clients`` subscribers of a new session; ``rate × seconds`` events offered on its
    channel of the server's bus."""
    count = max(1, round(rate * seconds))
    async with env.client() as client:
        created = await client.create_session(repo=str(env.origin), title=f"fanout {clients}")
        session_id = str(created["session"]["id"])

        async def opener() -> Recorder:
            ws = await client.connect(session_id)
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                while json.loads(await ws.recv()).get("type") != "subscribed":
                    pass
            return Recorder(ws).start()

        recorders = await open_recorders(clients, opener)
    try:
        await asyncio.sleep(SETTLE_S)
        base = 1_000_000  # above any seq the session has: none is taken for a replayed one
        channel = f"openinspect:session:{session_id}"

        async def send(seqs: range) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for seq in seqs:
                    event = fanout_event(base + seq, EVENT_CHARS)
                    pipe.publish(channel, json.dumps({"kind": "event", "event": event}))
                await pipe.execute()

        _expect(recorders, base + count)
        with gc_paused():
            await offered(rate, count, send)
            await _drained(recorders)
    finally:
        await close_all(recorders)
    return summarize(recorders, base + 1, count, rate)


async def run_baseline(
    clients: int, rate: float, seconds: float, compression: bool
) -> dict[str, Any]:
    """The same offer through a bare ``websockets`` broadcast server."""
    count = max(1, round(rate * seconds))
    plan = {
        "clients": clients,
        "rate": rate,
        "count": count,
        "size": EVENT_CHARS,
        "compression": compression,
    }
    with tempfile.TemporaryDirectory(prefix="openinspect-bench-ws-") as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(plan))
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
        recorders: list[Recorder] = []
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), CONNECT_TIMEOUT_S)
            if not line:
                raise RuntimeError("the baseline server exited before it listened")
            url = f"ws://{LOOPBACK}:{json.loads(line)['port']}"

            async def opener() -> Recorder:
                return Recorder(await websockets.connect(url, max_size=CLIENT_MAX_BYTES)).start()

            recorders = await open_recorders(clients, opener)
            _expect(recorders, count)
            with gc_paused():
                await asyncio.sleep(count / rate)
                await _drained(recorders)
        finally:
            await close_all(recorders)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return summarize(recorders, 1, count, rate)


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
