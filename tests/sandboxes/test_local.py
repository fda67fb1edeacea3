"""What the local providers share: a sandbox's output reaches its log through a pipe, capped."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

from openinspect.runtime.address import unix_url
from openinspect.sandboxes.base import SandboxSpec
from openinspect.sandboxes.local import LOG_CUT_NOTICE, MAX_LOG_BYTES, LocalProcesses


def _spec(tmp_path: Path, n: int | None = None) -> SandboxSpec:
    suffix = "" if n is None else str(n)
    workspace = tmp_path / f"ws{suffix}"
    workspace.mkdir()
    return SandboxSpec(
        sandbox_id=f"sbx-{suffix or 'local'}",
        workspace_dir=workspace,
        clone_source=str(tmp_path),
        clone_source_is_path=True,
        base_branch="main",
        token="tok",
        bridge_url=unix_url(str(tmp_path / "bridge.sock")),
    )


async def test_output_is_a_pipe_drained_into_the_log(tmp_path: Path) -> None:
    procs = LocalProcesses("test")
    log_path = tmp_path / "ws.log"
    script = "echo out; echo err >&2; readlink /proc/self/fd/1; test -p /proc/self/fd/2 && echo p"
    handle = await procs.start(_spec(tmp_path), ["sh", "-c", script], {}, log_path=log_path)

    assert await procs.wait(handle) == 0
    await procs.stop(handle)

    lines = log_path.read_text().splitlines()
    assert lines[:2] == ["out", "err"]
    assert lines[2].startswith("pipe:")  # not the log file, which a box could reopen
    assert lines[3] == "p"


async def test_the_log_keeps_its_cap_and_the_sandbox_is_not_blocked(tmp_path: Path) -> None:
    procs = LocalProcesses("test")
    log_path = tmp_path / "ws.log"
    too_much = MAX_LOG_BYTES + 3 * 1024 * 1024
    argv = ["sh", "-c", f"head -c {too_much} /dev/zero; echo done > done.txt"]
    handle = await procs.start(_spec(tmp_path), argv, {"PATH": os.defpath}, log_path=log_path)

    assert await procs.wait(handle) == 0  # it wrote everything: the drain kept reading
    await procs.stop(handle)

    assert (handle.workspace_dir / "done.txt").read_text() == "done\n"
    assert log_path.stat().st_size == MAX_LOG_BYTES + len(LOG_CUT_NOTICE)
    assert log_path.read_bytes().endswith(LOG_CUT_NOTICE)


async def test_live_processes_park_no_thread_each(tmp_path: Path) -> None:
    """A sandbox lives for an hour: awaiting its exit must not hold a thread (asyncio's child
    watcher on Python 3.11 parks one in ``waitpid`` per process)."""
    procs = LocalProcesses("test")
    before = threading.active_count()
    handles = [
        await procs.start(_spec(tmp_path, n), ["sleep", "60"], {}, log_path=tmp_path / f"{n}.log")
        for n in range(8)
    ]
    waits = [asyncio.create_task(procs.wait(h)) for h in handles]
    try:
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in waits)
        assert threading.active_count() <= before, [t.name for t in threading.enumerate()]
    finally:
        for handle in handles:
            await procs.stop(handle, grace_s=1)
    codes = await asyncio.wait_for(asyncio.gather(*waits), 10)
    assert codes == [-signal.SIGTERM] * len(handles)  # each exit was seen, with its status
