"""CLI start-up: ``cli_start_ms``.

Wall time of ``python -m openinspect --help`` and of ``python -m openinspect sessions list``
(against the bench server, over loopback), each a fresh interpreter as a person's shell starts
it, against ``python -c pass`` measured in the same run: the ratio is what the CLI adds to the
interpreter. The three commands are interleaved sample by sample, so that a machine getting
busier slows them alike; one untimed run of each comes first, with bytecode caches allowed, so
the timed runs load ``.pyc`` files as an installed CLI does after its first start.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import BenchEnv, bench_env, progress, ratio, summarize_ms

COMMANDS: dict[str, tuple[str, ...]] = {
    "help": ("-m", "openinspect", "--help"),
    "sessions_list": ("-m", "openinspect", "sessions", "list"),
    "baseline_python_pass": ("-c", "pass"),
}
COMMAND_TIMEOUT_S = 60.0


def _env(env: BenchEnv) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE would make every start compile every module from source (seconds),
    # which is not how an installed CLI runs after its first start.
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENINSPECT_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    return clean | {
        "OPENINSPECT_URL": env.server.url,
        "OPENINSPECT_TOKEN": env.server.token,
        "OPENINSPECT_HOME": str(env.root / "cli-home"),
        "COLUMNS": "200",
    }


def time_once(args: tuple[str, ...], env: dict[str, str]) -> float:
    """Seconds from spawning ``python ARGS`` to its exit; a failing command fails the bench."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=COMMAND_TIMEOUT_S,
        check=True,
    )
    return time.perf_counter() - started


def measure(env: BenchEnv, n: int) -> dict[str, list[float]]:
    child_env = _env(env)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for args in COMMANDS.values():
        time_once(args, child_env)
    for _ in range(n):
        for name, args in COMMANDS.items():
            samples[name].append(time_once(args, child_env))
    return samples


def report(samples: dict[str, list[float]]) -> dict[str, Any]:
    base = summarize_ms(samples["baseline_python_pass"])
    out: dict[str, Any] = {name: summarize_ms(values) for name, values in samples.items()}
    for name in ("help", "sessions_list"):
        out[f"ratio_{name}_to_baseline"] = ratio(out[name]["p50"], base["p50"])
    out["ratios_are_of"] = "p50"
    return out


async def run(n: int, env: BenchEnv | None = None) -> dict[str, Any]:
    """``cli_start_ms`` on ``env`` or on a server of its own."""
    progress(f"cli start: --help, sessions list and python -c pass x{n}")
    if env is not None:
        return report(await asyncio.to_thread(measure, env, n))
    async with bench_env("cli") as own:
        return report(await asyncio.to_thread(measure, own, n))
