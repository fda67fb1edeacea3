"""A hostile agent tries to exhaust the host from inside its box: a fork storm, a memory
balloon, a disk filler in ``/tmp`` and in the workspace, a busy loop on every core. Each is
stopped at the box's limits (real bwrap boxes, real kernel cgroups, real loop-mounted images),
and a second box's ``echo`` keeps answering while it runs."""

# ruff: noqa: F811 - the sandbox fixtures are imported by name, and tests take them by name

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.sandboxes.cgroups import BoxCgroup
from openinspect.sandboxes.connection import ExecResult
from openinspect.sandboxes.workspace_fs import image_path
from openinspect.settings import SandboxSettings, Settings
from tests.sandboxes.conftest import (  # noqa: F401 - fixtures, used by name
    IN_CI,
    Sandbox,
    StartSandbox,
    bridge,
    repo_origin,
    start_sandbox,
)
from tests.sessions.bridged import bridged_plane

pytestmark = pytest.mark.bwrap

BOOT_TIMEOUT_S = 60.0
MEMORY_MIB = 256
PIDS_MAX = 200
TMP_MIB = 64
WORKSPACE_MIB = 128
CPUS = 0.25
ECHO_DEADLINE_S = 10.0
"""A second box's echo must answer within this, however hard the first one is pushing."""
MIB = 1024 * 1024

FORK_STORM = """
import os, time
n = 0
try:
    while n < 3000:
        pid = os.fork()
        if pid == 0:
            os.closerange(0, 3)
            time.sleep(4)
            os._exit(0)
        n += 1
    print(f"forked {n}")
except OSError as exc:
    print(f"forked {n}: {exc}")
"""
BALLOON = """
chunks = []
while len(chunks) < 4096:  # 4 GiB, in touched 1 MiB pieces
    chunks.append(b"x" * (1 << 20))
print("allocated 4 GiB")
"""


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Small limits, so that every runaway reaches them fast; a test may override some
    (``parametrize("settings", [{...}], indirect=True)``)."""
    limits = {
        "memory_mib": MEMORY_MIB,
        "tmp_mib": TMP_MIB,
        "workspace_mib": WORKSPACE_MIB,
        **getattr(request, "param", {}),
    }
    return Settings(home=tmp_path / "home", sandbox=SandboxSettings(**limits))


@pytest.fixture
def provider(settings: Settings) -> BwrapProvider:
    from openinspect.sandboxes.bwrap import probe_bwrap

    reason = probe_bwrap()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"bubblewrap is required under CI=true: {reason}")
        pytest.skip(f"bubblewrap cannot create namespaces here: {reason}")
    provider = BwrapProvider.from_settings(settings)
    if provider.unenforced_limits:
        if IN_CI:
            pytest.fail(f"limits not enforceable under CI=true: {provider.unenforced_limits}")
        pytest.skip(f"this host cannot enforce: {provider.unenforced_limits}")
    return provider


async def two_boxes(provider: BwrapProvider, start: StartSandbox) -> tuple[Sandbox, Sandbox]:
    hostile, bystander = await asyncio.gather(
        start(provider, max_processes=PIDS_MAX), start(provider, max_processes=PIDS_MAX)
    )
    await asyncio.gather(
        hostile.conn.wait_ready(BOOT_TIMEOUT_S), bystander.conn.wait_ready(BOOT_TIMEOUT_S)
    )
    return hostile, bystander


def cgroup_of(provider: BwrapProvider, box: Sandbox) -> BoxCgroup:
    cgroup = provider.box_cgroup(box.spec.sandbox_id)
    assert cgroup is not None
    return cgroup


async def echo_answers_meanwhile(bystander: Sandbox, runaway: Awaitable[ExecResult]) -> ExecResult:
    """Let the runaway get going, check that the bystander's echo answers (the fork storm, the
    disk fillers and the busy loop are still at it by then), return the runaway's result."""
    task = asyncio.ensure_future(runaway)
    # Not longer: a balloon at 256 MiB is killed within a few hundred milliseconds.
    await asyncio.sleep(0.1)
    started = time.monotonic()
    echoed = await asyncio.wait_for(
        bystander.conn.exec("echo still here", timeout_s=ECHO_DEADLINE_S), ECHO_DEADLINE_S
    )
    assert echoed.exit_code == 0
    assert echoed.stdout == "still here\n"
    assert time.monotonic() - started < ECHO_DEADLINE_S
    return await task


