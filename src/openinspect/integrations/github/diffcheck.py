"""Which lines of a pull request a review comment may land on: GitHub accepts a line comment
only inside a hunk of that file's diff, on its side (``RIGHT``: a line of the new file the hunk
shows, added or context; ``LEFT``: a line of the old file it shows, removed or context), and a
multi-line comment only when both ends are in the same hunk. Pure: no I/O.

``DiffMap.from_files(files)`` reads GitHub's per-file ``patch`` texts; ``why_not(comment)`` is
None for a comment GitHub will take, else the reason it would answer 422 for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from openinspect.scm.base import PullFile

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class FileLines:
    """The lines of one file the diff shows, each with the number of its hunk."""

    right: dict[int, int] = field(default_factory=dict)
    left: dict[int, int] = field(default_factory=dict)


def parse_patch(patch: str) -> FileLines:
    lines = FileLines()
    old = new = 0
    hunk = -1
    for text in patch.splitlines():
        found = _HUNK.match(text)
        if found:
            hunk += 1
            old, new = int(found[1]), int(found[3])
            continue
        if hunk < 0 or text.startswith("\\"):  # before the first hunk; "\ No newline…"
            continue
        if text.startswith("+"):
            lines.right[new] = hunk
            new += 1
        elif text.startswith("-"):
            lines.left[old] = hunk
            old += 1
        else:
            lines.right[new] = hunk
            lines.left[old] = hunk
            old += 1
            new += 1
    return lines


@dataclass(frozen=True)
class LineComment:
    path: str
    line: int
    side: str = "RIGHT"
    start_line: int | None = None


class DiffMap:
    def __init__(self, files: dict[str, FileLines]) -> None:
        self.files = files

    @classmethod
    def from_files(cls, files: Iterable[PullFile]) -> DiffMap:
        return cls({f.filename: parse_patch(f.patch) for f in files if f.patch is not None})

    def why_not(self, comment: LineComment) -> str | None:
        lines = self.files.get(comment.path)
        if lines is None:
            return "the file is not in the pull request's diff"
        shown = lines.right if comment.side == "RIGHT" else lines.left
        hunk = shown.get(comment.line)
        if hunk is None:
            return f"line {comment.line} ({comment.side}) is outside the diff's hunks"
        if comment.start_line is not None:
            if comment.start_line >= comment.line:
                return "start_line must come before line"
            if shown.get(comment.start_line) != hunk:
                return "start_line and line are not in the same hunk"
        return None
