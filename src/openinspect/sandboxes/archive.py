"""Workspace archives: a box's workspace as one compressed tar file, written and read as data
that the agent controls.

*Writing* walks the workspace through directory descriptors (``O_NOFOLLOW`` at every step): a
box that swaps a file for a symlink while the walk runs gets its symlink archived, never the host
file it names. Only directories, regular files and symlinks are kept (fifos, sockets and devices
are skipped; a box cannot make devices anyway); modes keep their permission bits only, owners are
not recorded. A workspace past the file or byte cap fails the snapshot (``SnapshotFailed``).

*Reading* checks the archive's sha256 against the one recorded when it was written before it
touches the workspace, then extracts into a staging directory inside the workspace, member by
member, refusing (``SnapshotCorrupt``) any absolute or ``..`` path, any link but a symlink, a
symlink whose target leaves the workspace (a relative one climbing out, an absolute one outside
the box's own system paths), a device or fifo, and anything past the caps. Every entry is made
with ``openat``-style calls below a directory descriptor, never following a symlink, with
setuid, setgid and sticky bits cleared. Only a complete extraction replaces the workspace's
contents, so a refused archive leaves the workspace as it was.

The compression is zstd through the ``zstd`` program when the host has it (level 1: the
measurements in ``docs/sandboxes.md``), else gzip level 1 from the standard library; the format
is in the archive's name, so either server reads both.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from openinspect.errors import SnapshotCorrupt, SnapshotFailed

ZSTD_SUFFIX = ".tar.zst"
GZIP_SUFFIX = ".tar.gz"
ZSTD_LEVEL = "-1"
GZIP_LEVEL = 1
CHUNK_BYTES = 1024 * 1024
MAX_DEPTH = 128
"""Directory depth an archive may reach (deeper trees are refused, both ways)."""
MAX_NAME_BYTES = 4096
MAX_OPEN_DIRS = 256
STAGING_PREFIX = ".openinspect-restore-"
LINK_ROOTS = ("/usr/", "/bin/", "/lib/", "/lib64/", "/workspace/", "/tmp/")  # noqa: S108 - box paths
"""Where an absolute symlink of a restored box may point: the box's own view (a venv's
``bin/python`` is ``/usr/bin/python3``); anything else is refused."""
OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PERMISSION_BITS = 0o777


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what an archive may hold, checked when writing and again when reading."""

    max_bytes: int
    """File content, summed."""
    max_files: int
    """Entries of every kind."""


@dataclass(frozen=True)
class ArchiveInfo:
    """A written archive: its digest and size, and what it holds."""

    sha256: str
    size_bytes: int
    files: int
    content_bytes: int


def archive_suffix() -> str:
    """The suffix of archives this host writes: zstd when the ``zstd`` program is here."""
    return ZSTD_SUFFIX if shutil.which("zstd") else GZIP_SUFFIX


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


# -- writing ---------------------------------------------------------------------------------


def write_archive(source: Path, dest: Path, limits: ArchiveLimits) -> ArchiveInfo:
    """Archive the tree under ``source`` into ``dest`` (its suffix picks the compression).

    Blocking: call it in a thread. Raises ``SnapshotFailed`` (past a cap, or unreadable);
    ``dest`` exists only when it succeeded.
    """
    partial = dest.with_name(dest.name + ".partial")
    try:
        with _compressor(partial) as stream:
            counts = _Counts(limits)
            root = os.open(source, OPEN_DIR)
            try:
                with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    _add_dir(tar, root, PurePosixPath("."), counts, depth=0)
            finally:
                os.close(root)
        os.replace(partial, dest)
    except SnapshotFailed:
        partial.unlink(missing_ok=True)
        raise
    except (OSError, tarfile.TarError, subprocess.SubprocessError) as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotFailed(
            f"the workspace could not be archived: {_why(exc)}", hint="see the server log"
        ) from exc
    return ArchiveInfo(file_sha256(dest), dest.stat().st_size, counts.files, counts.bytes)


