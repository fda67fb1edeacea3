"""Snapshots of real bubblewrap boxes: a box's workspace (an uncommitted file, a package
installed in a venv) comes back in a new box restored from it, which runs ``start.sh`` and not
``setup.sh``; a damaged or missing snapshot starts nothing and leaves the workspace alone."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from openinspect.errors import SandboxBootFailed, SnapshotCorrupt, SnapshotFailed
from openinspect.sandboxes.base import SnapshotRef
from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.sandboxes.local import LocalHandle
from openinspect.sandboxes.snapshots import marker_path
from openinspect.settings import Settings
from openinspect.testing.repos import make_sample_repo
from openinspect.testing.wheels import build_wheel

from .conftest import StartSandbox, pids_tagged

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(240)]

BOOT_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 120.0


def install_command(wheel: Path) -> str:
    """Shell that drops the wheel in the box, installs it into a venv in the workspace and
    leaves a file git does not track."""
    data = base64.b64encode(wheel.read_bytes()).decode()
    return (
        f"mkdir -p ../wheels && echo {data} | base64 -d > ../wheels/{wheel.name} && "
        "python3 -m venv ../venv && "
        "../venv/bin/pip install -q --no-index --find-links ../wheels tinypkg && "
        "echo 'draft: not committed' > draft.txt && echo draft.txt >> .git/info/exclude"
    )


def snapshot_file(settings: Settings, ref: SnapshotRef) -> Path:
    return settings.home_dir / "snapshots" / ref.key


async def test_a_restored_box_has_the_work_of_the_snapshotted_one(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox, settings: Settings, tmp_path: Path
) -> None:
    first = await start_sandbox(bwrap_provider)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    await first.bind()
    wheel = build_wheel(tmp_path / "wheels")
    done = await first.conn.exec(install_command(wheel), timeout_s=INSTALL_TIMEOUT_S)
    assert done.exit_code == 0, done.stderr

    ref = await bwrap_provider.snapshot(first.handle)
    archive = snapshot_file(settings, ref)
    assert ref.provider == "bwrap" and ref.size_bytes == archive.stat().st_size
    assert ref.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    # The first box dies hard: nothing of it is needed any more.
    assert isinstance(first.handle, LocalHandle)
    os.kill(first.handle.pid, signal.SIGKILL)
    await bwrap_provider.wait(first.handle)

    second = await start_sandbox(
        bwrap_provider,
        boot_mode="snapshot_restore",
        restore_from=ref,
        work_branch=first.work_branch,
    )
    await second.conn.wait_ready(BOOT_TIMEOUT_S)
    await second.bind()
    check = await second.conn.exec(
        "cat draft.txt; ../venv/bin/python -c 'import tinypkg; print(tinypkg.VALUE)'; "
        "cat .setup-ran .start-ran; git status --porcelain",
        timeout_s=30,
    )
    assert check.exit_code == 0, check.stderr
    lines = check.stdout.splitlines()
    assert lines[:2] == ["draft: not committed", "42"]
    # setup.sh ran once, in the first box; start.sh ran again, told it is a restore.
    assert lines[2:4] == ["fresh", "snapshot_restore"]
    assert "setup" not in [e.get("phase") for e in second.of_type("boot")]
    assert lines[4:] == []  # the draft is excluded, as it was: the checkout came back whole


async def test_a_damaged_snapshot_starts_no_box_and_leaves_the_workspace(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox, settings: Settings
) -> None:
    first = await start_sandbox(bwrap_provider)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await first.conn.exec("echo work > work.txt", timeout_s=30)).exit_code == 0
    ref = await bwrap_provider.snapshot(first.handle)
    await bwrap_provider.destroy(first.handle)

    archive = snapshot_file(settings, ref)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    workspace = settings.workspaces_dir / "sbx-damaged"
    workspace.mkdir(parents=True)
    (workspace / "kept.txt").write_text("what was here\n")
    with pytest.raises(SnapshotCorrupt, match="does not match its recorded digest"):
        await start_sandbox(
            bwrap_provider,
            sandbox_id="sbx-damaged",
            workspace_dir=workspace,
            boot_mode="snapshot_restore",
            restore_from=ref,
        )
    assert not pids_tagged("sbx-damaged")
    assert sorted(p.name for p in workspace.iterdir()) == ["kept.txt"]

    archive.unlink()
    with pytest.raises(SnapshotCorrupt, match="missing"):
        await start_sandbox(
            bwrap_provider, workspace_dir=workspace, boot_mode="snapshot_restore", restore_from=ref
        )
    assert sorted(p.name for p in workspace.iterdir()) == ["kept.txt"]


async def test_discarding_a_snapshot_deletes_its_archive(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox, settings: Settings
) -> None:
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    ref = await bwrap_provider.snapshot(box.handle)
    assert snapshot_file(settings, ref).is_file()
    await bwrap_provider.discard_snapshot(ref)
    await bwrap_provider.discard_snapshot(ref)  # idempotent
    assert not snapshot_file(settings, ref).exists()


async def test_a_workspace_without_its_checkout_is_not_snapshotted(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox, settings: Settings
) -> None:
    """An empty workspace is never a box's state: recording it would make the next box
    restore nothing in place of the work."""
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await box.conn.exec("rm -rf /workspace/repo/.git", timeout_s=30)).exit_code == 0
    with pytest.raises(SnapshotFailed, match="no checkout"):
        await bwrap_provider.snapshot(box.handle)
    assert not list((settings.home_dir / "snapshots").glob("*"))


async def test_a_workspace_image_unmounted_under_a_live_box_is_not_snapshotted(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    workspace = box.spec.workspace_dir
    if not os.path.ismount(workspace):
        pytest.skip("this server binds workspaces (no images): nothing to unmount")
    subprocess.run(["umount", "-l", str(workspace)], check=True)
    with pytest.raises(SnapshotFailed, match="not where the server can read it"):
        await bwrap_provider.snapshot(box.handle)


async def test_the_same_workspace_is_kept_when_it_is_at_the_snapshot(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    """On the host that took the snapshot, a workspace still at it (or past it: a box killed
    during the next prompt) is kept rather than unpacked over; without the marker it is
    replaced by the archive's state."""
    first = await start_sandbox(bwrap_provider, sandbox_id="sbx-keep-1")
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await first.conn.exec("echo before > before.txt", timeout_s=30)).exit_code == 0
    ref = await bwrap_provider.snapshot(first.handle)
    assert (await first.conn.exec("echo after > after.txt", timeout_s=30)).exit_code == 0
    await bwrap_provider.destroy(first.handle)
    workspace = first.spec.workspace_dir

    async def files_after_restore(sandbox_id: str) -> list[str]:
        box = await start_sandbox(
            bwrap_provider,
            sandbox_id=sandbox_id,
            workspace_dir=workspace,
            boot_mode="snapshot_restore",
            restore_from=ref,
        )
        await box.conn.wait_ready(BOOT_TIMEOUT_S)
        done = await box.conn.exec("ls before.txt after.txt 2>/dev/null; true", timeout_s=30)
        await bwrap_provider.destroy(box.handle)
        return done.stdout.split()

    assert await files_after_restore("sbx-keep-2") == ["after.txt", "before.txt"]
    marker_path(workspace).unlink()
    assert await files_after_restore("sbx-keep-3") == ["before.txt"]


