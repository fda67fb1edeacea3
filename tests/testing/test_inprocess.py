"""The in-process provider runs the real runtime on the test's loop: it boots, binds, answers
RPC over the real bridge socket, stops its commands on destroy, and touches no process-wide
state (signal handlers, limits)."""

from __future__ import annotations

import asyncio
import resource
import secrets
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.errors import RpcError, SandboxLost
from openinspect.runtime.address import unix_url
from openinspect.sandboxes.base import SandboxProvider, SandboxSpec, SessionBinding
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.testing.inprocess import InProcessProvider
from tests.sandboxes.conftest import (
    Bridge,
    make_origin,
    serve_bridge,
    wait_until_gone,
    wait_until_running,
)

BOOT_TIMEOUT_S = 30.0


@pytest.fixture
async def bridge() -> AsyncIterator[Bridge]:
    async with serve_bridge(BridgeHub(heartbeat_timeout_s=30)) as served:
        yield served


@pytest.fixture
async def provider() -> AsyncIterator[InProcessProvider]:
    made = InProcessProvider()
    yield made
    await made.close()


def spec_for(bridge: Bridge, tmp_path: Path, token: str, **overrides: object) -> SandboxSpec:
    origin = make_origin(tmp_path)
    sandbox_id = f"sbx-{uuid.uuid4().hex[:10]}"
    fields: dict[str, object] = {
        "sandbox_id": sandbox_id,
        "workspace_dir": tmp_path / "ws" / sandbox_id,
        "clone_source": str(origin.bare),
        "clone_source_is_path": True,
        "base_branch": "main",
        "token": token,
        "bridge_url": unix_url(str(bridge.socket_path)),
        "heartbeat_s": 1.0,
        **overrides,
    }
    return SandboxSpec(**fields)  # type: ignore[arg-type]


async def test_boots_binds_and_serves_rpc_over_the_real_bridge(
    provider: InProcessProvider, bridge: Bridge, tmp_path: Path
) -> None:
    assert isinstance(provider, SandboxProvider) and provider.isolates is False
    token = secrets.token_urlsafe(16)
    spec = spec_for(bridge, tmp_path, token, carry_branches=("openinspect/existing",))
    conn = bridge.hub.register(spec.sandbox_id, token)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)

    handle = await provider.create(spec)
    await conn.wait_ready(BOOT_TIMEOUT_S)
    bound = await conn.bind(SessionBinding("ses-x", "openinspect/existing"))

    assert bound == {"branch": "openinspect/existing", "tracking": True, "proxied": False}
    assert conn.hello is not None and conn.hello["sandbox_id"] == spec.sandbox_id
    assert len(bridge.sockets) == 1  # it came in through the socket, like any box
    result = await conn.exec("cat NOTES.md; echo $OPENINSPECT_SANDBOX_TOKEN", timeout_s=10)
    assert result.stdout == "work in progress\n\n"  # the token is hidden from commands
    assert (spec.workspace_dir / "repo" / ".setup-ran").read_text() == "fresh\n"
    assert provider.live == 1
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    assert resource.getrlimit(resource.RLIMIT_NPROC) == nproc
    assert handle.provider == "inprocess"


async def test_destroy_stops_the_runtime_and_its_commands(
    provider: InProcessProvider, bridge: Bridge, tmp_path: Path
) -> None:
    token = secrets.token_urlsafe(16)
    spec = spec_for(bridge, tmp_path, token)
    conn = bridge.hub.register(spec.sandbox_id, token)
    handle = await provider.create(spec)
    await conn.wait_ready(BOOT_TIMEOUT_S)
    marker = f"oi-inproc-{uuid.uuid4().hex}"
    running = asyncio.ensure_future(conn.exec(f"exec -a {marker} sleep 300", timeout_s=60))
    await wait_until_running(marker)
    ended = asyncio.ensure_future(provider.wait(handle))

    await provider.destroy(handle)

    assert (await ended).status == 0  # it stopped as on SIGTERM: cleanly
    assert await wait_until_gone(marker, timeout_s=5) == []
    assert provider.live == 0
    assert (await provider.wait(handle)).status == -1  # destroyed: unknown from now on
    await provider.destroy(handle)  # idempotent
    with pytest.raises((RpcError, SandboxLost)):  # answered "cancelled", or cut off
        await running


async def test_a_runtime_refused_by_the_bridge_ends_with_its_exit_status(
    provider: InProcessProvider, bridge: Bridge, tmp_path: Path
) -> None:
    spec = spec_for(bridge, tmp_path, "not-the-registered-token")
    bridge.hub.register(spec.sandbox_id, "the-registered-token")
    handle = await provider.create(spec)
    ended = await asyncio.wait_for(provider.wait(handle), BOOT_TIMEOUT_S)
    assert ended.status == 3  # EXIT_REJECTED, as a real box's process would exit
