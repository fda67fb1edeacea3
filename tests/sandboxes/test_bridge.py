"""The bridge end to end: a real runtime (``process`` provider) dialling a real uvicorn server on
a Unix socket, and raw WebSocket clients standing in for a misbehaving runtime."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from openinspect.errors import RpcError, SandboxBootFailed, SandboxLost, SandboxUnavailable
from openinspect.runtime.protocol import (
    BRIDGE_URI,
    CLOSE_BUSY,
    CLOSE_UNAUTHORIZED,
    SANDBOX_ID_HEADER,
    RuntimeEvent,
)
from openinspect.runtime.supervisor import EXIT_REJECTED
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.sandboxes.process import ProcessProvider
from openinspect.secrets.redact import Redactor

from .conftest import (
    Bridge,
    StartSandbox,
    serve_bridge,
    wait_until_gone,
    wait_until_running,
)

BOOT_TIMEOUT_S = 60.0
STOP_WITHIN_S = 5.0


@contextlib.asynccontextmanager
async def raw_runtime(
    bridge: Bridge, sandbox_id: str, token: str = "token", *, hello: bool = True
) -> AsyncIterator[ClientConnection]:
    """A hand-driven runtime connection that has said its ``hello`` (unless told not to)."""
    headers = {"Authorization": f"Bearer {token}", SANDBOX_ID_HEADER: sandbox_id}
    async with unix_connect(
        str(bridge.socket_path), uri=BRIDGE_URI, additional_headers=headers
    ) as ws:
        if hello:
            message = {
                "type": "hello",
                "runtime_version": "test",
                "boot_mode": "fresh",
                "sandbox_id": sandbox_id,
                "phase": None,
            }
            with contextlib.suppress(ConnectionClosed):  # a refused one: the test looks why
                await ws.send(json.dumps(message))
        yield ws


async def test_exec_streams_output_and_returns_exit_code(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    seen: list[tuple[str, str]] = []

    async def on_output(stream: str, data: str) -> None:
        seen.append((stream, data))

    result = await box.conn.exec(
        "echo out; echo err >&2; pwd; echo $GREETING; exit 3",
        env={"GREETING": "hi"},
        timeout_s=30,
        on_output=on_output,
    )

    assert result.exit_code == 3
    assert result.timed_out is False
    assert result.stdout == f"out\n{box.handle.repo_dir}\nhi\n"
    assert result.stderr == "err\n"
    assert "".join(d for s, d in seen if s == "stdout") == result.stdout
    assert "".join(d for s, d in seen if s == "stderr") == result.stderr


async def test_requests_before_ready_are_served(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider)
    # Sent before the runtime even connected: queued, then delivered on connect.
    result = await box.conn.exec("echo early", timeout_s=30)
    assert result.stdout == "early\n"
    await box.conn.wait_ready(BOOT_TIMEOUT_S)


async def test_cancelling_the_caller_kills_the_command(
    process_provider: ProcessProvider, start_sandbox: StartSandbox, marker: str
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    task = asyncio.create_task(
        box.conn.exec(f"bash -c 'exec -a {marker} sleep 600'", timeout_s=600)
    )
    await wait_until_running(marker)

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    left = await wait_until_gone(marker, timeout_s=STOP_WITHIN_S)

    assert left == []
    assert time.monotonic() - started < STOP_WITHIN_S


async def test_exec_timeout_over_the_bridge(
    process_provider: ProcessProvider, start_sandbox: StartSandbox, marker: str
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)

    result = await box.conn.exec(
        f"echo before; bash -c 'exec -a {marker} sleep 600'", timeout_s=0.5
    )

    assert result.timed_out is True
    assert result.exit_code in (128 + 15, 128 + 9)
    assert result.stdout == "before\n"
    assert await wait_until_gone(marker, timeout_s=STOP_WITHIN_S) == []


async def test_file_methods_and_their_error_codes(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    conn = box.conn

    written = await conn.write_file("pkg/mod.py", "a = 1\nb = 1\nc = 2\n")
    assert written == {"path": "pkg/mod.py", "bytes": 18}
    assert await conn.read_file("pkg/mod.py", offset=2, limit=1) == {
        "content": "b = 1\n",
        "total_lines": 3,
        "truncated": False,
    }
    with pytest.raises(RpcError) as ambiguous:
        await conn.edit_file("pkg/mod.py", "= 1", "= 9")
    assert ambiguous.value.details["rpc_code"] == "edit_ambiguous"
    assert "found 2 times" in ambiguous.value.message
    with pytest.raises(RpcError) as missing:
        await conn.edit_file("pkg/mod.py", "zzz", "y")
    assert missing.value.details["rpc_code"] == "edit_no_match"
    await conn.edit_file("pkg/mod.py", "c = 2", "c = 3")
    assert (box.handle.repo_dir / "pkg" / "mod.py").read_text() == "a = 1\nb = 1\nc = 3\n"
    with pytest.raises(RpcError) as not_found:
        await conn.read_file("nope.txt")
    assert not_found.value.details["rpc_code"] == "not_found"

    assert (await conn.glob("**/*.py"))["paths"] == ["pkg/mod.py", "src/app.py"]
    grep = await conn.grep(r"c = \d")
    assert grep == {"matches": ["pkg/mod.py:3:c = 3"], "truncated": False}
    with pytest.raises(RpcError) as unknown:
        await conn.call("launch_missiles", {})
    assert unknown.value.details["rpc_code"] == "unknown_method"


async def test_failing_start_script_fails_the_boot(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider, base_branch="broken")

    with pytest.raises(SandboxBootFailed) as failed:
        await box.conn.wait_ready(BOOT_TIMEOUT_S)

    assert failed.value.details["phase"] == "start"
    assert failed.value.details["exit_code"] == 7
    assert "start.sh exited with 7" in failed.value.message
    assert "database refused to start" in failed.value.message  # the last log lines
    assert box.conn.status == "failed"
    # The runtime keeps serving: the agent can still look around.
    assert (await box.conn.exec("echo still here", timeout_s=30)).stdout == "still here\n"


async def test_result_survives_a_dropped_connection(
    process_provider: ProcessProvider, start_sandbox: StartSandbox, bridge: Bridge
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    first_output = asyncio.Event()

    async def on_output(stream: str, data: str) -> None:
        first_output.set()

    task = asyncio.create_task(
        box.conn.exec("echo first; sleep 1; echo second", timeout_s=30, on_output=on_output)
    )
    await first_output.wait()
    connections_before = len(bridge.sockets)
    await bridge.sockets[-1].close(code=1011)

    result = await task

    assert result.exit_code == 0
    assert "second\n" in result.stdout
    assert len(bridge.sockets) > connections_before  # it really reconnected
    assert len(box.of_type("hello")) >= 2
    assert box.conn.status == "ready"


async def test_shutdown_stops_the_runtime(
    process_provider: ProcessProvider, start_sandbox: StartSandbox, marker: str
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    running = asyncio.create_task(
        box.conn.exec(f"bash -c 'exec -a {marker} sleep 600'", timeout_s=600)
    )
    await wait_until_running(marker)

    await box.conn.shutdown()

    assert (await process_provider.wait(box.handle)).status == 0
    assert await wait_until_gone(marker, timeout_s=STOP_WITHIN_S) == []
    with pytest.raises(SandboxLost):
        await running
    with pytest.raises(SandboxLost):
        await box.conn.exec("true", timeout_s=5)


async def test_runtime_with_a_wrong_token_exits_for_good(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider, token="not-the-registered-token")

    assert (await process_provider.wait(box.handle)).status == EXIT_REJECTED
    with pytest.raises(SandboxUnavailable, match="never connected"):
        await box.conn.wait_ready(0.1)


async def test_handshake_is_refused_before_upgrade(bridge: Bridge) -> None:
    bridge.hub.register("sbx-known", "right-token")
    for sandbox_id, token in (("sbx-known", "wrong-token"), ("sbx-unknown", "right-token")):
        headers = {"Authorization": f"Bearer {token}", SANDBOX_ID_HEADER: sandbox_id}
        with pytest.raises(InvalidStatus) as refused:
            async with unix_connect(
                str(bridge.socket_path), uri=BRIDGE_URI, additional_headers=headers
            ):
                pass
        assert refused.value.response.status_code == 403


async def test_silent_sandbox_is_marked_lost_and_fails_pending_calls() -> None:
    async with serve_bridge(BridgeHub(heartbeat_timeout_s=0.5)) as bridge:
        conn = bridge.hub.register("sbx-silent", "token")
        async with raw_runtime(bridge, "sbx-silent") as fake_runtime:
            pending = asyncio.create_task(conn.read_file("README.md"))
            request = json.loads(await fake_runtime.recv())
            assert request["method"] == "read_file"
            with pytest.raises(SandboxLost, match="heartbeat timeout"):
                await pending
            assert conn.status == "lost"
            with pytest.raises(SandboxLost):
                await conn.wait_ready(1)


async def test_rpc_error_and_cancel_reach_a_raw_runtime(bridge: Bridge) -> None:
    conn = bridge.hub.register("sbx-raw", "token")
    async with raw_runtime(bridge, "sbx-raw") as fake_runtime:
        failing = asyncio.create_task(conn.edit_file("a.txt", "x", "y"))
        request = json.loads(await fake_runtime.recv())
        await fake_runtime.send(
            json.dumps({"id": request["id"], "error": {"code": "io_error", "message": "disk full"}})
        )
        with pytest.raises(RpcError, match="disk full") as error:
            await failing
        assert error.value.details == {"rpc_code": "io_error", "method": "edit_file"}

        waiting = asyncio.create_task(conn.exec("sleep 600", timeout_s=600))
        request = json.loads(await fake_runtime.recv())
        waiting.cancel()
        assert json.loads(await fake_runtime.recv()) == {"cancel": request["id"]}
        with pytest.raises(asyncio.CancelledError):
            await waiting


async def test_mark_lost_fails_waiters(bridge: Bridge) -> None:
    conn = bridge.hub.register("sbx-dies", "token")
    waiter = asyncio.create_task(conn.wait_ready(30))
    call = asyncio.create_task(conn.glob("*"))
    await asyncio.sleep(0)

    conn.mark_lost("sandbox process exited with 137")

    with pytest.raises(SandboxLost, match="exited with 137"):
        await waiter
    with pytest.raises(SandboxLost, match="exited with 137"):
        await call


async def test_heartbeats_arrive(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider, heartbeat_s=0.2)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    while not box.of_type("heartbeat"):
        await asyncio.sleep(0.05)
    assert box.of_type("heartbeat")[0] == {"type": "heartbeat"}


async def test_a_second_connection_is_refused_while_one_is_open(bridge: Bridge) -> None:
    conn = bridge.hub.register("sbx-twice", "token")
    async with raw_runtime(bridge, "sbx-twice") as first:
        pending = asyncio.create_task(conn.glob("*"))
        request = json.loads(await first.recv())
        async with raw_runtime(bridge, "sbx-twice") as second:
            with pytest.raises(ConnectionClosed):
                await second.recv()
            assert second.close_code == CLOSE_BUSY  # not permanent: the real runtime retries
        await first.send(
            json.dumps({"id": request["id"], "result": {"paths": ["a"], "truncated": False}})
        )
        assert await pending == {"paths": ["a"], "truncated": False}
    # Once the first is gone, a new connection is served, and the unanswered call re-sent.
    pending = asyncio.create_task(conn.glob("*"))
    async with raw_runtime(bridge, "sbx-twice") as first:
        request = json.loads(await first.recv())
    while conn.connected:  # until the server saw it go (before, a reconnect is told to wait)
        await asyncio.sleep(0.01)
    async with raw_runtime(bridge, "sbx-twice") as again:
        assert json.loads(await again.recv()) == request
        await again.send(
            json.dumps({"id": request["id"], "result": {"paths": [], "truncated": False}})
        )
        assert await pending == {"paths": [], "truncated": False}


async def test_a_connection_must_start_with_its_own_hello(bridge: Bridge) -> None:
    bridge.hub.register("sbx-mine", "token")
    bridge.hub.register("sbx-other", "other-token")
    async with raw_runtime(bridge, "sbx-mine", hello=False) as ws:
        await ws.send(json.dumps({"type": "heartbeat"}))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == CLOSE_UNAUTHORIZED
    async with raw_runtime(bridge, "sbx-mine", hello=False) as ws:
        hello = {"type": "hello", "runtime_version": "x", "boot_mode": "fresh"}
        await ws.send(json.dumps({**hello, "sandbox_id": "sbx-other", "phase": "ready"}))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == CLOSE_UNAUTHORIZED
    other = bridge.hub.get("sbx-other")
    assert other is not None and other.status == "booting" and other.hello is None


async def test_what_a_box_sends_is_redacted_with_its_secrets_as_it_arrives(
    bridge: Bridge,
) -> None:
    """Chunks (a value split across two, and interleaved with the other stream), a result cut
    after redaction, an error, boot and log lines: none keeps a value of the box's secrets."""
    secret = "sk-SECRET-bridge-0123456789"
    redactor = Redactor([("API_TOKEN", secret)])
    conn = bridge.hub.register("sbx-redact", "token", redactor=redactor)
    lines: list[str] = []

    async def on_message(message: RuntimeEvent) -> None:
        if message["type"] == "log":
            lines.append(message["line"])
        elif message["type"] == "boot" and message.get("message"):
            lines.append(str(message.get("message")))

    conn.on_message = on_message
    async with raw_runtime(bridge, "sbx-redact") as fake_runtime:
        for event in (
            {"type": "log", "source": "setup", "line": f"token={secret}"},
            {"type": "boot", "phase": "ready", "message": f"up with {secret}"},
        ):
            await fake_runtime.send(json.dumps(event))
        chunks: list[tuple[str, str]] = []

        async def on_output(stream: str, data: str) -> None:
            chunks.append((stream, data))

        running = asyncio.create_task(conn.exec("x", timeout_s=30, on_output=on_output))
        request = json.loads(await fake_runtime.recv())
        for stream, data in (
            ("stdout", f"a {secret[:10]}"),
            ("stderr", "interleaved "),
            ("stdout", f"{secret[10:]} b\n"),
            ("stderr", f"{secret}"),
        ):
            chunk = {"id": request["id"], "chunk": {"stream": stream, "data": data}}
            await fake_runtime.send(json.dumps(chunk))
        done = {"exit_code": 0, "timed_out": False, "duration_ms": 1}
        await fake_runtime.send(json.dumps({"id": request["id"], "result": done}))
        result = await running

        reading = asyncio.create_task(conn.read_file("f", max_chars=30))
        request = json.loads(await fake_runtime.recv())
        content = {"content": f"{secret}{secret}", "total_lines": 1, "truncated": False}
        await fake_runtime.send(json.dumps({"id": request["id"], "result": content}))
        read = await reading

        failing = asyncio.create_task(conn.glob("*"))
        request = json.loads(await fake_runtime.recv())
        error = {"code": "io_error", "message": f"cannot read {secret}"}
        await fake_runtime.send(json.dumps({"id": request["id"], "error": error}))
        with pytest.raises(RpcError) as refused:
            await failing

    shown = "[secret:API_TOKEN]"
    assert result.stdout == f"a {shown} b\n" and result.stderr == f"interleaved {shown}"
    assert "".join(d for s, d in chunks if s == "stdout") == f"a {shown} b\n"
    # Redacted, then cut: the cut falls in a name, never in a value.
    assert read["content"] == f"{shown}{shown}"[:30] and read["truncated"] is True
    assert refused.value.message == f"cannot read {shown}"
    assert lines == [f"token={shown}", f"up with {shown}"]
    assert conn.log_tail[-1] == f"[setup] token={shown}"
    assert secret[:10] not in json.dumps([chunks, lines, list(conn.log_tail), read])
