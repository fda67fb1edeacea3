"""Shared pieces of the benchmarks: percentiles, the machine description, and a bench environment
(a scripted LLM, a sample repo and a real server in a child process, all cleaned up on exit)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from websockets.asyncio.client import ClientConnection

from openinspect.cli.client import Client, Target
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import make_sample_repo
from openinspect.testing.server import ServerProcess

Event = dict[str, Any]
Script = dict[str, Any]

MODEL = "openai-compatible:scripted"
LOOPBACK = "127.0.0.1"
PROMPT_TIMEOUT_S = 120.0
"""Upper bound on one prompt, from POST to ``prompt-finished``."""

console = Console(stderr=True, log_path=False)
"""Progress goes to stderr; stdout carries only the JSON result."""


def progress(message: str) -> None:
    console.log(message)


def ms(seconds: float) -> float:
    """Seconds to milliseconds, 1 decimal."""
    return round(seconds * 1000, 1)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 < q < 100), linear interpolation between closest ranks, as
    ``statistics.quantiles(method="inclusive")``; a single value is its own percentile."""
    if not values:
        raise ValueError("percentile of no values")
    if len(values) == 1:
        return float(values[0])
    if float(q).is_integer():
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize_ms(values_s: Sequence[float]) -> dict[str, float | int]:
    """``{"p50", "p95", "n"}`` of durations given in seconds, reported in ms."""
    return {
        "p50": ms(percentile(values_s, 50)),
        "p95": ms(percentile(values_s, 95)),
        "n": len(values_s),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "implementation": sys.implementation.name,
    }