class _Counts:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.files = 0
        self.bytes = 0

    def add(self, size: int, error: type[SnapshotFailed] | type[SnapshotCorrupt]) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.limits.max_files:
            raise error(
                f"the workspace holds more than {self.limits.max_files:,} files",
                hint="delete build output or caches the box does not need, or raise "
                "OPENINSPECT_SANDBOX__SNAPSHOT_MAX_FILES",
            )
        if self.bytes > self.limits.max_bytes:
            raise error(
                f"the workspace holds more than {self.limits.max_bytes // (1024 * 1024):,} MiB",
                hint="delete build output or caches the box does not need, or raise "
                "OPENINSPECT_SANDBOX__SNAPSHOT_MAX_MIB",
            )


def _add_dir(
    tar: tarfile.TarFile, fd: int, path: PurePosixPath, counts: _Counts, depth: int
) -> None:
    if depth > MAX_DEPTH:
        raise SnapshotFailed(f"the workspace is deeper than {MAX_DEPTH} directories")
    with os.scandir(fd) as entries:
        # A directory's files first, then its subdirectories: the reader keeps one directory
        # open for all of them.
        names = sorted((entry.is_dir(follow_symlinks=False), entry.name) for entry in entries)
    for _, name in names:
        member = path / name
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:  # removed by the box meanwhile
            continue
        if stat.S_ISLNK(info.st_mode):
            counts.add(0, SnapshotFailed)
            entry = _tarinfo(member, info, tarfile.SYMTYPE)
            entry.linkname = os.readlink(name, dir_fd=fd)
            tar.addfile(entry)
        elif stat.S_ISDIR(info.st_mode):
            try:
                child = os.open(name, OPEN_DIR, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError, OSError):
                continue  # swapped for something else meanwhile
            try:
                counts.add(0, SnapshotFailed)
                tar.addfile(_tarinfo(member, os.fstat(child), tarfile.DIRTYPE))
                _add_dir(tar, child, member, counts, depth + 1)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            _add_file(tar, fd, name, member, counts)


def _add_file(
    tar: tarfile.TarFile, fd: int, name: str, member: PurePosixPath, counts: _Counts
) -> None:
    try:
        file_fd = os.open(name, OPEN_FILE, dir_fd=fd)
    except OSError:  # gone, or a symlink now: skipped, never followed
        return
    with os.fdopen(file_fd, "rb") as stream:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode):
            return
        counts.add(info.st_size, SnapshotFailed)
        entry = _tarinfo(member, info, tarfile.REGTYPE)
        entry.size = info.st_size
        tar.addfile(entry, _Exactly(stream, info.st_size))


