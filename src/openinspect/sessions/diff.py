"""The changes of a session: its branch against its base, per file, for the web app's panel.

Computed on the host from the control plane's trusted bare mirror, never from the sandbox's
repository (whose config and hooks the agent controls). The session branch lives on the origin,
so each computation first asks the origin for the tips of the base and the branch
(``git ls-remote``, with the origin's credentials when it has some), fetches them into the mirror
only if the mirror lacks those commits, and diffs the branch against the merge base
(``base...branch``) with rename detection.

A result is cached per session and keyed by the two tips: concurrent callers wait for one
computation, and for ``FETCH_INTERVAL_S`` after a check the origin is not asked again unless the
session's event log moved (a commit and push always append events, so a push is seen at once).

Output is bounded: ``FILE_PATCH_MAX_BYTES`` of patch per file, ``TOTAL_PATCH_MAX_BYTES`` in all,
``MAX_FILES`` files; whatever was cut is flagged ``truncated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from openinspect.domain.models import Session
from openinspect.errors import GitError, OpenInspectError
from openinspect.sessions.git import ensure_mirror, git, git_env, mirror_path
from openinspect.sessions.origins import mirror_lock

FETCH_INTERVAL_S = 5.0
LIST_COMPUTE_MAX = 4
"""Diffs a session list request may compute (the rest come from the cache, or later polls)."""
GIT_DIFF_TIMEOUT_S = 60.0
FILE_PATCH_MAX_BYTES = 256 * 1024
TOTAL_PATCH_MAX_BYTES = 2 * 1024 * 1024
MAX_FILES = 300
_READ_CHUNK_BYTES = 64 * 1024
# Plain unified diff whatever the user's git config says: no colour, no external diff driver or
# textconv (the repository's attributes could name one), renames detected.
_DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--find-renames")

FileStatus = Literal["added", "modified", "deleted", "renamed"]
_STATUS: dict[str, FileStatus] = {
    "A": "added",
    "C": "added",
    "M": "modified",
    "T": "modified",
    "D": "deleted",
    "R": "renamed",
}


@dataclass(frozen=True)
class FileDiff:
    path: str
    old_path: str | None
    """The path before a rename, else None."""
    status: FileStatus
    additions: int
    deletions: int
    patch: str
    """The unified diff hunks, from the first ``@@`` line; empty for binary files."""
    binary: bool
    truncated: bool
    """The patch was cut (per-file or total limit)."""


@dataclass(frozen=True)
class BranchDiff:
    base: str
    branch: str
    base_sha: str | None
    """The merge base the diff is taken from (None until the branch is pushed)."""
    head_sha: str | None
    """The session branch's tip on the origin (None until it is pushed)."""
    files: tuple[FileDiff, ...]
    truncated: bool
    """Files were left out, or a patch was cut."""


@dataclass
class _Cached:
    tips: tuple[str | None, str | None]
    checked_at: float
    last_seq: int
    diff: BranchDiff


AuthEnv = Callable[[str], Awaitable[dict[str, str]]]
"""Extra environment (credentials) for host git talking to an origin (``Origins.git_env``)."""


async def _no_auth(origin: str) -> dict[str, str]:
    return {}


