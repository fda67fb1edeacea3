"""What a box costs: ``box_memory_mb`` (PSS per idle bwrap box) and ``box_disk_mb`` (a clone's
disk against the mirror's).

*Memory.* Real bwrap boxes (:class:`~openinspect.sandboxes.bwrap.BwrapProvider`, a real bridge on
a Unix socket) boot the sample repo and sit idle; then the PSS of every process of each box
(bwrap's monitor, the box's init, the runtime and anything it runs) is summed from
``/proc/<pid>/smaps_rollup``. PSS divides a page shared by N processes by N, so the figure
depends on how many boxes share the interpreter's pages: it is reported with one box alone and
with :data:`BOXES` at once (the headline), with RSS beside it.

*Disk.* A repo with real history (:data:`HISTORY_COMMITS` commits of incompressible files) is
mirrored, a box clones it, and the disk its workspace's repo takes (``du``, blocks) is set against
the mirror's and against a plain ``git clone --local --no-hardlinks`` of the mirror (the baseline:
what a full copy of the history costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from bench.common import (
    PROMPT_TIMEOUT_S,
    BenchEnv,
    Listener,
    Script,
    bench_env,
    finished,
    progress,
    ratio,
    summarize_ms,
)
from openinspect.runtime.address import unix_url
from openinspect.runtime.protocol import BRIDGE_PATH, MAX_FRAME_BYTES
from openinspect.sandboxes.base import SandboxHandle, SandboxSpec
from openinspect.sandboxes.bridge import BridgeHub, SandboxConnection
from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.settings import Settings
from openinspect.testing.inloop import serving
from openinspect.testing.repos import git_output, make_sample_repo

BOXES = 10
GOAL_MB = 8.0
HIBERNATE_S = 1.0
"""``sandbox.bwrap.hibernate_s`` of the bench's boxes (the default is longer)."""
IDLE_S = HIBERNATE_S + 3.0
"""How long booted boxes sit idle before they are measured (heartbeats keep going)."""
BOOT_TIMEOUT_S = 120.0
HISTORY_COMMITS = 60
HISTORY_FILE_BYTES = 256 * 1024
"""Each commit rewrites a file of this many random bytes: a history git cannot compress."""
KIB = 1024
PROMPT_SAMPLES = 3
WAKE_GOAL_RATIO = 1.5
MODEL_TURN_MS = (0, 500)
"""How long the scripted model takes to ask for the tool: at once (the worst case for a wake
that starts with the prompt), and as a fast real model would."""


def _script(delay_ms: int) -> Script:
    call = {"name": "bash", "args": {"command": "true"}}
    return {
        "turns": [{"text": "Checking.", "tool_calls": [call], "delay_ms": delay_ms}],
        "final_text": "Done.",
    }


