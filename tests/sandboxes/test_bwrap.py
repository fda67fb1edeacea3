"""The ``bwrap`` provider: real bubblewrap boxes, and proof that they keep the host out."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openinspect.errors import SandboxUnavailable
from openinspect.runtime.address import unix_url
from openinspect.sandboxes.base import SandboxSpec
from openinspect.sandboxes.bwrap import (
    BOX_BRIDGE_SOCKET,
    BoxInputs,
    BwrapProvider,
    args_via_fd,
    build_argv,
    build_env,
)
from openinspect.sandboxes.registry import resolve_provider
from openinspect.settings import Settings

from .conftest import (
    StartSandbox,
    wait_until_gone,
    wait_until_running,
    wait_until_untagged,
)

pytestmark = pytest.mark.bwrap

BOOT_TIMEOUT_S = 60.0
HOME_SECRET = "HOME-SECRET-7f3a9c"
KEY_SECRET = "sk-ant-SECRET-bwrap-41d2"


def test_argv_builds_a_closed_box(settings: Settings, tmp_path: Path) -> None:
    spec = SandboxSpec(
        sandbox_id="sbx-argv",
        workspace_dir=tmp_path / "ws",
        clone_source=str(tmp_path / "mirror.git"),
        clone_source_is_path=True,
        base_branch="main",
        token="tok-SECRET",
        bridge_url=unix_url(str(tmp_path / "bridge.sock")),
        env={"PYTHONPATH": "/workspace/repo/src", "DATABASE_URL": "postgres://u:pw-SECRET@db"},
    )
    inputs = BoxInputs(str(spec.workspace_dir), runtime_zip=7)
    argv = build_argv(spec, bwrap="bwrap", python="/usr/bin/python3", inputs=inputs)
    env = build_env(spec)

    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--cap-drop"):
        assert flag in argv
    assert argv[argv.index("--disable-userns") - 1] == "--unshare-user"
    assert argv[argv.index("/proc/sys") - 1 : argv.index("/proc/sys") + 2] == [
        "--ro-bind-try",
        "/proc/sys",
        "/proc/sys",
    ]
    assert argv[argv.index("--ro-bind-data") + 1 :][:2] == ["7", "/opt/openinspect/runtime.zip"]
    assert not any("SECRET" in arg for arg in argv)  # host users can read command lines
    mounted = {argv[i + 2] for i, arg in enumerate(argv) if arg in ("--bind", "--ro-bind")}
    assert "/etc/shadow" not in mounted
    assert "/etc/gitconfig" not in mounted
    assert "/etc/ssl/private" not in mounted
    assert not any(m.startswith(("/root", "/home")) for m in mounted)
    assert env["HOME"] == "/workspace/.home"
    assert env["PYTHONPATH"] == "/opt/openinspect/runtime.zip:/workspace/repo/src"
    assert env["OPENINSPECT_CLONE_SOURCE"] == "/workspace/.openinspect-origin.bundle"
    assert env["OPENINSPECT_BRIDGE_URL"] == f"unix://{BOX_BRIDGE_SOCKET}"
    assert env["DATABASE_URL"] == "postgres://u:pw-SECRET@db"
    assert env["OPENINSPECT_SANDBOX_TOKEN"] == "tok-SECRET"
    assert {k for k in env if not k.startswith("OPENINSPECT_")} == {
        "PATH",
        "HOME",
        "LANG",
        "TERM",
        "GIT_CONFIG_NOSYSTEM",
        "PYTHONPATH",
        "DATABASE_URL",
    }
    assert argv[-5:] == ["/usr/bin/python3", "-s", "-B", "-m", "openinspect.runtime"]

    # What the host (and the box, as its pid 1) sees: no path of the server.
    shown, fd = args_via_fd(argv)
    try:
        assert shown == ["bwrap", "--args", str(fd), "--", *argv[-5:]]
        with open(f"/proc/self/fd/{fd}", "rb") as options:
            assert options.read().split(b"\0")[:-1] == [a.encode() for a in argv[1:-6]]
    finally:
        os.close(fd)


@pytest.fixture
def host_listener() -> Iterator[socket.socket]:
    """A TCP port on the host's loopback that nothing in a sandbox may reach."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    yield listener
    listener.close()