async def answers_again(box: Sandbox, timeout_s: float = 30.0) -> None:
    """The box itself recovers once its runaway is gone (its runtime was not the victim)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await box.conn.exec("echo ok", timeout_s=10)
        if result.stdout == "ok\n":
            return
        assert time.monotonic() < deadline, result
        await asyncio.sleep(0.5)


async def test_fork_storm_stops_at_the_process_limit(
    provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    hostile, bystander = await two_boxes(provider, start_sandbox)

    result = await echo_answers_meanwhile(
        bystander,
        hostile.conn.exec(f"python3 -c '{FORK_STORM}'; sleep 1", timeout_s=60),
    )

    assert "Resource temporarily unavailable" in result.stdout, result
    forked = int(result.stdout.split()[1].rstrip(":"))
    assert forked < PIDS_MAX
    assert cgroup_of(provider, hostile).hits().pids_refused > 0  # the cgroup said no
    await answers_again(hostile)


async def test_memory_balloon_is_oom_killed_and_the_box_lives_on(
    provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    hostile, bystander = await two_boxes(provider, start_sandbox)

    result = await echo_answers_meanwhile(
        bystander, hostile.conn.exec(f"python3 -c '{BALLOON}'; echo exit=$?", timeout_s=120)
    )

    assert "allocated 4 GiB" not in result.stdout
    assert "exit=137" in result.stdout, result  # SIGKILL: the kernel's OOM killer
    # Run as the whole command, the balloon's death is explained in the tool's output.
    direct = await hostile.conn.exec(f"exec python3 -c '{BALLOON}'", timeout_s=120)
    assert direct.exit_code == 137
    assert "ran out of memory" in direct.stderr
    hits = cgroup_of(provider, hostile).hits()
    assert hits.oom_kills >= 1
    await answers_again(hostile)


async def test_a_box_whose_runtime_is_oom_killed_is_lost_with_the_reason(
    provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    hostile, bystander = await two_boxes(provider, start_sandbox)
    # Make the runtime (the balloon's grandparent) the OOM killer's first choice.
    command = f"echo 1000 > /proc/$PPID/oom_score_adj; python3 -c '{BALLOON}'"
    running = asyncio.ensure_future(hostile.conn.exec(command, timeout_s=120))

    ended = await asyncio.wait_for(provider.wait(hostile.handle), 60)

    assert ended.status != 0
    assert ended.reason == f"out of memory (limit {MEMORY_MIB} MiB)"
    echoed = await bystander.conn.exec("echo still here", timeout_s=ECHO_DEADLINE_S)
    assert echoed.stdout == "still here\n"
    hostile.conn.mark_lost("exited")  # what the session engine does
    await asyncio.gather(running, return_exceptions=True)


@pytest.mark.parametrize(("where", "limit_mib"), [("/tmp", TMP_MIB), ("/workspace", WORKSPACE_MIB)])
async def test_disk_filler_gets_enospc_at_the_limit(
    provider: BwrapProvider, start_sandbox: StartSandbox, where: str, limit_mib: int
) -> None:
    hostile, bystander = await two_boxes(provider, start_sandbox)

    result = await echo_answers_meanwhile(
        bystander,
        hostile.conn.exec(
            # 3 GiB at most; then it keeps pushing at the full disk for a few seconds.
            f"dd if=/dev/zero of={where}/fill bs=1M count=3072 2>&1; "
            f"stat -c size=%s {where}/fill; fallocate -l 3G {where}/big 2>&1; echo fallocate=$?; "
            f"for i in $(seq 30); do echo x >> {where}/fill 2>/dev/null; sleep 0.1; done",
            timeout_s=120,
        ),
    )

    assert "No space left on device" in result.stdout, result
    size = int(result.stdout.split("size=")[1].split()[0])
    assert 0 < size <= limit_mib * MIB
    assert "fallocate=1" in result.stdout
    if where == "/workspace":  # bounded on the host too: the image is all the disk it got
        image = image_path(hostile.spec.workspace_dir)
        assert image.stat().st_blocks * 512 <= (WORKSPACE_MIB + 8) * MIB
        _, mountinfo = await run(hostile, "grep ' /workspace ' /proc/self/mountinfo")
        assert mountinfo.split()[3] == "/"  # the host's workspace path is not named
    await answers_again(hostile)


async def run(box: Sandbox, command: str) -> tuple[int, str]:
    result = await box.conn.exec(command, timeout_s=30)
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize("settings", [{"cpus": CPUS}], indirect=True)
async def test_busy_loop_on_every_core_is_throttled(
    provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    hostile, bystander = await two_boxes(provider, start_sandbox)
    cgroup = cgroup_of(provider, hostile)
    used_before, throttled_before = cgroup.cpu_usage_ns(), cgroup.cpu_throttled()
    assert used_before is not None
    started = time.monotonic()

    result = await echo_answers_meanwhile(
        bystander,
        hostile.conn.exec(
            "for i in $(seq $(nproc)); do (while :; do :; done) & done; wait", timeout_s=4
        ),
    )

    wall_s = time.monotonic() - started
    used = cgroup.cpu_usage_ns()
    assert used is not None
    cores_used = (used - used_before) / 1e9 / wall_s
    assert result.timed_out
    assert 0 < cores_used <= CPUS * 1.3 + 0.05, cores_used
    if cores_used > CPUS * 0.8:  # it got its quota (a busy host may not even give it that)
        assert cgroup.cpu_throttled() > throttled_before  # and the quota is what held it


@pytest.fixture
async def limited_plane(settings: Settings) -> AsyncIterator[ControlPlane]:
    """The real control plane (store, session manager, bridge) with bwrap boxes and small
    limits."""
    settings = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"provider": "bwrap"})}
    )
    async with bridged_plane(settings) as opened:
        yield opened


async def test_a_session_whose_box_dies_of_its_memory_limit_is_lost_with_the_reason(
    provider: BwrapProvider,  # skips (or fails under CI) where the limits cannot bind
    limited_plane: ControlPlane,
    origin: Path,
) -> None:
    plane = limited_plane
    user = plane.bootstrap.user
    assert user is not None
    sessions = [await plane.manager.create(user, repo=str(origin)) for _ in "ab"]
    hostile, bystander = [(await plane.manager.actor(s.id)).sandbox for s in sessions]
    hostile_box, bystander_box = await asyncio.gather(hostile.ready(), bystander.ready())
    command = f"echo 1000 > /proc/$PPID/oom_score_adj; python3 -c '{BALLOON}'"
    running = asyncio.ensure_future(hostile_box.exec(command, timeout_s=120))

    deadline = time.monotonic() + 60
    while hostile.status != "lost":
        assert time.monotonic() < deadline, hostile.status
        echoed = await bystander_box.exec("echo still here", timeout_s=ECHO_DEADLINE_S)
        assert echoed.stdout == "still here\n"
        await asyncio.sleep(0.2)

    await asyncio.gather(running, return_exceptions=True)
    # The status flips before its event is stored: wait for the event itself.
    lost: list[Any] = []
    while not lost:
        assert time.monotonic() < deadline, "no lost event was stored"
        events = await plane.store.events.after(sessions[0].id, 0, 1000)
        lost = [e for e in events if e.type == "sandbox-status" and e.status == "lost"]
        await asyncio.sleep(0.05)
    assert len(lost) == 1
    assert f"out of memory (limit {MEMORY_MIB} MiB)" in str(lost[0].message)
    assert bystander.status == "ready"
    echoed = await bystander_box.exec("echo still here", timeout_s=ECHO_DEADLINE_S)
    assert echoed.stdout == "still here\n"


def is_mount_point(path: Path) -> bool:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return str(path.resolve()) in points


async def test_a_destroyed_box_leaves_no_cgroup_and_its_image_serves_the_next_box(
    provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    first = await start_sandbox(provider)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    workspace = first.spec.workspace_dir
    assert is_mount_point(workspace)
    await first.conn.exec("echo kept > /workspace/kept.txt", timeout_s=30)
    dirs = list(cgroup_of(provider, first).dirs.values())
    assert all(d.is_dir() for d in dirs)

    await provider.destroy(first.handle)
    first.conn.mark_lost("destroyed")

    assert not any(d.exists() for d in dirs)
    assert not is_mount_point(workspace)
    assert not (workspace / "kept.txt").exists()  # it lives in the image, not on the host
    second = await start_sandbox(provider, workspace_dir=workspace)
    await second.conn.wait_ready(BOOT_TIMEOUT_S)
    _, kept = await run(second, "cat /workspace/kept.txt")
    assert kept == "kept\n"


async def test_a_restarted_server_kills_the_boxes_a_killed_one_left_behind(
    provider: BwrapProvider, start_sandbox: StartSandbox, settings: Settings
) -> None:
    box = await start_sandbox(provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    left = cgroup_of(provider, box)
    pids = left.pids()
    assert pids

    BwrapProvider.from_settings(
        settings
    )  # what the next server's start does, with this one's boxes running

    assert left.pids() == set()
    assert not any(d.exists() for d in left.dirs.values())
    assert not is_mount_point(box.spec.workspace_dir)
    assert (await asyncio.wait_for(provider.wait(box.handle), 10)).status != 0
    box.conn.mark_lost("killed")
