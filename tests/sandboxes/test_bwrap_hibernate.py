"""Hibernation in real bwrap boxes: an idle box's runtime becomes the small idle process, keeps
heartbeating, and comes back (as the same session's box) for a request, a wake or a forwarded
connection; ``shutdown`` still ends it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from openinspect.errors import RpcError
from openinspect.sandboxes.base import SessionBinding
from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.sandboxes.local import LocalHandle
from openinspect.settings import Settings

from .conftest import Sandbox, StartSandbox

pytestmark = pytest.mark.bwrap

BOOT_TIMEOUT_S = 60.0
HIBERNATE_S = 1.0
SETTLE_TIMEOUT_S = 20.0
IDLE_MARKER = b"openinspect.runtime.idle"
FULL_MARKER = b"-m\0openinspect.runtime\0"
REMOTE_PATH = "/git/ses-test/local/origin.git"


@pytest.fixture
def sleepy_provider(settings: Settings) -> BwrapProvider:
    settings.sandbox.bwrap.hibernate_s = HIBERNATE_S
    return BwrapProvider.from_settings(settings)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def runtime_pid(box: Sandbox) -> int | None:
    """The host pid of the box's runtime (bwrap's monitor → the box's init → the runtime), or
    None while it cannot be told (its command line is empty in the middle of an ``exec``)."""
    assert isinstance(box.handle, LocalHandle)
    inits = _children(box.handle.pid)
    if len(inits) != 1:
        return None
    runtimes = []
    for pid in _children(inits[0]):
        try:
            if b"python3" in Path(f"/proc/{pid}/cmdline").read_bytes():
                runtimes.append(pid)
        except OSError:
            continue
    return runtimes[0] if len(runtimes) == 1 else None


async def current_runtime(box: Sandbox) -> int:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while (pid := runtime_pid(box)) is None:
        assert time.monotonic() < deadline, "the box's runtime cannot be found"
        await asyncio.sleep(0.02)
    return pid


async def until_connected_again(box: Sandbox, hellos: int) -> None:
    """Wait until the box said more than ``hellos`` hellos (a new connection was taken)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while len(box.of_type("hello")) <= hellos:
        if time.monotonic() > deadline:
            raise AssertionError("the box did not connect again")
        await asyncio.sleep(0.05)


async def until_runtime(box: Sandbox, marker: bytes) -> int:
    """Wait until the box's runtime's command line holds ``marker``; returns its pid."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        pid = await current_runtime(box)
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        if time.monotonic() > deadline:
            raise AssertionError(f"the runtime never became {marker!r}")
        await asyncio.sleep(0.1)


def mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def test_an_idle_box_hibernates_and_a_request_brings_it_back_bound_as_before(
    sleepy_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(sleepy_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    bound = await box.bind(git_remote_path=REMOTE_PATH)
    origin = await box.conn.exec("git remote get-url origin", timeout_s=30)
    full = await current_runtime(box)

    idle = await until_runtime(box, IDLE_MARKER)
    assert idle == full  # exec'd in place: the box's pid 1 still has its only child
    await asyncio.sleep(1.0)
    # The host still sees the box's workspace (a root server's image stays mounted).
    assert (box.spec.workspace_dir / "repo" / ".git").is_dir()
    maps = mapped_libraries(idle)
    assert "libssl" not in maps and "libcrypto" not in maps  # no ssl, no hashlib
    heartbeats = len(box.of_type("heartbeat"))
    await asyncio.sleep(2.5)
    assert len(box.of_type("heartbeat")) > heartbeats  # the idle runtime heartbeats
    assert box.conn.status == "ready"

    again = await box.conn.exec("git remote get-url origin; cat .start-ran", timeout_s=30)
    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == origin.stdout.strip()  # same forwarder port
    assert again.stdout.splitlines()[1] == "fresh"
    port = origin.stdout.split(":")[2].split("/")[0]
    reach = await box.conn.exec(f"exec 3<>/dev/tcp/127.0.0.1/{port}", timeout_s=30)
    assert reach.exit_code == 0  # the inherited listener listens again
    assert b"openinspect.runtime.idle" not in Path(f"/proc/{idle}/cmdline").read_bytes()
    # Resumed, not booted again: one boot, start.sh once.
    assert [e["phase"] for e in box.of_type("boot")].count("ready") == 1

    assert await box.bind(git_remote_path=REMOTE_PATH) == bound  # the binding was kept
    with pytest.raises(RpcError) as refused:
        await box.conn.bind(SessionBinding("ses-other", "openinspect/other"))
    assert refused.value.details["rpc_code"] == "already_bound"


async def test_a_wake_brings_a_hibernated_box_back_without_a_request(
    sleepy_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(sleepy_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    hellos = len(box.of_type("hello"))
    await until_runtime(box, IDLE_MARKER)
    await until_connected_again(box, hellos)
    hellos = len(box.of_type("hello"))
    await box.conn.wake()
    pid = await until_runtime(box, FULL_MARKER)
    await until_connected_again(box, hellos)
    assert "libssl" in mapped_libraries(pid)  # the full runtime, asyncio and all


async def test_a_forwarded_connection_wakes_the_box_and_is_served(
    sleepy_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(sleepy_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    await box.bind(git_remote_path=REMOTE_PATH)
    # A background job in the box connects to the git forwarder once the runtime hibernated.
    job = (
        "setsid bash -c 'sleep 3; port=$(git remote get-url origin | cut -d: -f3 | cut -d/ -f1); "
        'exec 3<>/dev/tcp/127.0.0.1/$port && printf "GET /x HTTP/1.0\\r\\n\\r\\n" >&3 '
        "&& head -c 12 <&3 > ../answer' >/dev/null 2>&1 &"
    )
    assert (await box.conn.exec(job, timeout_s=30)).exit_code == 0
    await until_runtime(box, IDLE_MARKER)
    await until_runtime(box, FULL_MARKER)  # woken by the connection, not by us
    answer = box.spec.workspace_dir / "answer"
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not (answer.exists() and answer.read_text()):
        assert time.monotonic() < deadline, "the forwarded connection was never answered"
        await asyncio.sleep(0.1)
    assert answer.read_text().startswith("HTTP/1.1 403")  # served by the forwarder


async def test_shutdown_ends_a_hibernated_box(
    sleepy_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(sleepy_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    hellos = len(box.of_type("hello"))
    await until_runtime(box, IDLE_MARKER)
    await until_connected_again(box, hellos)  # the idle runtime's connection
    await box.conn.shutdown()
    async with asyncio.timeout(SETTLE_TIMEOUT_S):
        exit_ = await sleepy_provider.wait(box.handle)
    assert exit_.status == 0