async def test_boots_and_serves_rpc_in_a_box(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    await box.bind()

    repo = box.handle.repo_dir
    assert bwrap_provider.isolates is True
    # Read, not `git -C`: the checkout is the box user's, and git rightly refuses another
    # user's repository (its config could run commands).
    assert (repo / ".git" / "HEAD").read_text() == f"ref: refs/heads/{box.work_branch}\n"
    assert not (box.handle.workspace_dir / ".openinspect-origin.bundle").exists()
    assert (repo / ".setup-ran").read_text() == "fresh\n"
    assert (repo / ".start-ran").read_text() == "fresh\n"
    assert ("start", "start running in fresh mode") in [
        (e["source"], e["line"]) for e in box.of_type("log")
    ]
    result = await box.conn.exec("pwd; id -u; hostname", timeout_s=30)
    assert result.stdout.splitlines()[0] == "/workspace/repo"
    await box.conn.write_file("made-in-box.txt", "hi\n")
    assert (repo / "made-in-box.txt").read_text() == "hi\n"


async def test_live_boxes_park_no_thread_each(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    """Four live boxes hold no more threads than one: each is awaited on the event loop. The
    default executor's pool (``asyncio_N``, bounded, shared by the short blocking steps of a
    start) is not counted: how many of its threads exist depends on what overlapped."""

    def threads() -> list[str]:
        return [t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")]

    first = await start_sandbox(bwrap_provider)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    with_one = len(threads())
    more = [await start_sandbox(bwrap_provider) for _ in range(3)]
    for box in more:
        await box.conn.wait_ready(BOOT_TIMEOUT_S)
    waits = [asyncio.create_task(bwrap_provider.wait(box.handle)) for box in (first, *more)]
    await asyncio.sleep(0.2)
    assert not any(task.done() for task in waits)
    assert len(threads()) <= with_one, threads()
    for task in waits:
        task.cancel()


async def test_box_cannot_see_the_host(
    bwrap_provider: BwrapProvider,
    start_sandbox: StartSandbox,
    settings: Settings,
    host_listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
    marker: str,
) -> None:
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    (home / "openinspect.db").write_text(HOME_SECRET)
    (home / "admin.token").write_text(HOME_SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY_SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", KEY_SECRET)
    port = host_listener.getsockname()[1]
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)

    async def run(command: str) -> tuple[int, str]:
        result = await box.conn.exec(command, timeout_s=30)
        return result.exit_code, result.stdout + result.stderr

    code, _ = await run(f"cat {home / 'admin.token'}")
    assert code != 0
    code, _ = await run(f"ls {home}")
    assert code != 0
    _, found = await run(
        "find / -path /proc -prune -o -path /usr -prune -o -path /dev -prune -o -path /sys "
        r"-prune -o \( -name admin.token -o -name openinspect.db \) -print"
    )
    assert found == ""
    _, grepped = await run(f"grep -rls {HOME_SECRET} /workspace /etc /opt /run /tmp")
    assert grepped == ""
    code, _ = await run(f"ls {Path.home()}")
    assert code != 0
    for private in ("/etc/shadow", "/etc/gitconfig", "/etc/ssl/private"):
        code, _ = await run(f"test -e {private}")
        assert code != 0, private

    code, _ = await run("touch /usr/oi-write-test")
    assert code != 0
    host_process = subprocess.Popen(["bash", "-c", f"exec -a {marker} sleep 600"])
    try:
        await wait_until_running(marker)
        _, processes = await run("cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    finally:
        host_process.kill()
        host_process.wait()
    assert marker not in processes  # the host's processes are not visible
    assert "openinspect.runtime" in processes

    code, output = await run(f"exec 3<>/dev/tcp/127.0.0.1/{port}")
    assert code != 0, output
    with pytest.raises(BlockingIOError):
        host_listener.accept()

    _, env = await run("env")
    assert "ANTHROPIC_API_KEY" not in env
    assert "OPENAI_API_KEY" not in env
    # Not in any environment in the box, the runtime's included.
    _, environs = await run("cat /proc/[0-9]*/environ | tr '\\0' '\\n'")
    assert KEY_SECRET not in environs
    assert "OPENINSPECT_SANDBOX_TOKEN" not in env


async def test_timeout_kills_the_group_inside_the_box(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox, marker: str
) -> None:
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)

    result = await box.conn.exec(
        f"( bash -c 'exec -a {marker} sleep 600' & ); bash -c 'exec -a {marker} sleep 600'",
        timeout_s=0.5,
    )

    assert result.timed_out is True
    assert await wait_until_gone(marker, timeout_s=5) == []


async def test_destroy_leaves_no_process(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox, marker: str
) -> None:
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    running = asyncio.create_task(
        box.conn.exec(
            f"setsid bash -c 'exec -a {marker} sleep 600' >/dev/null 2>&1 </dev/null & "
            f"bash -c 'exec -a {marker} sleep 600'",
            timeout_s=600,
        )
    )
    assert len(await wait_until_running(marker)) >= 2

    await bwrap_provider.destroy(box.handle)
    box.conn.mark_lost("destroyed")  # what the session engine does when the process exits

    assert await wait_until_gone(marker, timeout_s=5) == []
    await bwrap_provider.destroy(box.handle)  # idempotent
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


async def test_remote_clone_source_is_refused(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    with pytest.raises(SandboxUnavailable, match="local mirror"):
        await start_sandbox(
            bwrap_provider,
            clone_source="https://example.com/repo.git",
            clone_source_is_path=False,
        )


def test_auto_picks_bwrap_where_it_works(bwrap_provider: BwrapProvider, settings: Settings) -> None:
    assert resolve_provider("auto", settings).name == "bwrap"


async def test_destroy_right_after_create_leaves_no_process(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    # bwrap arms --die-with-parent only once the box is set up: killing it earlier must not
    # orphan the box's init.
    for i in range(40):
        box = await start_sandbox(bwrap_provider)
        await asyncio.sleep(i * 0.0005)
        await bwrap_provider.destroy(box.handle)
        # bwrap's command line names nothing of the box any more: find it by its environment.
        assert await wait_until_untagged(box.spec.sandbox_id, timeout_s=5) == []


async def test_existing_work_branch_and_restart_in_a_box(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    # The bundle carries the work branch when the mirror has it; a restarted box gets none
    # and reuses the checkout, which it still owns.
    first = await start_sandbox(bwrap_provider, work_branch="openinspect/existing")
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await first.bind())["tracking"] is True
    repo = first.handle.repo_dir
    assert (repo / "NOTES.md").read_text() == "work in progress\n"
    await first.conn.write_file("scratch.txt", "kept")
    await bwrap_provider.destroy(first.handle)

    second = await start_sandbox(
        bwrap_provider,
        boot_mode="snapshot_restore",
        work_branch="openinspect/existing",
        workspace_dir=first.spec.workspace_dir,
    )
    await second.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await second.bind())["branch"] == "openinspect/existing"  # bound anew

    assert second.of_type("boot")[0]["message"] == "reusing the existing checkout"
    result = await second.conn.exec("cat scratch.txt && touch again.txt", timeout_s=30)
    assert (result.exit_code, result.stdout) == (0, "kept")
    owner = bwrap_provider.box_user().uid
    assert (repo / "again.txt").stat().st_uid == owner
    assert (repo / "scratch.txt").stat().st_uid == owner