def parse_ts(ts: str) -> float:
    """An event's ISO ``ts`` as unix seconds."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def server_env(llm: ScriptedLLMServer) -> dict[str, str]:
    """Point the server at the scripted LLM, with bwrap sandboxes (as ``tests/conftest.py``)."""
    return {
        "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL": llm.openai_base_url,
        "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_API_KEY": "bench-not-a-secret",
        "OPENINSPECT_AGENT__DEFAULT_MODEL": MODEL,
        "OPENINSPECT_SANDBOX__PROVIDER": "bwrap",
        "OPENINSPECT_SERVER__HOST": LOOPBACK,
    }


@dataclass
class BenchEnv:
    """A running bench environment."""

    root: Path
    llm: ScriptedLLMServer
    origin: Path
    server: ServerProcess

    def client(self) -> Client:
        return Client(Target(self.server.url, self.server.token))


@contextlib.asynccontextmanager
async def bench_env(name: str, extra_env: dict[str, str] | None = None) -> AsyncIterator[BenchEnv]:
    """A temp dir, a scripted LLM, a sample repo and a server (its environment plus
    ``extra_env``); all torn down even on failure. The server log is printed to stderr if the
    block fails."""
    root = Path(tempfile.mkdtemp(prefix=f"openinspect-bench-{name}-"))
    llm = ScriptedLLMServer({"turns": []}, host=LOOPBACK)
    server: ServerProcess | None = None
    try:
        llm.start()
        repo_root = root / "repo"
        repo_root.mkdir()
        origin = await asyncio.to_thread(make_sample_repo, repo_root)
        server = ServerProcess(root / "home", env=server_env(llm) | (extra_env or {}))
        await asyncio.to_thread(server.start)
        if not server.url.startswith(f"http://{LOOPBACK}:"):
            raise RuntimeError(f"the server is not on loopback: {server.url}")
        try:
            yield BenchEnv(root, llm, origin, server)
        except BaseException:
            console.print(f"[red]{name} failed; server log tail:[/red]\n{server.log()}")
            raise
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
        await asyncio.to_thread(llm.stop)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Received:
    """One event as a client got it."""

    at: float
    """``time.time()`` when the message was read."""
    event: Event
    size: int
    """Length of the raw WebSocket message (characters)."""


@dataclass
class Listener:
    """A subscribed session socket that records every event it reads, in a background task."""

    ws: ClientConnection
    subscribed: dict[str, Any]
    received: list[Received] = field(default_factory=list)
    _waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Received]]] = field(
        default_factory=list
    )
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        client: Client,
        session_id: str,
        *,
        since_seq: int | None = None,
        timeout_s: float = 30.0,
    ) -> Listener:
        """Subscribe to a session (``since_seq`` as in the protocol) and start recording."""
        ws = await asyncio.wait_for(client.connect(session_id, since_seq=since_seq), timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    first = json.loads(await ws.recv())
                    if first.get("type") == "subscribed":
                        break
                    if first.get("type") == "error":
                        raise RuntimeError(f"subscribe failed: {first}")
        except BaseException:
            await ws.close()
            raise
        return cls.start(ws, first)

    @classmethod
    def start(cls, ws: ClientConnection, subscribed: dict[str, Any] | None = None) -> Listener:
        """Record the events of an already open socket (any server sending
        ``{"type": "event", "event": {...}}`` messages)."""
        listener = cls(ws, subscribed or {})
        listener._task = asyncio.create_task(listener._run())
        return listener

    @property
    def last_seq(self) -> int:
        return int(self.subscribed.get("last_seq") or 0)

    async def _run(self) -> None:
        try:
            async for raw in self.ws:
                at = time.time()
                message = json.loads(raw)
                if message.get("type") != "event":
                    continue
                got = Received(at, message["event"], len(raw))
                self.received.append(got)
                for pair in list(self._waiters):
                    predicate, future = pair
                    if not future.done() and predicate(got.event):
                        future.set_result(got)
                        self._waiters.remove(pair)
        finally:
            for _, future in self._waiters:
                if not future.done():
                    future.set_exception(ConnectionError("the session socket closed"))

    async def wait_for(self, predicate: Callable[[Event], bool], timeout_s: float) -> Received:
        """The first event (already received or to come) that matches."""
        for got in self.received:
            if predicate(got.event):
                return got
        future: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        if self._task is not None and self._task.done():
            self._waiters.remove((predicate, future))
            raise ConnectionError("the session socket is closed")
        async with asyncio.timeout(timeout_s):
            return await future

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection in this (the measuring) process while inside: with tens of
    thousands of received events alive, a full collection stalls every client for tens of ms
    and would be charged to the server under test."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def finished(prompt_id: str) -> Callable[[Event], bool]:
    return lambda e: e.get("type") == "prompt-finished" and e.get("prompt_id") == prompt_id


def fanout_event(seq: int, size: int) -> Event:
    """A durable event of the fan-out benches, stamped now, padded to about ``size``
    characters as a frame (``{"type": "event", "event": …}``)."""
    event: Event = {
        "v": 1,
        "session_id": "ses_fanout",
        "seq": seq,
        "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "prompt_id": "prm_fanout",
        "type": "agent-text",
        "part_id": f"prm_fanout.{seq}.0",
        "text": "",
    }
    bare = len(json.dumps({"type": "event", "event": event}))
    event["text"] = _prose(seq, max(0, size - bare))
    return event


_WORDS = [
    "the",
    "test",
    "file",
    "module",
    "function",
    "returns",
    "value",
    "error",
    "check",
    "branch",
    "commit",
    "change",
    "line",
    "call",
    "sandbox",
    "session",
    "prompt",
    "agent",
    "output",
    "result",
    "path",
    "config",
    "update",
    "fixed",
    "read",
    "write",
    "run",
    "build",
    "calc.py",
    "add",
    "subtract",
    "tests",
    "passed",
    "failed",
    "import",
    "class",
    "self",
    "None",
    "True",
    "False",
    "0",
    "1",
    "2",
    "42",
]


def _prose(seed: int, chars: int) -> str:
    """``chars`` characters of word salad, different for each seed: it compresses about as
    well as an agent's text (a run of one letter would flatter compression)."""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


OFFER_TICK_S = 0.001
"""The driver's clock: messages due within a tick go out together."""


async def offered(rate: float, count: int, send: Callable[[range], Awaitable[None]]) -> float:
    """Offer ``count`` messages (seq 1..count) at ``rate`` per second: message ``i`` is due at
    ``(i - 1) / rate`` after the start, whatever the receivers' pace (``send`` gets the seqs
    due, in order). Returns the seconds it took; more than ``count / rate`` means the sender
    itself could not keep the rate."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    while sent < count:
        due = min(count, int((loop.time() - started) * rate) + 1)
        if due > sent:
            await send(range(sent + 1, due + 1))
            sent = due
        else:
            await asyncio.sleep(max(0.0, started + sent / rate - loop.time(), OFFER_TICK_S))
    return loop.time() - started