IDLE_RUNTIME_MARKER = "openinspect.runtime.idle"


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """``Pss`` and ``Rss`` of ``pid`` in KiB (zeros for a process that is gone)."""
    found = {"Pss": 0, "Rss": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in found:
                found[key] = int(rest.split()[0])
    return found


def command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.split(b"\0")[0].decode(errors="replace").rsplit("/", 1)[-1]


def box_memory(handles: list[SandboxHandle]) -> dict[str, Any]:
    """PSS and RSS per box (MiB), and per process kind, of the boxes of ``handles``."""
    per_box_pss, per_box_rss = [], []
    kinds: dict[str, list[int]] = {}
    for handle in handles:
        pss = rss = 0
        for pid in process_tree(handle.pid):  # type: ignore[attr-defined]
            mem = memory_kb(pid)
            pss += mem["Pss"]
            rss += mem["Rss"]
            kinds.setdefault(command_of(pid), []).append(mem["Pss"])
        per_box_pss.append(pss)
        per_box_rss.append(rss)
    n = len(handles)
    return {
        "boxes": n,
        "pss_mb_per_box": round(sum(per_box_pss) / n / KIB, 2),
        "rss_mb_per_box": round(sum(per_box_rss) / n / KIB, 2),
        "pss_mb_by_process": {k: round(sum(v) / n / KIB, 2) for k, v in sorted(kinds.items())},
    }


@contextlib.asynccontextmanager
async def _bridge(hub: BridgeHub) -> AsyncIterator[Path]:
    socket_dir = Path(tempfile.mkdtemp(prefix="oi-bench-bridge-"))
    socket = socket_dir / "bridge.sock"

    async def route(websocket: WebSocket) -> None:
        await hub.handle(websocket, websocket.headers)

    config = uvicorn.Config(
        Starlette(routes=[WebSocketRoute(BRIDGE_PATH, route)]),
        uds=str(socket),
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
        log_config=None,
        log_level="warning",
        lifespan="off",
    )
    try:
        async with serving(config):
            try:
                yield socket
            finally:
                await hub.close()
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


class _Boxes:
    """Boxes of one provider on one bridge, each waited for until it booted."""

    def __init__(self, provider: BwrapProvider, hub: BridgeHub, socket: Path, root: Path):
        self._provider = provider
        self._hub = hub
        self._socket = socket
        self._root = root
        self.handles: list[SandboxHandle] = []
        self.connections: list[SandboxConnection] = []

    async def start(self, mirror: Path, base_branch: str = "main") -> SandboxHandle:
        sandbox_id = f"sbx-{secrets.token_hex(5)}"
        token = secrets.token_urlsafe(24)
        conn = self._hub.register(sandbox_id, token)
        booted = asyncio.get_running_loop().create_future()

        async def on_message(message: Any) -> None:
            settled = message.get("type") == "boot" and message.get("phase") in ("ready", "failed")
            if settled and not booted.done():
                booted.set_result(message)

        conn.on_message = on_message
        spec = SandboxSpec(
            sandbox_id=sandbox_id,
            workspace_dir=self._root / "home" / "workspaces" / sandbox_id,
            clone_source=str(mirror),
            clone_source_is_path=True,
            base_branch=base_branch,
            token=token,
            bridge_url=unix_url(str(self._socket)),
            heartbeat_s=1.0,
        )
        handle = await self._provider.create(spec)
        self.handles.append(handle)
        self.connections.append(conn)
        async with asyncio.timeout(BOOT_TIMEOUT_S):
            message = await booted
        if message["phase"] != "ready":
            raise RuntimeError(f"the box did not boot: {message}")
        return handle

    async def first_call_ms(self, index: int) -> float:
        """Milliseconds of one ``exec`` of ``true`` in box ``index``."""
        started = time.perf_counter()
        result = await self.connections[index].exec("true", timeout_s=30)
        if result.exit_code != 0:
            raise RuntimeError(f"exec failed in the box: {result}")
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        for handle in self.handles:
            await self._provider.destroy(handle)
        self.handles.clear()


def make_history_repo(root: Path) -> Path:
    """A bare origin whose history is :data:`HISTORY_COMMITS` rewrites of random files."""
    origin = make_sample_repo(root)
    work = root / "history-work"
    git_output("clone", "--quiet", str(origin), str(work), cwd=root)
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    for n in range(HISTORY_COMMITS):
        (work / f"blob{n % 4}.bin").write_bytes(os.urandom(HISTORY_FILE_BYTES))
        git_output("add", ".", cwd=work)
        git_output(*identity, "commit", "--quiet", "-m", f"history {n}", cwd=work)
    git_output("push", "--quiet", "origin", "main", cwd=work)
    shutil.rmtree(work)
    return origin


def du_mb(path: Path) -> float:
    done = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=False)
    if not done.stdout:
        raise RuntimeError(f"du failed: {done.stderr}")
    return round(int(done.stdout.split()[0]) / KIB, 2)


async def _mirror(settings: Settings, origin: Path) -> Path:
    from openinspect.sessions.git import ensure_mirror

    return await ensure_mirror(settings.mirrors_dir, str(origin))


