"""The idle runtime (:mod:`openinspect.runtime.idle`) against a real bridge: it says the hello
it was handed, heartbeats, exits on ``shutdown``, and for a request becomes the full runtime,
which resumes (no boot) and answers the request the control plane re-sent."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.runtime.address import unix_url
from openinspect.runtime.hibernate import BINDING_VAR, FDS_VAR, HELLO_VAR, ResumeState
from openinspect.runtime.idle import HEARTBEAT, OP_TEXT, _frame
from openinspect.runtime.supervisor import command_environment
from openinspect.sandboxes.bridge import BridgeHub, SandboxConnection
from tests.sandboxes.conftest import REPO_ROOT, Bridge, serve_bridge

IDLE_CODE = "from openinspect.runtime.idle import main; main()"
SETTLE_TIMEOUT_S = 30.0


@pytest.fixture
async def hub_bridge() -> AsyncIterator[Bridge]:
    async with serve_bridge(BridgeHub(heartbeat_timeout_s=30)) as served:
        yield served


def _unmask(frame: bytes) -> bytes:
    size, offset = frame[1] & 0x7F, 2
    if size == 126:
        size, offset = int.from_bytes(frame[2:4], "big"), 4
    elif size == 127:
        size, offset = int.from_bytes(frame[2:10], "big"), 10
    mask, payload = frame[offset : offset + 4], frame[offset + 4 :]
    assert len(payload) == size
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 5, 125, 126, 70_000])
def test_frames_are_masked_and_sized_as_a_client_must(size: int) -> None:
    payload = os.urandom(size)
    frame = _frame(OP_TEXT, payload)
    assert frame[0] == 0x80 | OP_TEXT and frame[1] & 0x80  # final, masked
    assert _unmask(frame) == payload


def test_a_garbled_resume_state_boots_afresh_and_commands_never_see_it() -> None:
    assert ResumeState.from_env({HELLO_VAR: "{not json"}) is None
    assert ResumeState.from_env({}) is None
    state = ResumeState.from_env(
        {
            HELLO_VAR: json.dumps({"phase": "ready"}),
            FDS_VAR: "git=7,egress=9",
            BINDING_VAR: json.dumps(
                {"branch": "b", "remote_path": None, "result": {"branch": "b"}}
            ),
        }
    )
    assert state is not None and state.phase == "ready"
    assert state.listener_fds == {"git": 7, "egress": 9}
    assert state.bound is not None and state.bound.branch == "b"
    env = command_environment(
        {HELLO_VAR: "{}", FDS_VAR: "git=7", "OPENINSPECT_HIBERNATE_S": "30", "KEEP": "1"}
    )
    assert env == {"KEEP": "1"}


class _Idle:
    """An idle runtime started on the host, registered with the bridge as one sandbox."""

    def __init__(self, bridge: Bridge, workspace: Path) -> None:
        self.sandbox_id = f"sbx-{secrets.token_hex(5)}"
        token = secrets.token_urlsafe(24)
        self.conn: SandboxConnection = bridge.hub.register(self.sandbox_id, token)
        self.events: list[dict[str, Any]] = []

        async def on_message(message: Any) -> None:
            self.events.append(message)

        self.conn.on_message = on_message
        (workspace / "repo").mkdir(parents=True)
        hello = {
            "type": "hello",
            "runtime_version": "0.1.0",
            "boot_mode": "fresh",
            "sandbox_id": self.sandbox_id,
            "phase": "ready",
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO_ROOT / "src"),
            "OPENINSPECT_BRIDGE_URL": unix_url(str(bridge.socket_path)),
            "OPENINSPECT_SANDBOX_ID": self.sandbox_id,
            "OPENINSPECT_SANDBOX_TOKEN": token,
            "OPENINSPECT_BOOT_MODE": "fresh",
            "OPENINSPECT_WORKSPACE": str(workspace),
            "OPENINSPECT_CLONE_SOURCE": str(workspace / "nothing-to-clone"),
            "OPENINSPECT_BASE_BRANCH": "main",
            "OPENINSPECT_HEARTBEAT_S": "0.2",
            HELLO_VAR: json.dumps(hello),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-s", "-B", "-c", IDLE_CODE],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    async def until(self, kind: str, count: int) -> None:
        async with asyncio.timeout(SETTLE_TIMEOUT_S):
            while len(self.of_type(kind)) < count:
                await asyncio.sleep(0.05)

    async def exit_code(self) -> int:
        async with asyncio.timeout(SETTLE_TIMEOUT_S):
            while self.proc.poll() is None:
                await asyncio.sleep(0.05)
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        assert self.proc.stderr is not None
        self.proc.stderr.close()


async def test_the_idle_runtime_says_hello_heartbeats_and_exits_on_shutdown(
    hub_bridge: Bridge, tmp_path: Path
) -> None:
    idle = _Idle(hub_bridge, tmp_path)
    try:
        await idle.until("hello", 1)
        assert idle.of_type("hello")[0]["phase"] == "ready"
        await idle.until("heartbeat", 3)
        assert json.loads(HEARTBEAT) == {"type": "heartbeat"}
        await idle.conn.shutdown()
        assert await idle.exit_code() == 0
        assert not idle.of_type("boot")  # it never booted anything
    finally:
        idle.stop()


async def test_a_request_wakes_the_full_runtime_which_answers_it_without_booting(
    hub_bridge: Bridge, tmp_path: Path
) -> None:
    idle = _Idle(hub_bridge, tmp_path)
    try:
        await idle.until("hello", 1)
        result = await idle.conn.exec("echo awake; echo $OPENINSPECT_RESUME_HELLO", timeout_s=30)
        assert result.exit_code == 0
        assert result.stdout.splitlines() == ["awake", ""]  # resume state hidden from commands
        assert len(idle.of_type("hello")) == 2  # the idle runtime's, then the full one's
        assert idle.of_type("hello")[1]["phase"] == "ready"
        assert not idle.of_type("boot")  # resumed: no clone, no setup.sh, no start.sh
        assert idle.proc.poll() is None  # the same process, now the full runtime
    finally:
        idle.stop()
