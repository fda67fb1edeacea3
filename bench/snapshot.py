"""``snapshot_restore_ratio``: the first tool result of a follow-up in a box restored from a
snapshot ÷ the first tool result of a new session in a fresh box, measured in the same run.

The repo's ``setup.sh`` does real work without a network: it makes a venv beside the repo and
pip-installs a package from a wheel directory committed in the repo (``--no-index
--find-links``, a local package cache). A fresh box clones, runs it and ``start.sh``; a restored
box unpacks the snapshot (the venv with its package included) and runs ``start.sh`` only.

Each sample session: a first prompt (the fresh sample, POST → first ``tool-result``); the idle
reaper snapshots and stops the box (``sessions.idle_stop_s`` is short here); a follow-up on this
host, whose workspace is still at the snapshot and is kept (``same_host``); the reaper stops that
box too, the bench deletes what the host keeps of the workspace (its files, image and snapshot
marker: a host that never ran the session), and a last follow-up unpacks the archive
(``from_archive``, the headline ``snapshot_restore_ratio``). The goal is a ratio of at most
:data:`RATIO_GOAL`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PROMPT_TIMEOUT_S,
    BenchEnv,
    Listener,
    Script,
    bench_env,
    finished,
    ms,
    progress,
    ratio,
    summarize_ms,
)
from openinspect.sandboxes.snapshots import marker_path
from openinspect.sandboxes.workspace_fs import image_path
from openinspect.testing.repos import git_output
from openinspect.testing.wheels import build_wheel

RATIO_GOAL = 0.1
IDLE_STOP_S = 1.0
WHEEL_MODULES = 300
"""Modules of the package setup.sh installs: pip unpacks, records and byte-compiles each."""
SETUP_SH = """set -e
python3 -m venv ../venv
../venv/bin/pip install -q --no-index --find-links wheels benchpkg
"""
CHECK = "../venv/bin/python -c 'import benchpkg; print(benchpkg.VALUE)'"
SCRIPT: Script = {
    "turns": [{"text": "Checking.", "tool_calls": [{"name": "bash", "args": {"command": CHECK}}]}],
    "final_text": "Done.",
}
STOP_TIMEOUT_S = 60.0


def add_setup(origin: Path, scratch: Path) -> None:
    """Commit a setup.sh and the wheel directory it installs from to ``origin``'s main."""
    work = scratch / "setup-work"
    git_output("clone", "--quiet", str(origin), str(work), cwd=scratch)
    build_wheel(work / "wheels", "benchpkg", modules=WHEEL_MODULES)
    (work / ".openinspect" / "setup.sh").write_text(SETUP_SH)
    git_output("add", ".", cwd=work)
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    git_output(*identity, "commit", "--quiet", "-m", "setup.sh installs benchpkg", cwd=work)
    git_output("push", "--quiet", "origin", "main", cwd=work)


async def _first_tool_result(
    env: BenchEnv, listener: Listener, session_id: str, kind: str
) -> float:
    """POST a prompt; seconds to its first ``tool-result``, which must show the package."""
    env.llm.reset(SCRIPT)
    async with env.client() as client:
        sent = time.time()
        prompt = await client.post_prompt(session_id, content=f"{kind} prompt")
    prompt_id = str(prompt["id"])
    done = await listener.wait_for(finished(prompt_id), PROMPT_TIMEOUT_S)
    if done.event.get("status") != "success":
        raise RuntimeError(f"{kind} prompt did not succeed: {done.event}")
    result = await listener.wait_for(
        lambda e: e.get("type") == "tool-result" and e.get("prompt_id") == prompt_id, 1.0
    )
    if result.event.get("exit_code") != 0 or "42" not in str(result.event.get("output")):
        raise RuntimeError(f"{kind} prompt: the package is not in the box: {result.event}")
    return result.at - sent


def _wipe_workspace(workspace: Path) -> None:
    """Remove what this host keeps of a stopped box's workspace (its files, its image, its
    snapshot marker), as on a host that never ran the session: only the archive has the work."""
    if os.path.ismount(workspace):
        raise RuntimeError("the stopped box's workspace is still mounted")
    image_path(workspace).unlink(missing_ok=True)
    marker_path(workspace).unlink()
    shutil.rmtree(workspace)