async def run(
    boxes: int = BOXES, hibernate_s: float = HIBERNATE_S, prompt_samples: int = PROMPT_SAMPLES
) -> dict[str, Any]:
    """Measure the boxes' memory (1 and ``boxes`` at once) and a clone's disk; with
    ``hibernate_s`` 0, boxes never hibernate (the full runtime stays resident)."""
    root = Path(tempfile.mkdtemp(prefix="oi-bench-boxcost-"))
    try:
        settings = Settings(home=root / "home")
        settings.sandbox.bwrap.hibernate_s = hibernate_s
        provider = BwrapProvider.from_settings(settings)
        hub = BridgeHub(heartbeat_timeout_s=30)
        origin = make_history_repo(root)
        mirror = await _mirror(settings, origin)
        result: dict[str, Any] = {}
        async with _bridge(hub) as socket:
            group = _Boxes(provider, hub, socket, root)
            try:
                progress("boxcost: 1 idle box")
                await group.start(mirror)
                workspace = group.handles[0].workspace_dir  # type: ignore[attr-defined]
                clone_mb = du_mb(workspace / "repo")
                checkout_mb = clone_mb - du_mb(workspace / "repo" / ".git")
                await asyncio.sleep(IDLE_S)
                one = box_memory(group.handles)
                progress(f"boxcost: {boxes} idle boxes")
                for _ in range(boxes - 1):
                    await group.start(mirror)
                await asyncio.sleep(IDLE_S)
                many = box_memory(group.handles)
                first = await group.first_call_ms(0)
                warm = min([await group.first_call_ms(0) for _ in range(5)])
            finally:
                await group.close()
            baseline_dir = root / "baseline-clone"
            git_output(
                "clone",
                "--quiet",
                "--local",
                "--no-hardlinks",
                str(mirror),
                str(baseline_dir),
                cwd=root,
            )
            result = {
                "box_memory_mb": many["pss_mb_per_box"],
                "goal_mb": GOAL_MB,
                "one_box": one,
                "many_boxes": many,
                "hibernate_s": hibernate_s,
                "first_exec_after_idle_unwoken_ms": round(first, 2),
                "warm_exec_ms": round(warm, 2),
                "box_disk_mb": round(clone_mb, 2),
                "checkout_mb": round(checkout_mb, 2),
                "mirror_mb": du_mb(mirror),
                "baseline_clone_mb": du_mb(baseline_dir),
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if hibernate_s > 0:
        progress("boxcost: first tool call after idle")
        result |= await first_tool_after_idle(prompt_samples)
    return result


async def _first_tool_result_s(
    env: BenchEnv, listener: Listener, session_id: str, delay_ms: int = 0
) -> float:
    """POST a prompt; seconds to its first ``tool-result`` (which must have succeeded)."""
    env.llm.reset(_script(delay_ms))
    async with env.client() as client:
        sent = time.time()
        prompt = await client.post_prompt(session_id, content="check")
    prompt_id = str(prompt["id"])
    done = await listener.wait_for(finished(prompt_id), PROMPT_TIMEOUT_S)
    if done.event.get("status") != "success":
        raise RuntimeError(f"the prompt did not succeed: {done.event}")
    result = await listener.wait_for(
        lambda e: e.get("type") == "tool-result" and e.get("prompt_id") == prompt_id, 1.0
    )
    if result.event.get("exit_code") != 0:
        raise RuntimeError(f"the tool call failed: {result.event}")
    return result.at - sent


def _hibernated_runtimes() -> int:
    done = subprocess.run(
        ["pgrep", "-f", IDLE_RUNTIME_MARKER], capture_output=True, text=True, check=False
    )
    return len(done.stdout.split())


async def first_tool_after_idle(samples: int = PROMPT_SAMPLES) -> dict[str, Any]:
    """A session's first tool result (POST → ``tool-result``) in an awake box (a prompt right
    after another) and in a box that hibernated since the last prompt, through a real server:
    the prompt's start wakes the box (``wake``) while the model answers."""
    extra = {
        "OPENINSPECT_SANDBOX__BWRAP__HIBERNATE_S": f"{HIBERNATE_S:g}",
        "OPENINSPECT_SESSIONS__IDLE_STOP_S": "0",
        "OPENINSPECT_SESSIONS__IDLE_STOP_WATCHED_S": "0",
    }
    warm: dict[int, list[float]] = {delay: [] for delay in MODEL_TURN_MS}
    after_idle: dict[int, list[float]] = {delay: [] for delay in MODEL_TURN_MS}
    async with bench_env("boxcost", extra) as env:
        async with env.client() as client:
            created = await client.create_session(repo=str(env.origin), title="boxcost")
            session_id = str(created["session"]["id"])
            listener = await Listener.open(client, session_id, since_seq=0)
        try:
            await _first_tool_result_s(env, listener, session_id)  # boots the box
            for _ in range(samples):
                for delay in MODEL_TURN_MS:
                    warm[delay].append(await _first_tool_result_s(env, listener, session_id, delay))
                    await asyncio.sleep(IDLE_S)
                    if _hibernated_runtimes() < 1:
                        raise RuntimeError("the idle box did not hibernate")
                    after_idle[delay].append(
                        await _first_tool_result_s(env, listener, session_id, delay)
                    )
        finally:
            await listener.close()
    found: dict[str, Any] = {"goal_ratio": WAKE_GOAL_RATIO}
    for delay in MODEL_TURN_MS:
        warm_ms, idle_ms = summarize_ms(warm[delay]), summarize_ms(after_idle[delay])
        found[f"model_{delay}ms"] = {
            "warm_first_tool_result_ms": warm_ms,
            "after_idle_first_tool_result_ms": idle_ms,
            "after_idle_to_warm_ratio": ratio(idle_ms["p50"], warm_ms["p50"]),
        }
    return {"after_idle": found}


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
