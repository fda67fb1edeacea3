"""Server start-up: ``server_start_ms``.

Wall time from spawning ``python -m openinspect serve`` (a fresh home, an empty SQLite database,
the default sandbox backend, model keys for Anthropic and OpenAI configured so that their
clients are ones the server would load) to its first ``200`` on ``/healthz``, against a bare
uvicorn server answering one route (:mod:`bench.bare_server`) started and polled the same way
in the same run. Both are polled every :data:`POLL_S` for the URL they write, then for the
answer. The two are interleaved sample by sample, after one untimed start of each (bytecode
caches allowed, as an installed server runs after its first start). The goal of the figure:
the server answers within :data:`GOAL_MS`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import LOOPBACK, progress, ratio, summarize_ms

GOAL_MS = 2000.0
POLL_S = 0.01
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
FAKE_KEY = "bench-not-a-secret"


def _clean_env() -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE would make every start compile every module from source.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENINSPECT_")
        and k not in ("PYTHONDONTWRITEBYTECODE", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }


def serve_command(root: Path) -> tuple[list[str], dict[str, str], Path]:
    """``openinspect serve`` in a fresh home under ``root``: (argv, env, its server.json)."""
    home = root / "home"
    env = _clean_env() | {
        "OPENINSPECT_HOME": str(home),
        "OPENINSPECT_SERVER__HOST": LOOPBACK,
        "OPENINSPECT_SERVER__PORT": "0",
        "OPENINSPECT_LOG_LEVEL": "warning",
        # Configured, never called: nothing sends a prompt. Loopback port 9 (discard).
        "OPENINSPECT_MODELS__ANTHROPIC_API_KEY": FAKE_KEY,
        "OPENINSPECT_MODELS__ANTHROPIC_BASE_URL": f"http://{LOOPBACK}:9",
        "OPENINSPECT_MODELS__OPENAI_API_KEY": FAKE_KEY,
        "OPENINSPECT_MODELS__OPENAI_BASE_URL": f"http://{LOOPBACK}:9/v1",
    }
    return [sys.executable, "-m", "openinspect", "serve"], env, home / "server.json"


def baseline_command(root: Path) -> tuple[list[str], dict[str, str], Path]:
    info = root / "bare.json"
    return [sys.executable, "-m", "bench.bare_server", str(info)], _clean_env(), info


COMMANDS: dict[str, Callable[[Path], tuple[list[str], dict[str, str], Path]]] = {
    "serve": serve_command,
    "baseline_bare_uvicorn": baseline_command,
}


def _answers(info: Path, pid: int) -> bool:
    try:
        data = json.loads(info.read_text())
    except (OSError, ValueError):
        return False  # not written yet
    if data.get("pid") != pid:
        return False  # a previous server's file
    try:
        return httpx.get(f"{data['url']}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def time_once(make: Callable[[Path], tuple[list[str], dict[str, str], Path]]) -> float:
    """Seconds from spawning the server to its first 200 on ``/healthz``; it is stopped after.
    A server that exits or does not answer in time fails the bench, with its output."""
    root = Path(tempfile.mkdtemp(prefix="openinspect-bench-start-"))
    log = root / "server.log"
    try:
        argv, env, info = make(root)
        with log.open("wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
            try:
                while not _answers(info, proc.pid):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{argv[1:]} exited: {log.read_text()[-2000:]}")
                    if time.perf_counter() - started > START_TIMEOUT_S:
                        raise TimeoutError(f"{argv[1:]} did not answer: {log.read_text()[-2000:]}")
                    time.sleep(POLL_S)
                elapsed = time.perf_counter() - started
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        return elapsed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for make in COMMANDS.values():
        time_once(make)
    for _ in range(n):
        for name, make in COMMANDS.items():
            samples[name].append(time_once(make))
    return samples


def report(samples: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {name: summarize_ms(values) for name, values in samples.items()}
    out["ratio_serve_to_baseline"] = ratio(out["serve"]["p50"], out["baseline_bare_uvicorn"]["p50"])
    out["ratios_are_of"] = "p50"
    out["goal_ms"] = GOAL_MS
    out["meets_goal"] = out["serve"]["p50"] <= GOAL_MS
    return out


async def run(n: int) -> dict[str, Any]:
    """``server_start_ms``: ``n`` starts of each, after one untimed start of each."""
    progress(f"server start: openinspect serve and a bare uvicorn server x{n}")
    return report(await asyncio.to_thread(measure, n))
