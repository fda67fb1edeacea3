"""The hostile agent speaks the bridge protocol: a process in the box has the box's token (it is in
the runtime's environment), so it can dial the bridge itself. Against a real session with a real
bubblewrap box, a real SQLite store and the bridge server configured as in production, forged
traffic of 4 MB messages, malformed frames, floods, unknown ids and claims of another sandbox is
cut or refused, the store grows by no more than the caps, and the real runtime keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from openinspect.api.app import create_bridge_app
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.errors import RpcError
from openinspect.runtime.protocol import (
    BRIDGE_URI,
    CLOSE_BUSY,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    MAX_CHUNK_CHARS,
    MAX_FRAME_BYTES,
    MAX_LOG_LINE_CHARS,
    SANDBOX_ID_HEADER,
)
from openinspect.sandboxes.base import (
    SandboxHandle,
    SandboxProvider,
    SandboxSpec,
    SessionBinding,
)
from openinspect.sandboxes.bridge import SandboxConnection
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.sandboxes.registry import resolve_provider
from openinspect.settings import SandboxSettings, Settings
from tests.sandboxes.conftest import IN_CI

FOUR_MB = 4_000_000
BOOT_LOG_MAX_LINES = 40
BOOT_LOG_MAX_BYTES = 48 * 1024
EVENT_OVERHEAD_CHARS = 400
"""Generous room for an event's envelope (ids, seq, timestamp) beside its text."""
WARNINGS_PER_BOX = 3  # setup failed, rate limited, message refused: once each
READY_TIMEOUT_S = 120.0


class RecordingProvider:
    """The real provider, remembering each spec it created (the test needs the box's token,
    which the agent in the box would read from the runtime's environment)."""

    def __init__(self, inner: SandboxProvider) -> None:
        self._inner = inner
        self.specs: list[SandboxSpec] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        self.specs.append(spec)
        return await self._inner.create(spec)


@dataclass
class Box:
    plane: ControlPlane
    session_id: str
    conn: SandboxConnection
    token: str
    socket_path: Path


@pytest.fixture
async def box(tmp_path: Path, origin: Path) -> AsyncIterator[Box]:
    reason = probe_bwrap()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"bubblewrap is required under CI=true: {reason}")
        pytest.skip(f"bubblewrap cannot create namespaces here: {reason}")
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(
            provider="bwrap",
            boot_log_max_lines=BOOT_LOG_MAX_LINES,
            boot_log_max_bytes=BOOT_LOG_MAX_BYTES,
        ),
    )
    recorder = RecordingProvider(resolve_provider(settings.sandbox.provider, settings))
    async with (
        open_control_plane(settings, provider=recorder) as plane,  # type: ignore[arg-type]
        _bridge_server(plane) as socket_path,
    ):
        user = plane.bootstrap.user
        assert user is not None
        session = await plane.manager.create(user, repo=str(origin))
        sandbox = (await plane.manager.actor(session.id)).sandbox
        conn = await asyncio.wait_for(sandbox.ready(), READY_TIMEOUT_S)
        yield Box(plane, session.id, conn, recorder.specs[-1].token, socket_path)