async def test_a_restored_box_may_write_its_home_even_if_the_snapshot_had_none(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    first = await start_sandbox(bwrap_provider)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await first.conn.exec('rm -rf "$HOME"', timeout_s=30)).exit_code == 0
    ref = await bwrap_provider.snapshot(first.handle)
    await bwrap_provider.destroy(first.handle)
    second = await start_sandbox(bwrap_provider, boot_mode="snapshot_restore", restore_from=ref)
    await second.conn.wait_ready(BOOT_TIMEOUT_S)
    done = await second.conn.exec('echo hi > "$HOME/note" && cat "$HOME/note"', timeout_s=30)
    assert (done.exit_code, done.stdout) == (0, "hi\n"), done.stderr


async def test_a_borrowing_clone_comes_back_whole_from_the_archive_on_a_fresh_workspace(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox
) -> None:
    """The archive holds the clone's own objects and its alternates (the box's path of the
    mirror's objects); a box restored on a fresh workspace of a host whose mirror has the
    history borrows it again and has a whole repo: log, fsck, a commit on top."""
    first = await start_sandbox(bwrap_provider)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    await first.bind()
    work = (
        "echo work > work.txt && git add work.txt && "
        "git -c user.name=t -c user.email=t@x commit -qm work"
    )
    assert (await first.conn.exec(work, timeout_s=30)).exit_code == 0
    ref = await bwrap_provider.snapshot(first.handle)
    await bwrap_provider.destroy(first.handle)

    second = await start_sandbox(
        bwrap_provider,
        boot_mode="snapshot_restore",
        restore_from=ref,
        work_branch=first.work_branch,
    )
    assert second.spec.workspace_dir != first.spec.workspace_dir  # unpacked, not kept
    await second.conn.wait_ready(BOOT_TIMEOUT_S)
    await second.bind()
    check = await second.conn.exec(
        "cat .git/objects/info/alternates; git log --format=%s; "
        "git fsck --connectivity-only --no-dangling --no-progress && echo fsck-ok; "
        "echo more >> work.txt && git -c user.name=t -c user.email=t@x commit -qam more && "
        "git log -1 --format=%s",
        timeout_s=60,
    )
    assert check.exit_code == 0, check.stderr
    assert check.stdout.splitlines() == [
        "/opt/openinspect/mirror",
        "work",
        "sample",
        "fsck-ok",
        "more",
    ]


async def test_a_restored_clone_whose_history_this_mirror_lacks_fails_its_boot_visibly(
    bwrap_provider: BwrapProvider, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    """Restored where the mirror does not have what the clone borrowed (another host's mirror
    of a rewritten history, here an unrelated repo): the boot fails and says why, rather than
    a box whose repo breaks at the first ``git log``."""
    first = await start_sandbox(bwrap_provider)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    ref = await bwrap_provider.snapshot(first.handle)
    await bwrap_provider.destroy(first.handle)
    (tmp_path / "other").mkdir()
    other = make_sample_repo(tmp_path / "other")  # a main branch too, of other commits

    second = await start_sandbox(
        bwrap_provider, boot_mode="snapshot_restore", restore_from=ref, clone_source=str(other)
    )
    with pytest.raises(SandboxBootFailed) as failed:
        await second.conn.wait_ready(BOOT_TIMEOUT_S)
    assert "history is not all here" in str(failed.value)
