"""Workspace images: real sparse ext4 images, really loop-mounted (needs a root server)."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.sandboxes.workspace_fs import (
    image_path,
    mount_image,
    probe_workspace_images,
    unmount_image,
    unmount_stale,
)

from .conftest import IN_CI

SIZE_MIB = 32
MIB = 1024 * 1024


@pytest.fixture
async def workspace(tmp_path: Path) -> AsyncIterator[Path]:
    reason = probe_workspace_images()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"workspace images are required under CI=true: {reason}")
        pytest.skip(reason)
    directory = tmp_path / "workspaces" / "ses-1"
    yield directory
    await unmount_image(directory)


def fill(path: Path, mib: int) -> None:
    with path.open("wb") as handle:
        for _ in range(mib):
            handle.write(b"\0" * MIB)
            handle.flush()
            os.fsync(handle.fileno())


def mounted(path: Path) -> int:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return points.count(str(path.resolve()))


async def test_the_image_bounds_the_workspace_and_outlives_its_mount(workspace: Path) -> None:
    assert await mount_image(workspace, SIZE_MIB * MIB) is True
    assert mounted(workspace) == 1
    assert os.listdir(workspace) == []  # no lost+found for the agent to wonder about
    (workspace / "kept.txt").write_text("from the first box\n")
    with pytest.raises(OSError) as filled:
        fill(workspace / "fill", SIZE_MIB * 2)
    assert filled.value.errno == errno.ENOSPC

    await unmount_image(workspace)
    assert mounted(workspace) == 0 and os.listdir(workspace) == []
    assert await mount_image(workspace, SIZE_MIB * MIB) is True  # the session's next box

    assert (workspace / "kept.txt").read_text() == "from the first box\n"
    assert image_path(workspace).stat().st_mode & 0o777 == 0o600


async def test_a_mount_left_by_a_killed_server_is_reused_or_cleaned(workspace: Path) -> None:
    await mount_image(workspace, SIZE_MIB * MIB)
    (workspace / "kept.txt").write_text("x")

    assert await mount_image(workspace, SIZE_MIB * MIB) is True
    assert mounted(workspace) == 1  # reused, not stacked

    assert unmount_stale(workspace.parent) == 1
    assert mounted(workspace) == 0
    await mount_image(workspace, SIZE_MIB * MIB)
    assert (workspace / "kept.txt").read_text() == "x"


async def test_a_workspace_from_before_images_is_left_visible(workspace: Path) -> None:
    workspace.mkdir(parents=True)
    (workspace / "repo").mkdir()

    assert await mount_image(workspace, SIZE_MIB * MIB) is False

    assert mounted(workspace) == 0
    assert (workspace / "repo").is_dir()
    assert not image_path(workspace).exists()


async def test_a_raised_limit_grows_the_image_and_keeps_its_files(workspace: Path) -> None:
    await mount_image(workspace, SIZE_MIB * MIB)
    (workspace / "kept.txt").write_text("x")
    await unmount_image(workspace)

    await mount_image(workspace, SIZE_MIB * 2 * MIB)

    assert (workspace / "kept.txt").read_text() == "x"
    stats = os.statvfs(workspace)
    assert stats.f_blocks * stats.f_frsize > SIZE_MIB * 1.5 * MIB
