"""Workspace snapshots of the local backends: one archive file per snapshot (:mod:`.archive`)
under ``<home>/snapshots``.

Chosen by measurement over hard-link copies, reflink copies and overlay layers (the numbers are
in ``docs/sandboxes.md``): a hard-link copy shares its files' contents with the live workspace, so
a box writing a file in place changes the snapshot too; this host's ext4 has no reflinks; an
overlay layer per snapshot needs the lower layers kept for ever and is tied to one host's mount
support. An archive is a single file a store row can name with its digest, that can be checked
before use, and that moves to object storage unchanged when boxes run on several hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import stat
from pathlib import Path

from openinspect.errors import SnapshotCorrupt, SnapshotFailed
from openinspect.settings import SandboxSettings

from .archive import (
    ArchiveLimits,
    archive_suffix,
    restore_archive,
    verify_archive,
    write_archive,
)
from .base import SnapshotRef

SNAPSHOTS_DIRNAME = "snapshots"
REPO_DIRNAME = "repo"
REPO_GIT = f"{REPO_DIRNAME}/.git"
MARKER_SUFFIX = ".snapshot"
MIB = 1024 * 1024
_KEY = re.compile(r"[A-Za-z0-9_-]{1,80}\.tar\.(zst|gz)")
"""What a key this module made looks like: a bare file name, never a path."""


def archive_limits(settings: SandboxSettings) -> ArchiveLimits:
    return ArchiveLimits(settings.snapshot_max_mib * MIB, settings.snapshot_max_files)


class WorkspaceSnapshots:
    """Archives of workspaces in ``directory``, for the provider named ``provider``."""

    def __init__(self, provider: str, directory: Path, limits: ArchiveLimits) -> None:
        self._provider = provider
        self._dir = directory
        self._limits = limits

    async def capture(self, sandbox_id: str, workspace: Path) -> SnapshotRef:
        """Archive ``workspace``; raises ``SnapshotFailed``, also for a workspace without a
        checkout: that is never a box's state (an image unmounted under a running box shows
        the empty directory below it), and restoring it would replace the work with nothing."""
        if not await asyncio.to_thread(_has_checkout, workspace):
            raise SnapshotFailed(
                "the workspace holds no checkout of the repo", hint="see the server log"
            )
        try:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SnapshotFailed(
                f"cannot create the snapshots directory: {exc.strerror or exc}",
                hint="check that the server may write its home directory",
            ) from exc
        key = f"{sandbox_id}-{secrets.token_hex(4)}{archive_suffix()}"
        info = await asyncio.to_thread(write_archive, workspace, self._dir / key, self._limits)
        await asyncio.to_thread(_write_marker, workspace, key)
        return SnapshotRef(self._provider, key, info.sha256, info.size_bytes)

    async def unpack(
        self, ref: SnapshotRef, workspace: Path, owner: tuple[int, int] | None
    ) -> bool:
        """Put ``ref``'s state in ``workspace``; raises ``SnapshotCorrupt`` (and then leaves the
        workspace as it was). Returns whether the archive was unpacked.

        A workspace on this host that ``ref`` was taken of (its marker, beside it and out of
        every box's view, names ``ref``) and that still has its checkout holds that state or a
        newer one (a box killed during the next prompt left that prompt's work): it is kept as
        it is. The archive is checked in every case, so a damaged snapshot is found at once."""
        path = self._path(ref)
        if await asyncio.to_thread(_is_at, workspace, ref.key):
            await asyncio.to_thread(verify_archive, path, ref.sha256)
            return False
        await asyncio.to_thread(_clear_marker, workspace)
        await asyncio.to_thread(
            restore_archive, path, ref.sha256, workspace, self._limits, owner=owner
        )
        await asyncio.to_thread(_write_marker, workspace, ref.key)
        return True

    async def discard(self, ref: SnapshotRef) -> None:
        """Delete ``ref``'s archive; idempotent."""
        try:
            path = self._path(ref)
        except SnapshotCorrupt:
            return
        await asyncio.to_thread(_unlink, path)

    def _path(self, ref: SnapshotRef) -> Path:
        if ref.provider != self._provider:
            raise SnapshotCorrupt(
                f"the snapshot was made by the {ref.provider!r} backend, not {self._provider!r}",
                hint="set sandbox.provider back to the backend that made it",
            )
        if not _KEY.fullmatch(ref.key):
            raise SnapshotCorrupt("the snapshot's recorded name is not one this server makes")
        return self._dir / ref.key


def marker_path(workspace: Path) -> Path:
    """Which snapshot ``workspace`` was last taken as or restored from: a host file beside it
    (like its log and image), which no box sees."""
    return workspace.parent / f"{workspace.name}{MARKER_SUFFIX}"


def _write_marker(workspace: Path, key: str) -> None:
    partial = marker_path(workspace).with_suffix(".partial")
    partial.write_text(key)
    os.replace(partial, marker_path(workspace))


def _clear_marker(workspace: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker_path(workspace))


def _is_at(workspace: Path, key: str) -> bool:
    try:
        at = marker_path(workspace).read_text()
    except OSError:
        return False
    return at == key and _has_checkout(workspace)


def _has_checkout(workspace: Path) -> bool:
    """Whether ``workspace`` has ``repo/.git`` as a directory (no link followed)."""
    try:
        return (
            stat.S_ISDIR(os.stat(workspace / REPO_GIT, follow_symlinks=False).st_mode)
            and not (workspace / REPO_DIRNAME).is_symlink()
        )
    except OSError:
        return False


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
