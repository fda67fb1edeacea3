"""The whole benchmark run: configuration, the order of the parts, and the JSON result."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import (
    boxcost,
    cli_start,
    events,
    failover,
    fanout,
    image,
    latency,
    pool,
    server_start,
    sessions_per_process,
    snapshot,
    web,
)
from bench.common import bench_env, machine, progress

TOTAL_TIMEOUT_S = 1500.0
"""Hard stop of a whole run; a normal run takes a few minutes at most."""
PARTS = (
    "latency",
    "cli",
    "fanout",
    "server_start",
    "web",
    "failover",
    "sessions",
    "events",
    "snapshot",
    "image",
    "pool",
    "boxcost",
)
"""The parts of a run, in the order they run (``--only`` picks some)."""


@dataclass(frozen=True)
class Config:
    samples: int = 8
    """Sessions for the latency part; each gives one cold and one warm sample."""
    baseline_samples: int = 20
    """Runs of the bare ``bwrap … true`` baseline."""
    clients: tuple[int, ...] = field(default=(1, 10, 100))
    """Client counts of the fan-out part."""
    rates: tuple[int, ...] = field(default=(250, 1000, 4000))
    """Offered event rates of the fan-out part, per second."""
    fanout_s: float = 2.0
    """Seconds of events offered at each rate."""
    web_samples: int = 5
    """Openings of the 5,000-event session in the browser (and of the baseline session)."""
    cli_samples: int = 10
    """Runs of each CLI command (and of ``python -c pass``) for ``cli_start_ms``."""
    start_samples: int = 5
    """Starts of the server (and of a bare uvicorn server) for ``server_start_ms``."""
    failover_samples: int = 3
    """Owner kills for ``failover_s`` (each one restarts a replica)."""
    streaming_sessions: int = 50
    """Sessions streaming at once for ``sessions_per_process``."""
    stream_s: float = sessions_per_process.STREAM_S
    """How long each of them streams its answer, in seconds."""
    event_sessions: int = 50
    """Concurrent writers (sessions) of ``events_per_s``."""
    events_per_session: int = 100
    """Durable events each of them appends."""
    snapshot_samples: int = 3
    """Sessions for ``snapshot_restore_ratio``; each gives a fresh and a restored sample."""
    image_samples: int = 3
    """Sessions started from the repo image (and fresh ones, and ``git clone --local`` runs)
    for ``repo_image_cold_start_ms``."""
    pool_samples: int = 5
    """Pooled sessions for ``pool_claim_ms`` and ``cold_to_warm_ratio`` (and as many fresh)."""
    box_count: int = boxcost.BOXES
    """Idle boxes at once for ``box_memory_mb``."""
    box_prompt_samples: int = boxcost.PROMPT_SAMPLES
    """Prompts (awake, then after idle) per model delay for the first tool call after idle."""
    timeout_s: float = TOTAL_TIMEOUT_S
    share_server: bool = False
    """One server for both parts (faster; the smoke test) instead of a fresh one for each."""
    parts: tuple[str, ...] = PARTS
    """The parts to run; the result has the keys of those only."""


async def run(config: Config) -> dict[str, Any]:
    """Run every benchmark and return the result object (see ``bench/__init__.py``)."""
    started = time.monotonic()
    wanted = set(config.parts)
    found: dict[str, Any] = {}
    async with asyncio.timeout(config.timeout_s):
        if wanted & {"latency", "cli"}:
            async with contextlib.AsyncExitStack() as stack:
                env = (
                    await stack.enter_async_context(bench_env("all"))
                    if config.share_server
                    else None
                )
                if "latency" in wanted:
                    found |= await latency.run(config.samples, config.baseline_samples, env)
                if "cli" in wanted:
                    found["cli_start_ms"] = await cli_start.run(config.cli_samples, env)
        # Its own servers in any case: they run with a Redis bus the bench publishes on.
        if "fanout" in wanted:
            found["fanout"] = await fanout.run(config.clients, config.rates, config.fanout_s)
        if "server_start" in wanted:
            found["server_start_ms"] = await server_start.run(config.start_samples)
        # Its own server in any case: seeding the long session restarts the server.
        if "web" in wanted:
            found["web_open_5000_events_ms"] = await web.run(config.web_samples)
        # Two replicas on Postgres and Redis, and a server of its own.
        if "failover" in wanted:
            found["failover_s"] = await failover.run(config.failover_samples)
        if "sessions" in wanted:
            found["sessions_per_process"] = await sessions_per_process.run(
                config.streaming_sessions, config.stream_s
            )
        # In this process: the event log over SQLite and Postgres.
        if "events" in wanted:
            found["events_per_s"] = await events.run(
                config.event_sessions, config.events_per_session
            )
        # Its own server: the idle reaper stops boxes within a second there.
        if "snapshot" in wanted:
            found["snapshot_restore"] = await snapshot.run(config.snapshot_samples)
        # Its own server: the image builder checks every half second there.
        if "image" in wanted:
            found["repo_image"] = await image.run(config.image_samples)
        # Its own server: a registered repo with a pool of one box.
        if "pool" in wanted:
            found["pool"] = await pool.run(config.pool_samples)
        # Real boxes on a bridge of its own, then a server of its own.
        if "boxcost" in wanted:
            found["boxcost"] = await boxcost.run(
                config.box_count, prompt_samples=config.box_prompt_samples
            )
    elapsed = time.monotonic() - started
    progress(f"done in {elapsed:.1f} s")
    return {
        **found,
        "machine": machine(),
        "config": {
            **asdict(config),
            "clients": list(config.clients),
            "rates": list(config.rates),
            "parts": list(config.parts),
        },
        "runtime_s": round(elapsed, 1),
    }