async def _idle_stop(listener: Listener, after_seq: int) -> int:
    """Wait for the reaper to snapshot and stop the box; returns the event's seq."""
    stopped = await listener.wait_for(
        lambda e: (
            e.get("type") == "sandbox-status"
            and e.get("status") == "stopped"
            and "snapshotted" in str(e.get("message"))
            and int(e["seq"]) > after_seq
        ),
        STOP_TIMEOUT_S,
    )
    return int(stopped.event["seq"])


async def _restored(env: BenchEnv, listener: Listener, session_id: str, kind: str) -> float:
    """A follow-up after an idle stop: seconds to its first tool result, in a restored box."""
    seen = await _idle_stop(
        listener, max((int(r.event["seq"]) for r in listener.received), default=0) - 1
    )
    if kind == "from_archive":
        await asyncio.to_thread(_wipe_workspace, env.root / "home" / "workspaces" / session_id)
    took = await _first_tool_result(env, listener, session_id, kind)
    ready = [
        r.event
        for r in listener.received
        if r.event.get("type") == "sandbox-status"
        and r.event.get("status") == "ready"
        and int(r.event["seq"]) > seen
    ]
    if not ready or "restored from the snapshot" not in str(ready[0].get("message")):
        raise RuntimeError(f"the {kind} follow-up's box was not restored: {ready}")
    return took


async def _sample(env: BenchEnv, title: str) -> tuple[float, float, float]:
    """(fresh, same host, from the archive) seconds to the first tool result, in one session."""
    async with env.client() as client:
        created = await client.create_session(repo=str(env.origin), title=title)
        session_id = str(created["session"]["id"])
        listener = await Listener.open(client, session_id, since_seq=0)
    try:
        fresh = await _first_tool_result(env, listener, session_id, "fresh")
        same_host = await _restored(env, listener, session_id, "same_host")
        from_archive = await _restored(env, listener, session_id, "from_archive")
    finally:
        await listener.close()
    return fresh, same_host, from_archive


async def run(samples: int) -> dict[str, Any]:
    """The ``snapshot_restore_ratio`` figures, from ``samples`` sessions (after one unrecorded)."""
    extra = {
        "OPENINSPECT_SESSIONS__IDLE_STOP_S": f"{IDLE_STOP_S:g}",
        # The bench watches the session (its socket is open): the watched limit applies.
        "OPENINSPECT_SESSIONS__IDLE_STOP_WATCHED_S": f"{IDLE_STOP_S:g}",
        "OPENINSPECT_SESSIONS__TIDY_INTERVAL_S": "0.5",
    }
    fresh: list[float] = []
    same_host: list[float] = []
    from_archive: list[float] = []
    async with bench_env("snapshot", extra) as env:
        await asyncio.to_thread(add_setup, env.origin, env.root)
        await _sample(env, "snapshot warm-up")  # the server's first boot pays one-time costs
        for i in range(samples):
            got = await _sample(env, f"snapshot {i}")
            fresh.append(got[0])
            same_host.append(got[1])
            from_archive.append(got[2])
            progress(
                f"snapshot {i + 1}/{samples}: fresh {ms(got[0])} ms, same host {ms(got[1])} "
                f"ms, from the archive {ms(got[2])} ms"
            )
    fresh_ms = summarize_ms(fresh)
    archive_ms, same_ms = summarize_ms(from_archive), summarize_ms(same_host)
    return {
        "snapshot_restore_ratio": ratio(archive_ms["p50"], fresh_ms["p50"]),
        "same_host_ratio": ratio(same_ms["p50"], fresh_ms["p50"]),
        "goal": RATIO_GOAL,
        "from_archive_first_tool_result_ms": archive_ms,
        "same_host_first_tool_result_ms": same_ms,
        "baseline_fresh_first_tool_result_ms": fresh_ms,
        "setup": f"venv + pip install --no-index of a {WHEEL_MODULES}-module wheel",
    }
