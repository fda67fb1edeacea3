"""File methods: ``read_file``, ``write_file``, ``edit_file``, ``glob``, ``grep``.

All are blocking and meant to run in a worker thread. Relative paths resolve against the repo;
absolute paths are taken as they are (the sandbox, not this module, is the boundary).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from .params import optional_int, optional_str, require_str
from .protocol import (
    EditFileResult,
    GlobResult,
    GrepResult,
    ReadFileResult,
    RpcFailure,
    WriteFileResult,
)

MAX_READ_CHARS = 1_000_000
"""``read_file`` stops adding lines past this size and sets ``truncated`` (so that the answer
fits in a bridge frame, :data:`~.protocol.MAX_FRAME_BYTES`, for any text)."""
MAX_GLOB_RESULTS = 1000
MAX_GREP_MATCHES = 500
MAX_GREP_LINE_CHARS = 500
MAX_GREP_FILE_BYTES = 16 * 1024 * 1024
GREP_DEADLINE_S = 30.0
_BINARY_SNIFF_BYTES = 8192
_SKIP_DIRS = frozenset({".git"})
_NS_PER_S = 1_000_000_000
MTIME_STEP_NS = 1_000
"""How far past the previous mtime a rewritten file is moved when the clock did not move it
(1 µs: visible to tools comparing nanoseconds or microseconds)."""


class FileOps:
    """The file methods, rooted at one repo directory."""

    def __init__(self, repo_dir: Path) -> None:
        self.repo_dir = repo_dir

    def _resolve(self, raw: str) -> Path:
        path = Path(raw)
        return path if path.is_absolute() else self.repo_dir / path

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_dir).as_posix()
        except ValueError:
            return str(path)

    def read_file(self, params: Mapping[str, object]) -> ReadFileResult:
        """Lines ``offset`` (1-based) to ``offset + limit - 1`` of a text file, and its count."""
        path = self._resolve(require_str(params, "path", allow_empty=False))
        offset = optional_int(params, "offset", minimum=1) or 1
        limit = optional_int(params, "limit", minimum=1)
        _check_file(path)
        selected: list[str] = []
        size = 0
        truncated = False
        total = 0
        last = None if limit is None else offset + limit - 1
        try:
            # newline="" keeps "\r\n" as it is; iterating bounds memory to the selected window.
            with path.open(encoding="utf-8", errors="replace", newline="") as fh:
                for total, line in enumerate(fh, start=1):
                    if total < offset or (last is not None and total > last) or truncated:
                        continue
                    if size + len(line) > MAX_READ_CHARS:
                        truncated = True
                        # One giant line (minified code) still shows its beginning.
                        selected.append(line[: MAX_READ_CHARS - size])
                        continue
                    selected.append(line)
                    size += len(line)
        except OSError as exc:
            raise _io_failure("read", path, exc) from exc
        return {"content": "".join(selected), "total_lines": total, "truncated": truncated}

    def write_file(self, params: Mapping[str, object]) -> WriteFileResult:
        """Replace a file's content, creating it and its parent directories as needed."""
        path = self._resolve(require_str(params, "path", allow_empty=False))
        content = require_str(params, "content")
        try:
            data = content.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError as exc:
            raise RpcFailure("invalid_params", f"content is not valid text: {exc.reason}") from exc
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            before = _stat_or_none(path)
            path.write_bytes(data)
            _look_changed(path, before)
        except IsADirectoryError as exc:
            raise RpcFailure("io_error", f"{self._display(path)} is a directory") from exc
        except OSError as exc:
            raise _io_failure("write", path, exc) from exc
        return {"path": self._display(path), "bytes": len(data)}

    def edit_file(self, params: Mapping[str, object]) -> EditFileResult:
        """Replace the one occurrence of ``old`` with ``new``."""
        path = self._resolve(require_str(params, "path", allow_empty=False))
        old = require_str(params, "old", allow_empty=False)
        new = require_str(params, "new")
        _check_file(path)
        shown = self._display(path)
        try:
            # surrogateescape round-trips bytes that are not UTF-8 instead of corrupting them.
            text = path.read_bytes().decode("utf-8", errors="surrogateescape")
            count = text.count(old)
            if count == 0:
                raise RpcFailure(
                    "edit_no_match",
                    f"the text to replace was not found in {shown}; read the file and copy the "
                    "exact text, including whitespace",
                )
            if count > 1:
                raise RpcFailure(
                    "edit_ambiguous",
                    f"the text to replace was found {count} times in {shown}; include more "
                    "surrounding lines so that it matches exactly once",
                )
            before = path.stat()
            path.write_bytes(text.replace(old, new, 1).encode("utf-8", errors="surrogateescape"))
            _look_changed(path, before)
        except OSError as exc:
            raise _io_failure("edit", path, exc) from exc
        return {"path": shown}

    def glob(self, params: Mapping[str, object]) -> GlobResult:
        """Paths under the repo matching a glob (``*``, ``?``, ``[..]``, ``{a,b}``, ``**``)."""
        pattern = require_str(params, "pattern", allow_empty=False)
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise RpcFailure(
                "invalid_params",
                f"glob patterns are relative to the repo and stay inside it, got {pattern!r}",
            )
        regex = glob_regex(pattern)
        found: list[str] = []
        for rel in _walk(self.repo_dir, include_dirs=True):
            if regex.match(rel):
                found.append(rel)
        found.sort()
        return {"paths": found[:MAX_GLOB_RESULTS], "truncated": len(found) > MAX_GLOB_RESULTS}

    def grep(self, params: Mapping[str, object]) -> GrepResult:
        """Lines matching a regex, like ``git grep --untracked``: .gitignore'd and binary files
        are skipped, as is ``.git``; at most :data:`MAX_GREP_MATCHES` results."""
        raw_pattern = require_str(params, "pattern", allow_empty=False)
        try:
            regex = re.compile(raw_pattern)
        except re.error as exc:
            raise RpcFailure("invalid_params", f"invalid regex {raw_pattern!r}: {exc}") from exc
        raw_path = optional_str(params, "path")
        root = self._resolve(raw_path) if raw_path else self.repo_dir
        if not root.exists():
            raise RpcFailure("not_found", f"no such file or directory: {self._display(root)}")
        matches: list[str] = []
        deadline = time.monotonic() + GREP_DEADLINE_S
        for path in _candidate_files(root):
            if time.monotonic() > deadline or len(matches) > MAX_GREP_MATCHES:
                break
            self._grep_file(path, regex, matches)
        truncated = len(matches) > MAX_GREP_MATCHES or time.monotonic() > deadline
        return {"matches": matches[:MAX_GREP_MATCHES], "truncated": truncated}

    def _grep_file(self, path: Path, regex: re.Pattern[str], out: list[str]) -> None:
        try:
            if path.stat().st_size > MAX_GREP_FILE_BYTES:
                return
            data = path.read_bytes()
        except OSError:
            return  # vanished or unreadable mid-search: grep skips it too
        if b"\0" in data[:_BINARY_SNIFF_BYTES]:
            return
        shown = self._display(path)
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if regex.search(line):
                out.append(f"{shown}:{number}:{line[:MAX_GREP_LINE_CHARS]}")
                if len(out) > MAX_GREP_MATCHES:
                    return


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _look_changed(path: Path, before: os.stat_result | None) -> None:
    """Make a rewritten file look changed to tools that judge by mtime (and size).

    Writing within the same clock tick as the previous write (or on a filesystem with coarse
    timestamps, or after the clock stepped back) can leave the mtime as it was; Python's bytecode
    cache goes further and compares whole seconds plus the size, so a same-size rewrite within
    the same second ran the old ``.pyc``. The mtime is moved strictly past the old one, and to
    the next whole second when the size is unchanged. That can put it up to a second in the
    future, which tools tolerate far better than a missed change.
    """
    if before is None:
        return  # a new file: nothing has seen an older version of it
    after = path.stat()
    old_ns, new_ns = before.st_mtime_ns, after.st_mtime_ns
    target_ns = max(new_ns, old_ns + MTIME_STEP_NS)
    same_second = target_ns // _NS_PER_S == old_ns // _NS_PER_S
    if after.st_size == before.st_size and same_second:
        target_ns = (old_ns // _NS_PER_S + 1) * _NS_PER_S
    if target_ns != new_ns:
        os.utime(path, ns=(after.st_atime_ns, target_ns))


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise RpcFailure("io_error", f"{path} is a directory; use glob to list it")
    if not path.exists():
        raise RpcFailure("not_found", f"no such file: {path}")


def _io_failure(verb: str, path: Path, exc: OSError) -> RpcFailure:
    return RpcFailure("io_error", f"cannot {verb} {path}: {exc.strerror or exc}")


def _walk(root: Path, *, include_dirs: bool) -> Iterator[str]:
    """Paths under ``root`` relative to it, ``.git`` pruned, symlinked dirs not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        base = Path(dirpath).relative_to(root)
        names = filenames + dirnames if include_dirs else filenames
        for name in sorted(names):
            yield (base / name).as_posix()


def _candidate_files(root: Path) -> Iterator[Path]:
    """Files to grep: tracked and untracked-but-not-ignored ones when ``root`` is in a git work
    tree (what ``git grep --untracked`` searches), else every file under it."""
    if root.is_file():
        yield root
        return
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        seen: set[str] = set()
        for rel in sorted(listed.stdout.decode("utf-8", errors="surrogateescape").split("\0")):
            if rel and rel not in seen:  # a conflicted file is listed once per stage
                seen.add(rel)
                path = root / rel
                if path.is_file() and not path.is_symlink():
                    yield path
        return
    for rel in _walk(root, include_dirs=False):
        yield root / rel


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob over ``/``-separated relative paths; ``**`` spans directories."""
    parts = pattern.split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(_segment_regex(part) + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := segment.find("]", i + 2)) != -1:
            body = segment[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif char == "{" and (end := segment.find("}", i)) != -1:
            options = segment[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_segment_regex(o) for o in options) + ")")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)