def _tarinfo(member: PurePosixPath, info: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(str(member))
    entry.type = kind
    entry.mode = info.st_mode & PERMISSION_BITS
    entry.mtime = int(info.st_mtime)
    return entry


class _Exactly:
    """``size`` bytes of a file a box may be changing: cut when it grew, zero-padded when it
    shrank, so the archive stays well-formed (the file is as inconsistent as the box left it)."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._stream.read(n) if n else b""
        data += b"\0" * (n - len(data))
        self._left -= n
        return data


@contextlib.contextmanager
def _compressor(dest: Path) -> Iterator[IO[bytes] | gzip.GzipFile]:
    if dest.name.endswith(ZSTD_SUFFIX + ".partial"):
        with dest.open("wb") as out:
            proc = subprocess.Popen(
                ["zstd", ZSTD_LEVEL, "-q", "-T0", "-c"], stdin=subprocess.PIPE, stdout=out
            )
            assert proc.stdin is not None
            try:
                yield proc.stdin
            finally:
                proc.stdin.close()
                if proc.wait() != 0:
                    raise SnapshotFailed(f"zstd exited with {proc.returncode}")
    else:
        with gzip.open(dest, "wb", compresslevel=GZIP_LEVEL) as stream:
            yield stream


# -- reading ---------------------------------------------------------------------------------


def restore_archive(
    archive: Path, sha256: str, dest: Path, limits: ArchiveLimits, *, owner: tuple[int, int] | None
) -> int:
    """Replace the contents of ``dest`` with ``archive``'s, after checking its digest and every
    member; returns the number of entries. Blocking: call it in a thread.

    ``owner`` (uid, gid) owns what is made (a root server hands it to the box user). Raises
    ``SnapshotCorrupt``; ``dest`` is unchanged then.
    """
    verify_archive(archive, sha256)
    dest_fd = os.open(dest, OPEN_DIR)
    staging = f"{STAGING_PREFIX}{os.getpid()}"
    try:
        _remove_entry(dest_fd, staging)
        os.mkdir(staging, 0o700, dir_fd=dest_fd)
        stage_fd = os.open(staging, OPEN_DIR, dir_fd=dest_fd)
        try:
            count = _extract(archive, stage_fd, limits, owner)
            _swap_in(dest_fd, stage_fd, staging)
        finally:
            os.close(stage_fd)
    except BaseException:
        _remove_entry(dest_fd, staging)
        raise
    finally:
        os.close(dest_fd)
    return count


def verify_archive(archive: Path, sha256: str) -> None:
    """Raise ``SnapshotCorrupt`` unless ``archive`` exists with the digest ``sha256``."""
    if not archive.is_file():
        raise SnapshotCorrupt(
            "the snapshot's archive is missing",
            hint="the work since the last push is lost; servers that share sessions must share "
            "sandbox.snapshots_dir",
        )
    try:
        found = file_sha256(archive)
    except OSError as exc:
        raise SnapshotCorrupt(f"the snapshot cannot be read: {_why(exc)}") from exc
    if found != sha256:
        raise SnapshotCorrupt(
            "the snapshot's archive does not match its recorded digest",
            hint="it was changed or damaged after it was written; nothing was restored",
        )


Parts = tuple[str, ...]
"""A member's path below the extraction root, as its names (``()`` is the root itself)."""


def _extract(archive: Path, root: int, limits: ArchiveLimits, owner: tuple[int, int] | None) -> int:
    counts = _Counts(limits)
    dirs = _Parents(root)
    dir_modes: list[tuple[Parts, int]] = []
    try:
        with _decompressor(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                parts = _checked_parts(member.name)
                counts.add(member.size if member.isreg() else 0, SnapshotCorrupt)
                _make(tar, member, parts, dirs, owner, dir_modes)
        for parts, mode in reversed(dir_modes):  # deepest first: a 0500 dir after its content
            os.fchmod(dirs.open(parts), mode)
    except SnapshotCorrupt:
        raise
    except (OSError, EOFError, tarfile.TarError, subprocess.SubprocessError) as exc:
        raise SnapshotCorrupt(f"the snapshot's archive cannot be read: {_why(exc)}") from exc
    finally:
        dirs.close()
    return counts.files


class _Parents:
    """Directory descriptors below the extraction root, each reached from its parent's by one
    name without following a symlink, and kept (up to :data:`MAX_OPEN_DIRS`) since an archive
    lists a directory's entries together."""

    def __init__(self, root: int) -> None:
        self._root = root
        self._open: dict[Parts, int] = {}

    def open(self, parts: Parts) -> int:
        """A descriptor of the directory ``parts`` (owned by this cache)."""
        if not parts:
            return self._root
        found = self._open.get(parts)
        if found is not None:
            return found
        parent = self.open(parts[:-1])
        try:
            fd = os.open(parts[-1], OPEN_DIR, dir_fd=parent)
        except OSError as exc:
            raise SnapshotCorrupt("the snapshot holds a path below a file or symlink") from exc
        if len(self._open) >= MAX_OPEN_DIRS:
            self.close()
        self._open[parts] = fd
        return fd

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()


def _checked_parts(name: str) -> Parts:
    parts = tuple(part for part in name.split("/") if part and part != ".")
    if (
        not name
        or name.startswith("/")
        or "\0" in name
        or ".." in parts
        or len(parts) > MAX_DEPTH
        or len(name.encode()) > MAX_NAME_BYTES
    ):
        raise SnapshotCorrupt("the snapshot holds a path outside the workspace")
    return parts


def _check_link(parts: Parts, target: str) -> None:
    if not target or "\0" in target or len(target.encode()) > MAX_NAME_BYTES:
        raise SnapshotCorrupt("the snapshot holds a symlink with a bad target")
    if target.startswith("/"):
        normal = os.path.normpath(target)
        if normal == "/workspace" or any((normal + "/").startswith(root) for root in LINK_ROOTS):
            return
        raise SnapshotCorrupt("the snapshot holds a symlink that points out of the box's view")
    depth = len(parts) - 1  # the link's directory, below the root
    for part in target.split("/"):
        if part == "..":
            depth -= 1
        elif part and part != ".":
            depth += 1
        if depth < 0:
            raise SnapshotCorrupt("the snapshot holds a symlink that leaves the workspace")


def _make(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    parts: Parts,
    dirs: _Parents,
    owner: tuple[int, int] | None,
    dir_modes: list[tuple[Parts, int]],
) -> None:
    mode = member.mode & PERMISSION_BITS
    if not parts:
        if not member.isdir():
            raise SnapshotCorrupt("the snapshot's root is not a directory")
        return
    parent, name = dirs.open(parts[:-1]), parts[-1]
    try:
        if member.isdir():
            os.mkdir(name, 0o700, dir_fd=parent)
            dir_modes.append((parts, mode | 0o700))
        elif member.isreg():
            _write_file(tar, member, name, parent, mode)
        elif member.issym():
            _check_link(parts, member.linkname)
            os.symlink(member.linkname, name, dir_fd=parent)
        else:
            raise SnapshotCorrupt("the snapshot holds a hard link, device or fifo")
        if owner is not None:
            os.chown(name, *owner, dir_fd=parent, follow_symlinks=False)
    except FileExistsError as exc:
        raise SnapshotCorrupt("the snapshot holds a path twice") from exc


def _write_file(
    tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, parent: int, mode: int
) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=parent)
    try:
        if member.size:
            source = tar.extractfile(member)
            assert source is not None
            while chunk := source.read(CHUNK_BYTES):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        if mode != 0o600:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _swap_in(dest: int, stage: int, staging: str) -> None:
    """Empty ``dest`` but for the staging directory, then move the staged entries up."""
    for name in os.listdir(dest):
        if name != staging:
            _remove_entry(dest, name)
    for name in os.listdir(stage):
        os.rename(name, name, src_dir_fd=stage, dst_dir_fd=dest)
    os.rmdir(staging, dir_fd=dest)


def _remove_entry(parent: int, name: str) -> None:
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=parent)  # fd-based on Linux: never follows a symlink
    else:
        os.unlink(name, dir_fd=parent)


@contextlib.contextmanager
def _decompressor(archive: Path) -> Iterator[IO[bytes] | gzip.GzipFile]:
    if archive.name.endswith(ZSTD_SUFFIX):
        with archive.open("rb") as source:
            proc = subprocess.Popen(
                ["zstd", "-d", "-q", "-c"],
                stdin=source,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert proc.stdout is not None
            try:
                yield proc.stdout
                proc.stdout.read()  # to its end, so that zstd's status is its verdict
            except BaseException:
                proc.kill()
                raise
            finally:
                proc.stdout.close()
                proc.wait()
            if proc.returncode != 0:
                raise SnapshotCorrupt("the snapshot's archive is not valid zstd data")
    else:
        with gzip.open(archive, "rb") as stream:
            yield stream


def _why(exc: BaseException) -> str:
    """An error's reason without the host paths an OSError's text would carry."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
