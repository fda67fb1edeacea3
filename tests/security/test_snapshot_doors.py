"""A snapshot is made from a workspace the agent controls, so both directions are doors.

Writing: a symlink in the workspace is archived as a symlink, never as the host file it names;
fifos are skipped without blocking; a workspace past the caps is refused. Reading: an archive
is refused (``SnapshotCorrupt``, the workspace left as it was) for a digest mismatch, an
absolute or ``..`` path, a path through a symlink, a symlink leaving the workspace, a hard
link, a device or fifo, and past the file or byte caps; setuid, setgid and sticky bits are
cleared; a recorded key that is a path is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from openinspect.errors import SnapshotCorrupt, SnapshotFailed
from openinspect.sandboxes.archive import ArchiveLimits, restore_archive, write_archive
from openinspect.sandboxes.base import SnapshotRef
from openinspect.sandboxes.snapshots import WorkspaceSnapshots

LIMITS = ArchiveLimits(max_bytes=1024 * 1024, max_files=100)
HOST_SECRET = "HOST-SECRET-snapshot-5e1f"

Member = Callable[[tarfile.TarFile], None]


def make_archive(path: Path, *members: Member) -> str:
    """A gzip tar archive holding ``members`` (each adds itself); returns its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for add in members:
            add(tar)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def regular(name: str, data: bytes = b"x", mode: int = 0o644) -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))

    return add


def special(name: str, kind: bytes, linkname: str = "") -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        if kind == tarfile.DIRTYPE:
            info.mode = 0o755
        tar.addfile(info)

    return add


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "kept.txt").write_text("what was here\n")
    return workspace


def assert_untouched(workspace: Path) -> None:
    assert sorted(p.name for p in workspace.iterdir()) == ["kept.txt"]
    assert (workspace / "kept.txt").read_text() == "what was here\n"


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([regular("/etc/evil")], "outside the workspace"),
        ([regular("../evil")], "outside the workspace"),
        ([regular("repo/../../evil")], "outside the workspace"),
        ([special("link", tarfile.SYMTYPE, "/etc"), regular("link/evil")], "out of the box"),
        ([special("link", tarfile.SYMTYPE, "../.."), regular("link/evil")], "leaves"),
        ([special("d", tarfile.DIRTYPE), special("d/up", tarfile.SYMTYPE, "../../x")], "leaves"),
        ([regular("a"), special("hard", tarfile.LNKTYPE, "a")], "hard link"),
        ([special("null", tarfile.CHRTYPE)], "device"),
        ([special("disk", tarfile.BLKTYPE)], "device"),
        ([special("pipe", tarfile.FIFOTYPE)], "fifo"),
        ([regular("f"), regular("f")], "twice"),
        ([regular(f"f{i}") for i in range(LIMITS.max_files + 1)], "more than 100 files"),
        ([regular("big", b"x" * (LIMITS.max_bytes + 1))], "more than 1 MiB"),
    ],
)
def test_a_hostile_archive_is_refused_and_changes_nothing(
    tmp_path: Path, dest: Path, members: list[Member], why: str
) -> None:
    archive = tmp_path / "hostile.tar.gz"
    digest = make_archive(archive, *members)
    with pytest.raises(SnapshotCorrupt, match=why):
        restore_archive(archive, digest, dest, LIMITS, owner=None)
    assert_untouched(dest)
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_a_file_through_a_symlink_inside_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "through.tar.gz"
    digest = make_archive(
        archive,
        special("real", tarfile.DIRTYPE),
        special("alias", tarfile.SYMTYPE, "real"),
        regular("alias/file"),
    )
    with pytest.raises(SnapshotCorrupt, match="below a file or symlink"):
        restore_archive(archive, digest, dest, LIMITS, owner=None)
    assert_untouched(dest)


def test_a_changed_or_truncated_archive_fails_its_digest(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "fine.tar.gz"
    digest = make_archive(archive, regular("a.txt", b"hello"))
    archive.write_bytes(archive.read_bytes()[:-8])
    with pytest.raises(SnapshotCorrupt, match="digest"):
        restore_archive(archive, digest, dest, LIMITS, owner=None)
    assert_untouched(dest)


def test_garbage_with_a_matching_digest_is_refused(tmp_path: Path, dest: Path) -> None:
    for name in ("junk.tar.gz", "junk.tar.zst"):
        archive = tmp_path / name
        archive.write_bytes(os.urandom(4096))
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        with pytest.raises(SnapshotCorrupt, match=r"cannot be read|not valid zstd"):
            restore_archive(archive, digest, dest, LIMITS, owner=None)
        assert_untouched(dest)


def test_special_bits_are_cleared_and_box_links_kept(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "bits.tar.gz"
    digest = make_archive(
        archive,
        special("bin", tarfile.DIRTYPE),
        regular("bin/tool", b"#!/bin/sh\n", mode=0o6755),
        special("bin/python", tarfile.SYMTYPE, "/usr/bin/python3"),
        special("bin/here", tarfile.SYMTYPE, "tool"),
    )
    restore_archive(archive, digest, dest, LIMITS, owner=None)
    tool = dest / "bin" / "tool"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o755
    assert os.readlink(dest / "bin" / "python") == "/usr/bin/python3"
    assert os.readlink(dest / "bin" / "here") == "tool"
    assert not (dest / "kept.txt").exists()  # a restore replaces the workspace's contents


def test_writing_never_follows_a_symlink_or_blocks_on_a_fifo(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text(HOST_SECRET)
    workspace = tmp_path / "workspace"
    (workspace / "repo").mkdir(parents=True)
    (workspace / "repo" / "leak").symlink_to(secret)
    (workspace / "repo" / "leakdir").symlink_to(tmp_path)
    os.mkfifo(workspace / "repo" / "pipe")
    archive = tmp_path / "out.tar.gz"
    info = write_archive(workspace, archive, LIMITS)
    assert info.files == 3  # repo, and its two symlinks; the fifo is skipped
    with tarfile.open(archive) as tar:
        names = {m.name: m for m in tar.getmembers()}
        assert names["repo/leak"].issym() and names["repo/leak"].linkname == str(secret)
        for member in tar.getmembers():
            if member.isreg():
                extracted = tar.extractfile(member)
                assert extracted is not None and HOST_SECRET.encode() not in extracted.read()
    assert HOST_SECRET.encode() not in archive.read_bytes()


def test_writing_a_workspace_past_the_caps_fails(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "big").write_bytes(b"x" * (LIMITS.max_bytes + 1))
    archive = tmp_path / "out.tar.gz"
    with pytest.raises(SnapshotFailed, match="more than 1 MiB"):
        write_archive(workspace, archive, LIMITS)
    assert not archive.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    "ref",
    [
        SnapshotRef("bwrap", "../../etc/passwd", "0" * 64, 1),
        SnapshotRef("bwrap", "/etc/passwd", "0" * 64, 1),
        SnapshotRef("bwrap", "sbx.tar.zst/../x.tar.zst", "0" * 64, 1),
        SnapshotRef("docker", "sbx-1.tar.zst", "0" * 64, 1),
    ],
)
async def test_a_recorded_key_that_is_not_a_name_of_ours_is_refused(
    tmp_path: Path, dest: Path, ref: SnapshotRef
) -> None:
    snapshots = WorkspaceSnapshots("bwrap", tmp_path / "snapshots", LIMITS)
    with pytest.raises(SnapshotCorrupt):
        await snapshots.unpack(ref, dest, owner=None)
    await snapshots.discard(ref)  # refused quietly: nothing outside is deleted
    assert_untouched(dest)
