"""A session workspace of bounded size: a sparse ext4 image per session, loop-mounted at the
workspace directory while a box runs.

Writing past the image's size fails with ``ENOSPC`` inside the box (the host's disk is not
touched beyond it), and the box's mount table shows the mount's root as ``/`` rather than the
host path of the workspace. The image ``<workspace>.img`` sits beside the workspace (like its
log), outside the box's view; it persists with the session, so the next box of the session
mounts it again (grown first if ``workspace_mib`` was raised since). Mounting needs root: a
non-root server cannot bound workspace disk this way, and :func:`probe_workspace_images` says so.

A server killed with its boxes running leaves images mounted; the provider unmounts every image
under its workspaces directory when it starts (:func:`unmount_stale`), and :func:`mount_image`
reuses a mount it finds in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from openinspect.errors import SandboxUnavailable
from openinspect.timeouts import wait_for

from .cgroups import _unescape

logger = logging.getLogger(__name__)

IMAGE_SUFFIX = ".img"
MOUNT_OPTIONS = "loop,nodev,nosuid,noatime"
MKFS_OPTIONS = ("-E", "lazy_itable_init=1,lazy_journal_init=1")
TOOL_TIMEOUT_S = 60.0
TOOLS = ("mkfs.ext4", "mount", "umount")
LOOP_CONTROL = Path("/dev/loop-control")
MIB = 1024 * 1024


def image_path(workspace_dir: Path) -> Path:
    return workspace_dir.parent / f"{workspace_dir.name}{IMAGE_SUFFIX}"


def probe_workspace_images() -> str | None:
    """None if this host can bound workspaces with loop-mounted images, else why not."""
    if os.geteuid() != 0:
        return "the server does not run as root, and mounting a workspace image needs root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install e2fsprogs mount)"
    if not LOOP_CONTROL.exists():
        return f"no loop devices ({LOOP_CONTROL} is missing; modprobe loop)"
    return None


def mount_points(mountinfo: str) -> list[tuple[Path, str]]:
    """Every mount point and its filesystem type in a ``/proc/self/mountinfo`` text."""
    found = []
    for line in mountinfo.splitlines():
        before, sep, after = line.partition(" - ")
        fields = before.split()
        if sep and len(fields) >= 5 and after:
            found.append((Path(_unescape(fields[4])), after.split()[0]))
    return found


def _mounted(path: Path) -> bool:
    with contextlib.suppress(OSError):
        text = Path("/proc/self/mountinfo").read_text()
        return any(point == path for point, _ in mount_points(text))
    return False


async def _run(*argv: str, ok: tuple[int, ...] = (0,)) -> None:
    """Run a tool; raises ``OSError`` with its stderr when it exits with a status not in
    ``ok``."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await wait_for(proc.communicate(), TOOL_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise OSError(f"{argv[0]} timed out") from None
    if proc.returncode not in ok:
        raise OSError(f"{argv[0]} failed ({proc.returncode}): {err.decode(errors='replace')}")


async def mount_image(workspace_dir: Path, size_bytes: int) -> bool:
    """Mount the workspace's image at ``workspace_dir`` (creating the image the first time).

    Returns False, leaving the directory as it is, for a workspace that already holds files
    but has no image (made before limits existed: mounting would hide its files). Raises
    ``SandboxUnavailable`` when the image cannot be made or mounted.
    """
    try:
        workspace_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        workspace_dir = workspace_dir.resolve()
        if _mounted(workspace_dir):
            return True  # left by a server that was killed: the same image, reuse it
        image = image_path(workspace_dir)
        fresh = not image.exists()
        if fresh and any(workspace_dir.iterdir()):
            logger.warning(
                "workspace %s predates workspace images: its disk use is not limited",
                workspace_dir,
            )
            return False
        if fresh:
            staging = image.with_name(f".{image.name}.new")
            with staging.open("wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.truncate(size_bytes)  # sparse: disk is used as the box writes
            # -m 0: no blocks reserved for root, so the size is the limit for everyone; lazy
            # init: a sparse file reads as zeros already, so the host disk holds ~4 MiB, not 70.
            await _run("mkfs.ext4", "-q", "-F", "-m", "0", *MKFS_OPTIONS, str(staging))
            staging.rename(image)
        elif image.stat().st_size < size_bytes:
            await _grow(image, size_bytes)
        await _run("mount", "-o", MOUNT_OPTIONS, str(image), str(workspace_dir))
    except OSError as exc:
        logger.error("cannot mount the workspace image of %s: %s", workspace_dir, exc)
        raise SandboxUnavailable(
            "cannot mount the session's workspace image",
            hint="see the server log; or set OPENINSPECT_SANDBOX__WORKSPACE_MIB=0",
        ) from exc
    if fresh:
        with contextlib.suppress(OSError):
            (workspace_dir / "lost+found").rmdir()
        workspace_dir.chmod(0o700)
    return True


async def _grow(image: Path, size_bytes: int) -> None:
    """Grow an unmounted image to a raised ``workspace_mib``; on failure it keeps its size.
    (A lowered setting leaves images as they are: shrinking could lose the session's files.)"""
    try:
        os.truncate(image, size_bytes)
        await _run("e2fsck", "-f", "-p", str(image), ok=(0, 1))  # 1: errors corrected
        await _run("resize2fs", "-p", str(image))
    except OSError as exc:
        logger.warning("cannot grow the workspace image %s: %s", image, exc)


async def unmount_image(workspace_dir: Path) -> None:
    """Unmount the workspace's image (lazily if something still holds it); never raises."""
    workspace_dir = workspace_dir.resolve()
    if not _mounted(workspace_dir):
        return
    try:
        await _run("umount", str(workspace_dir))
    except OSError:
        try:
            await _run("umount", "-l", str(workspace_dir))
        except OSError as exc:
            logger.warning("cannot unmount the workspace %s: %s", workspace_dir, exc)


def unmount_stale(workspaces_dir: Path) -> int:
    """Unmount every image still mounted under ``workspaces_dir``; returns how many."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
        root = workspaces_dir.resolve()
    except OSError:
        return 0
    stale = [p for p, fstype in mount_points(text) if fstype == "ext4" and p.parent == root]
    for point in stale:
        done = subprocess.run(
            ["umount", "-l", str(point)], capture_output=True, timeout=TOOL_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            logger.warning("cannot unmount the stale workspace %s", point)
    return len(stale)
