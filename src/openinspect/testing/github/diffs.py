"""A pull request's diff as GitHub computes it: the three-dot diff (merge base of base and head
→ head) with rename detection, split per file into GitHub's ``patch`` (the hunks, without the
``diff --git`` headers), and the rules for anchoring a review comment on it.

A review comment anchors on a ``line`` of one ``side``: ``RIGHT`` counts new-file lines (added
or context), ``LEFT`` old-file lines (deleted or context); only lines inside a hunk of that
file's patch can carry a comment. The legacy ``position`` counts the lines below the file's
first ``@@`` header (the line right below it is 1; later headers count too).

Diffs are pure functions of two commit ids, so they are cached per (repo, base, head).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from openinspect.testing.github import gitops

Side = Literal["LEFT", "RIGHT"]
HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
STATUSES = {"A": "added", "D": "removed", "M": "modified", "T": "changed", "R": "renamed"}
CACHE_SIZE = 256


@dataclass(frozen=True)
class DiffLine:
    """One line of a patch after the first ``@@``: its ``position``, its kind (`` ``, ``+``,
    ``-``, ``@`` for a later hunk header, ``\\`` for "no newline") and its line numbers."""

    position: int
    kind: str
    old: int | None
    new: int | None
    hunk: int
    text: str


@dataclass(frozen=True)
class FileDiff:
    filename: str
    status: str
    sha: str
    """The blob of the file at the head (at the base for a removed file)."""
    additions: int
    deletions: int
    patch: str | None
    """None for binary files (GitHub leaves ``patch`` out)."""
    previous_filename: str | None = None

    @property
    def changes(self) -> int:
        return self.additions + self.deletions

    @functools.cached_property
    def lines(self) -> tuple[DiffLine, ...]:
        return parse_patch(self.patch or "")

    def find(self, line: int, side: Side) -> DiffLine | None:
        """The diff line showing ``line`` of ``side``, or None when no hunk covers it."""
        for entry in self.lines:
            number = entry.new if side == "RIGHT" else entry.old
            if number == line and entry.kind in (" ", "+" if side == "RIGHT" else "-"):
                return entry
        return None

    def at(self, position: int) -> DiffLine | None:
        return next((e for e in self.lines if e.position == position), None)

    def hunk_up_to(self, entry: DiffLine) -> str:
        """GitHub's ``diff_hunk`` of a comment: its hunk's header down to the commented line."""
        text = (self.patch or "").split("\n")
        return "\n".join(text[self.header_index(entry.hunk) : entry.position + 1])

    def header_index(self, hunk: int) -> int:
        headers = [i for i, t in enumerate((self.patch or "").split("\n")) if t.startswith("@@")]
        return headers[hunk]


def parse_patch(patch: str) -> tuple[DiffLine, ...]:
    out: list[DiffLine] = []
    old = new = 0
    hunk = -1
    rows = patch.split("\n")
    for index, text in enumerate(rows):
        match = HUNK_RE.match(text)
        if match:
            hunk += 1
            old, new = int(match[1]), int(match[3])
            if index > 0:
                out.append(DiffLine(index, "@", None, None, hunk, text))
            continue
        if hunk < 0 or (not text and index == len(rows) - 1):
            continue
        kind = text[:1] or " "
        if kind == "+":
            out.append(DiffLine(index, kind, None, new, hunk, text))
            new += 1
        elif kind == "-":
            out.append(DiffLine(index, kind, old, None, hunk, text))
            old += 1
        elif kind == "\\":
            out.append(DiffLine(index, kind, None, None, hunk, text))
        else:
            out.append(DiffLine(index, " ", old, new, hunk, text))
            old += 1
            new += 1
    return tuple(out)


def merge_base(path: Path, base_sha: str, head_sha: str) -> str:
    return gitops.git("merge-base", base_sha, head_sha, cwd=path).strip()


def pull_files(path: Path, base_sha: str, head_sha: str) -> tuple[FileDiff, ...]:
    """The files a PR changes, as ``GET /pulls/{n}/files`` lists them."""
    return _files(str(path), merge_base(path, base_sha, head_sha), head_sha)


def unified(path: Path, base_sha: str, head_sha: str) -> str:
    """The whole diff, as ``Accept: application/vnd.github.diff`` answers it."""
    return _unified(str(path), merge_base(path, base_sha, head_sha), head_sha)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _unified(path: str, old: str, new: str) -> str:
    return gitops.git("diff", "--no-color", "--no-ext-diff", "-M", old, new, cwd=Path(path))


@functools.lru_cache(maxsize=CACHE_SIZE)
def _files(path: str, old: str, new: str) -> tuple[FileDiff, ...]:
    raw = gitops.git("diff", "--raw", "-z", "-M", "--no-abbrev", old, new, cwd=Path(path))
    entries = _raw_entries(raw)
    chunks = re.split(r"^diff --git ", _unified(path, old, new), flags=re.MULTILINE)[1:]
    files = []
    for (status, old_sha, new_sha, names), chunk in zip(entries, chunks, strict=True):
        patch = _patch_of(chunk)
        lines = parse_patch(patch or "")
        files.append(
            FileDiff(
                filename=names[-1],
                status=STATUSES.get(status[:1], "modified"),
                sha=old_sha if status == "D" else new_sha,
                additions=sum(e.kind == "+" for e in lines),
                deletions=sum(e.kind == "-" for e in lines),
                patch=patch,
                previous_filename=names[0] if status.startswith("R") else None,
            )
        )
    return tuple(files)


def _raw_entries(raw: str) -> list[tuple[str, str, str, list[str]]]:
    """``git diff --raw -z``: ``:old_mode new_mode old_sha new_sha status\\0path[\\0path]\\0``."""
    fields = raw.split("\0")
    out = []
    i = 0
    while i < len(fields) and fields[i].startswith(":"):
        _, _, old_sha, new_sha, status = fields[i][1:].split(" ")
        count = 2 if status[:1] in ("R", "C") else 1
        out.append((status, old_sha, new_sha, fields[i + 1 : i + 1 + count]))
        i += 1 + count
    return out


def _patch_of(chunk: str) -> str | None:
    start = chunk.find("\n@@")
    if start < 0:
        return None  # binary, or a rename or mode change without content changes
    return chunk[start + 1 :].removesuffix("\n")