class SessionDiffs:
    """Computes and caches sessions' diffs. One instance per process (the session manager's)."""

    def __init__(
        self,
        mirrors_dir: Path,
        *,
        auth_env: AuthEnv = _no_auth,
        fetch_interval_s: float = FETCH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mirrors_dir = mirrors_dir
        self._auth_env = auth_env
        self._interval_s = fetch_interval_s
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._failed: dict[str, int] = {}  # session id → last_seq its diff last failed at
        self._session_locks: dict[str, asyncio.Lock] = {}

    async def get(self, session: Session) -> BranchDiff:
        """The diff of ``session``'s branch against its base. Raises ``GitError``."""
        lock = self._session_locks.setdefault(session.id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(session.id)
            now = self._clock()
            if (
                cached is not None
                and cached.last_seq == session.last_seq
                and now - cached.checked_at < self._interval_s
            ):
                return cached.diff
            mirror = mirror_path(self._mirrors_dir, session.repo_url)
            async with mirror_lock(mirror):
                auth = await self._auth_env(session.repo_url)
                if not (mirror / "HEAD").exists():
                    await ensure_mirror(self._mirrors_dir, session.repo_url, auth)
                tips = await _tips(mirror, session, {**git_env(), **auth})
            if cached is not None and cached.tips == tips:
                diff = cached.diff
            else:
                diff = await _compute(mirror, session, *tips)
            self._cache[session.id] = _Cached(tips, now, session.last_seq, diff)
            return diff

    async def for_list(
        self, sessions: Sequence[Session], *, compute_max: int = LIST_COMPUTE_MAX
    ) -> dict[str, BranchDiff]:
        """The diffs a session list shows as a stat, by session id: cached ones, plus up to
        ``compute_max`` computed now for sessions never looked at, or idle ones whose log moved
        since (a running session keeps its last stat until it stops). A session whose diff
        fails (its origin is gone) is not retried until its log moves."""
        out: dict[str, BranchDiff] = {}
        todo: list[Session] = []
        for session in sessions:
            cached = self._cache.get(session.id)
            if cached is not None:
                out[session.id] = cached.diff
            stale = cached is None or (
                cached.last_seq != session.last_seq and session.status != "active"
            )
            if stale and self._failed.get(session.id) != session.last_seq:
                todo.append(session)
        results = await asyncio.gather(
            *(self.get(s) for s in todo[:compute_max]), return_exceptions=True
        )
        for session, result in zip(todo, results, strict=False):
            if isinstance(result, BranchDiff):
                out[session.id] = result
                self._failed.pop(session.id, None)
            elif isinstance(result, OpenInspectError):
                self._failed[session.id] = session.last_seq
            elif isinstance(result, BaseException):
                raise result
        return out


async def _tips(
    mirror: Path, session: Session, env: dict[str, str]
) -> tuple[str | None, str | None]:
    """The commits the base and the session branch point to on the origin, present in the mirror
    (fetched if need be). The branch is None when it was never pushed. ``env`` is git's
    environment for talking to the origin."""
    heads = {session.base_branch: "", session.branch: ""}
    listed = await git(
        "ls-remote",
        "--heads",
        "--",
        session.repo_url,
        *(f"refs/heads/{name}" for name in heads),
        cwd=mirror,
        env=env,
        timeout_s=GIT_DIFF_TIMEOUT_S,
    )
    for line in listed.splitlines():
        sha, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/heads/")
        if name in heads:
            heads[name] = sha
    resolved: dict[str, str | None] = {}
    for name, sha in heads.items():
        if sha and not await _has_commit(mirror, sha):
            await git(
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                session.repo_url,
                f"+refs/heads/{name}:refs/heads/{name}",
                cwd=mirror,
                env=env,
                timeout_s=GIT_DIFF_TIMEOUT_S,
            )
            sha = (await git("rev-parse", f"refs/heads/{name}", cwd=mirror)).strip()
        resolved[name] = sha or None
    base = resolved[session.base_branch]
    if base is None:
        raise GitError(
            f"The base branch {session.base_branch!r} is not on {session.repo_url}",
            hint="It was deleted or renamed on the origin",
        )
    return base, resolved[session.branch]


async def _has_commit(mirror: Path, sha: str) -> bool:
    try:
        await git("cat-file", "-e", f"{sha}^{{commit}}", cwd=mirror)
    except GitError:
        return False
    return True


async def _compute(
    mirror: Path, session: Session, base: str | None, head: str | None
) -> BranchDiff:
    if base is None or head is None:
        return BranchDiff(session.base_branch, session.branch, None, None, (), False)
    try:
        merge_base = (await git("merge-base", base, head, cwd=mirror)).strip()
    except GitError:  # unrelated histories: compare with the base's tip
        merge_base = base
    changes = await _changes(mirror, merge_base, head)
    listed = changes[:MAX_FILES]
    patches = await _patches(mirror, merge_base, head, len(listed))
    files = tuple(
        FileDiff(
            path=path,
            old_path=old_path,
            status=status,
            additions=additions,
            deletions=deletions,
            patch="" if binary else patch,
            binary=binary,
            truncated=cut,
        )
        for (path, old_path, status, additions, deletions, binary), (patch, cut) in zip(
            listed, patches, strict=True
        )
    )
    truncated = len(changes) > len(listed) or any(f.truncated for f in files)
    return BranchDiff(session.base_branch, session.branch, merge_base, head, files, truncated)


_Change = tuple[str, str | None, FileStatus, int, int, bool]


async def _changes(mirror: Path, old: str, new: str) -> list[_Change]:
    """Per changed file, in git's order: path, old path, status, additions, deletions, binary."""
    names = await git(
        "diff",
        *_DIFF_OPTIONS,
        "--name-status",
        "-z",
        old,
        new,
        cwd=mirror,
        timeout_s=GIT_DIFF_TIMEOUT_S,
    )
    counts = await git(
        "diff",
        *_DIFF_OPTIONS,
        "--numstat",
        "-z",
        old,
        new,
        cwd=mirror,
        timeout_s=GIT_DIFF_TIMEOUT_S,
    )
    statuses: list[tuple[FileStatus, str, str | None]] = []
    tokens = names.split("\0")
    i = 0
    while i + 1 < len(tokens) and tokens[i]:
        letter = tokens[i][0]
        if letter in "RC":
            statuses.append((_STATUS[letter], tokens[i + 2], tokens[i + 1]))
            i += 3
        else:
            statuses.append((_STATUS.get(letter, "modified"), tokens[i + 1], None))
            i += 2
    numbers: list[tuple[int, int, bool]] = []
    tokens = counts.split("\0")
    i = 0
    while i < len(tokens) and tokens[i]:
        added, deleted, path = tokens[i].split("\t", 2)
        binary = added == "-"
        numbers.append((0 if binary else int(added), 0 if binary else int(deleted), binary))
        i += 1 if path else 3
    if len(numbers) != len(statuses):
        raise GitError(f"git diff listed {len(statuses)} files but counted {len(numbers)}")
    return [
        (path, None if status != "renamed" else old_path, status, added, deleted, binary)
        for (status, path, old_path), (added, deleted, binary) in zip(
            statuses, numbers, strict=True
        )
    ]


class _Splitter:
    """Splits ``git diff --patch`` output, line by line, into per-file hunks within the limits."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.sections: list[bytearray] = []
        self.cut: list[bool] = []
        self.total = 0
        self.full = False
        """Nothing more can be kept: the file or byte limit is reached."""
        self._in_hunks = False

    def line(self, line: bytes) -> None:
        if line.startswith(b"diff --git "):
            if len(self.sections) == self.count:
                self.full = True
                return
            self.sections.append(bytearray())
            self.cut.append(False)
            self._in_hunks = False
            return
        if not self.sections:
            return
        self._in_hunks = self._in_hunks or line.startswith(b"@@")
        if not self._in_hunks or self.cut[-1]:
            return
        size = len(line) + 1
        if len(self.sections[-1]) + size > FILE_PATCH_MAX_BYTES:
            self.cut[-1] = True
        elif self.total + size > TOTAL_PATCH_MAX_BYTES:
            self.cut[-1] = True
            self.full = True
        else:
            self.sections[-1] += line + b"\n"
            self.total += size

    def overlong(self) -> None:
        """The current line is longer than any patch may be: drop it and cut the file."""
        if self.sections and self._in_hunks:
            self.cut[-1] = True

    def result(self) -> list[tuple[str, bool]]:
        out = [
            (bytes(s).decode(errors="replace"), c)
            for s, c in zip(self.sections, self.cut, strict=True)
        ]
        # Files past the total limit get no patch.
        return out + [("", True)] * (self.count - len(out))


async def _patches(mirror: Path, old: str, new: str, count: int) -> list[tuple[str, bool]]:
    """The hunks of the first ``count`` files of ``git diff old new`` as ``(hunks, truncated)``,
    each cut to ``FILE_PATCH_MAX_BYTES`` and all to ``TOTAL_PATCH_MAX_BYTES``. Reads git's output
    as a stream and kills git once nothing more can be kept."""
    splitter = _Splitter(count)
    proc = await asyncio.create_subprocess_exec(
        "git",
        "diff",
        *_DIFF_OPTIONS,
        "--patch",
        old,
        new,
        cwd=mirror,
        env=git_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(GIT_DIFF_TIMEOUT_S):
            pending, skipping = b"", False
            while not splitter.full:
                chunk = await proc.stdout.read(_READ_CHUNK_BYTES)
                if not chunk:
                    if pending and not skipping:
                        splitter.line(pending)  # the last line had no newline
                    break
                if skipping:
                    end = chunk.find(b"\n")
                    if end < 0:
                        continue
                    chunk, skipping = chunk[end + 1 :], False
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    splitter.line(line)
                    if splitter.full:
                        break
                if len(pending) > FILE_PATCH_MAX_BYTES:
                    splitter.overlong()
                    pending, skipping = b"", True
            if splitter.full:
                proc.kill()
            err = await proc.stderr.read()
            await proc.wait()
    except TimeoutError as exc:
        raise GitError(f"git diff timed out after {GIT_DIFF_TIMEOUT_S:g} s") from exc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if not splitter.full and proc.returncode != 0:
        raise GitError(f"git diff failed: {err.decode(errors='replace').strip()}")
    return splitter.result()