@contextlib.asynccontextmanager
async def _bridge_server(plane: ControlPlane) -> AsyncIterator[Path]:
    """The bridge app on its Unix socket, with the frame limit of ``api.server``."""
    path = plane.settings.bridge_socket
    path.parent.mkdir(parents=True, exist_ok=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_bridge_app(plane.hub, plane.git_authority),
            uds=str(path),
            lifespan="off",
            log_level="warning",
            ws_max_size=MAX_FRAME_BYTES,
            ws_ping_interval=None,
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield path
    finally:
        server.should_exit = True
        await task


def _hello(sandbox_id: str) -> str:
    return json.dumps(
        {
            "type": "hello",
            "runtime_version": "forged",
            "boot_mode": "fresh",
            "sandbox_id": sandbox_id,
            "phase": "ready",
        }
    )


def _dial(box: Box, *, sandbox_id: str | None = None) -> Any:
    headers = {
        "Authorization": f"Bearer {box.token}",
        SANDBOX_ID_HEADER: sandbox_id or box.conn.sandbox_id,
    }
    return unix_connect(
        str(box.socket_path),
        uri=BRIDGE_URI,
        additional_headers=headers,
        max_size=None,
        compression=None,
    )


@contextlib.asynccontextmanager
async def _take_over(box: Box) -> AsyncIterator[ClientConnection]:
    """A forged runtime holding the bridge slot: drop the real connection (as a network
    blip would), then dial in the gap before the real runtime's backoff ends."""
    for _ in range(20):
        await box.conn.disconnect("test: a blip")
        while box.conn.connected:
            await asyncio.sleep(0.001)
        async with _dial(box) as ws:
            await _send(ws, _hello(box.conn.sandbox_id))
            try:
                await asyncio.wait_for(ws.recv(), 0.3)  # a replayed call, or nothing
            except TimeoutError:
                pass
            except ConnectionClosed:
                assert ws.close_code == CLOSE_BUSY  # the real runtime won the race
                continue
            yield ws
            return
    raise AssertionError("the forged runtime never got the slot")


async def _send(ws: ClientConnection, text: str) -> None:
    """Send, ignoring a connection the server already closed (the test looks at why)."""
    with contextlib.suppress(ConnectionClosed):
        await ws.send(text)


async def _stored(box: Box) -> tuple[int, int]:
    sizes = await box.plane.store.events.sizes(box.session_id, after_seq=0, limit=1_000_000)
    return len(sizes), sum(size for _seq, size in sizes)


async def _sandbox_logs(box: Box) -> list[Any]:
    events = await box.plane.store.events.after(box.session_id, 0, 1_000_000)
    return [e for e in events if e.type == "sandbox-log"]


async def _echo_works(box: Box) -> None:
    result = await asyncio.wait_for(box.conn.exec("echo alive", timeout_s=30), 60)
    assert result.stdout == "alive\n"


async def test_a_second_connection_is_refused_while_the_runtime_is_connected(box: Box) -> None:
    async with _dial(box) as ws:
        await _send(ws, _hello(box.conn.sandbox_id))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == CLOSE_BUSY
    await _echo_works(box)


async def test_the_token_of_one_box_does_not_open_another(box: Box) -> None:
    box.plane.hub.register("sbx_other", "the-other-boxes-token")
    with pytest.raises(InvalidStatus) as refused:
        async with _dial(box, sandbox_id="sbx_other"):
            pass
    assert refused.value.response.status_code == 403
    # Claiming another sandbox in the hello, on our own token, closes the connection.
    for _ in range(20):
        await box.conn.disconnect("test: a blip")
        while box.conn.connected:
            await asyncio.sleep(0.001)
        async with _dial(box) as ws:
            await _send(ws, _hello("sbx_other"))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        if ws.close_code != CLOSE_BUSY:  # else the real runtime won the race: again
            break
    assert ws.close_code == CLOSE_UNAUTHORIZED
    other = box.plane.hub.get("sbx_other")
    assert other is not None and other.hello is None and other.status == "booting"
    await _echo_works(box)


async def test_forged_messages_are_cut_or_refused_and_the_store_stays_within_caps(
    box: Box,
) -> None:
    count_before, chars_before = await _stored(box)
    logs_before = len(await _sandbox_logs(box))
    big = "x" * FOUR_MB
    forged = [
        json.dumps({"type": "log", "source": "setup", "line": big}),
        json.dumps({"type": "boot", "phase": "start", "message": big}),
        json.dumps({"type": "boot", "phase": "failed", "message": big, "exit_code": 1}),
        json.dumps({"type": "heartbeat", "padding": big}),
        json.dumps(
            {
                "type": "hello",
                "runtime_version": big,
                "boot_mode": "fresh",
                "sandbox_id": box.conn.sandbox_id,
                "phase": "ready",
            }
        ),
        json.dumps({"type": "mystery", "data": big}),
        json.dumps({"id": "0" * 32, "result": {"content": big}}),  # nobody asked
        json.dumps({"id": "1" * 32, "chunk": {"stream": "stdout", "data": big}}),
        json.dumps({"id": "2" * 32, "error": {"code": "internal", "message": big}}),
        "{" + big,  # not JSON
        "[" * 200_000 + "]" * 200_000,  # nested past any parser's recursion
        json.dumps([big]),  # not an object
    ]
    async with _take_over(box) as ws:
        for message in forged:
            await ws.send(message)
        # A flood of small lines: rate-limited, and stopped by the boot log budget.
        for i in range(3000):
            await ws.send(json.dumps({"type": "log", "source": "start", "line": f"flood {i}"}))
        # A call made while the forger holds the slot is answered by it: with 4 MB, cut.
        call = asyncio.create_task(box.conn.exec("echo hi", timeout_s=30))
        request = json.loads(await asyncio.wait_for(ws.recv(), 10))
        while "method" not in request:
            request = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(json.dumps({"id": request["id"], "chunk": {"stream": "stdout", "data": big}}))
        await ws.send(json.dumps({"id": request["id"], "result": {"exit_code": "0", "x": big}}))
        with pytest.raises(RpcError, match="malformed result"):
            await call
        await ws.send(json.dumps({"type": "heartbeat"}))
        await asyncio.sleep(0.5)  # let the server read what is in flight
    # The status a forger reports does not undo a ready box.
    assert box.conn.status == "ready"
    await _echo_works(box)  # the real runtime is back

    count_after, chars_after = await _stored(box)
    logs = await _sandbox_logs(box)
    kept = [e for e in logs if e.source != "openinspect"]
    markers = [e for e in logs if e.source == "openinspect"]
    assert len(markers) == 1 and "boot log truncated" in markers[0].line
    assert len(kept) <= BOOT_LOG_MAX_LINES
    assert sum(len(e.line.encode()) for e in kept) <= BOOT_LOG_MAX_BYTES
    assert all(len(e.line) <= max(MAX_LOG_LINE_CHARS, 2000) + 20 for e in kept)
    assert len(logs) > logs_before  # some forged lines were stored, cut, until the budget
    growth_cap = BOOT_LOG_MAX_LINES + 1 + WARNINGS_PER_BOX
    assert count_after - count_before <= growth_cap
    assert chars_after - chars_before <= BOOT_LOG_MAX_BYTES + growth_cap * EVENT_OVERHEAD_CHARS
    warnings = {
        e.code
        for e in await box.plane.store.events.after(box.session_id, 0, 1_000_000)
        if e.type == "warning"
    }
    assert {"bridge_message_refused", "bridge_rate_limited"} <= warnings
    assert box.conn.dropped_messages >= len(forged) - 5
    assert MAX_CHUNK_CHARS < FOUR_MB  # the chunk above was cut before any callback saw it


async def test_a_forged_bind_answer_is_refused_and_binds_nothing(box: Box) -> None:
    """A bind answered with another branch, a wrong proxy flag or an oversize branch is an
    error for the caller: the control plane never takes a binding it did not ask for."""
    session = await box.plane.store.sessions.get(box.session_id)
    assert session is not None
    asked = SessionBinding(box.session_id, session.branch, f"/git/{box.session_id}/o/r.git")
    answers = [
        {"branch": "openinspect/someone-else", "tracking": True, "proxied": True},
        {"branch": session.branch, "tracking": False, "proxied": False},  # origin not proxied
        {"branch": "b" * 10_000, "tracking": False, "proxied": True},
        {"branch": session.branch, "tracking": "yes", "proxied": True},
    ]
    async with _take_over(box) as ws:
        for answer in answers:
            call = asyncio.create_task(box.conn.bind(asked))
            request = json.loads(await asyncio.wait_for(ws.recv(), 10))
            while request.get("method") != "bind":
                request = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert request["params"] == {
                "work_branch": session.branch,
                "git_remote_path": asked.git_remote_path,
            }
            await ws.send(json.dumps({"id": request["id"], "result": answer}))
            with pytest.raises(RpcError) as refused:
                await asyncio.wait_for(call, 10)
            assert refused.value.details["rpc_code"] == "internal"
    assert box.conn.status == "ready"
    await _echo_works(box)


async def test_a_frame_over_the_limit_closes_the_connection(box: Box) -> None:
    count_before, _ = await _stored(box)
    async with _take_over(box) as ws:
        await _send(
            ws, json.dumps({"type": "log", "source": "setup", "line": "y" * MAX_FRAME_BYTES})
        )
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == CLOSE_TOO_BIG
    count_after, _ = await _stored(box)
    assert count_after == count_before  # nothing of it was parsed or stored
    await _echo_works(box)


FORGER = r"""
import glob, json, os, sys
env = None
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        entries = open(path, "rb").read().split(b"\0")
    except OSError:
        continue
    found = dict(e.decode(errors="replace").split("=", 1) for e in entries if b"=" in e)
    if "OPENINSPECT_SANDBOX_TOKEN" in found:
        env = found
        break
if env is None:
    print("no-token"); sys.exit(0)
sys.path[:0] = [p for p in env.get("PYTHONPATH", "").split(":") if p]
from websockets.sync.client import unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
headers = {"Authorization": "Bearer " + env["OPENINSPECT_SANDBOX_TOKEN"],
           "X-Sandbox-Id": env["OPENINSPECT_SANDBOX_ID"]}
try:
    with unix_connect(env["OPENINSPECT_BRIDGE_URL"].removeprefix("unix://"), uri="ws://localhost/sandbox/bridge",
                      additional_headers=headers) as ws:
        try:
            ws.send(json.dumps({"type": "hello", "runtime_version": "x", "boot_mode": "fresh",
                                "sandbox_id": env["OPENINSPECT_SANDBOX_ID"], "phase": "ready"}))
            print("got", ws.recv(timeout=5)[:80])
        except TimeoutError:
            print("connected")
        except ConnectionClosed:
            print("closed", ws.close_code)
except InvalidStatus as exc:
    print("refused", exc.response.status_code)
"""


async def test_a_forger_inside_the_box_is_refused_while_the_runtime_is_connected(
    box: Box,
) -> None:
    """The attack as the agent would run it: find the token in the runtime's environment and
    dial the bridge socket from inside the box."""
    result = await box.conn.exec(f"python3 - <<'EOF'\n{FORGER}\nEOF", timeout_s=60)
    verdict = result.stdout.strip()
    assert verdict in ("no-token", f"closed {CLOSE_BUSY}"), (verdict, result.stderr[-2000:])
    await _echo_works(box)
