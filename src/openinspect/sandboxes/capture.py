"""Bounded capture of a command's output: a head, a ring-buffer tail, and exact counts of the rest.

A command may print gigabytes; the control plane keeps the first ``head_chars`` and the last
``tail_chars`` (the tail is where test summaries and error messages are) and counts what it drops,
so memory stays bounded however much arrives, and a cut copy can say exactly where and how much
was left out.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

OMITTED_NOTICE = "[… {bytes:,} bytes ({lines:,} lines) omitted …]"
"""The marker that replaces the middle of cut output (it says where: here, and how much)."""


@dataclass(frozen=True)
class Omitted:
    """What a rendering left out of the middle of the output."""

    chars: int
    bytes: int
    lines: int
    """Newlines in the left-out part."""

    def notice(self) -> str:
        """The marker line put in place of the left-out part."""
        return OMITTED_NOTICE.format(bytes=self.bytes, lines=self.lines)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", errors="replace"))


class OutputCapture:
    """Keeps the head and the tail of a stream of text, and totals of everything it saw.

    ``add`` costs O(len(data)) and holds at most ``head_chars + tail_chars`` characters plus one
    chunk; ``render`` makes a copy with a smaller head and tail if asked, which is how the same
    capture gives the stored event and the model's (shorter) copy.
    """

    def __init__(self, head_chars: int, tail_chars: int) -> None:
        self._head_limit = head_chars
        self._tail_limit = tail_chars
        self._head: list[str] = []
        self._head_size = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0
        self.total_chars = 0
        self.total_bytes = 0
        self.total_lines = 0
        self._dropped = Omitted(0, 0, 0)
        self._dropped_last = ""  # the last character dropped: does the tail start a line?

    def add(self, data: str) -> None:
        """Append output."""
        if not data:
            return
        self.total_chars += len(data)
        self.total_bytes += _utf8_len(data)
        self.total_lines += data.count("\n")
        room = self._head_limit - self._head_size
        if room > 0:
            self._head.append(data[:room])
            self._head_size += min(room, len(data))
            data = data[room:]
            if not data:
                return
        self._tail.append(data)
        self._tail_size += len(data)
        excess = self._tail_size - self._tail_limit
        while excess > 0:
            oldest = self._tail[0]
            if len(oldest) <= excess:
                self._tail.popleft()
                cut = oldest
            else:
                cut, self._tail[0] = oldest[:excess], oldest[excess:]
            self._tail_size -= len(cut)
            excess -= len(cut)
            self._dropped_last = cut[-1]
            self._dropped = Omitted(
                self._dropped.chars + len(cut),
                self._dropped.bytes + _utf8_len(cut),
                self._dropped.lines + cut.count("\n"),
            )

    @property
    def truncated(self) -> bool:
        """Whether anything was dropped already (a render may still cut more)."""
        return self._dropped.chars > 0

    def render(
        self, head_chars: int | None = None, tail_chars: int | None = None
    ) -> tuple[str, Omitted | None]:
        """The output with at most ``head_chars`` + ``tail_chars`` characters kept (default: all
        that was kept) and a notice line in place of the middle; the notice's counts cover
        everything left out, also what :meth:`add` already dropped. Returns (text, omitted)."""
        head_text = "".join(self._head)
        tail_text = "".join(self._tail)
        head_keep = len(head_text) if head_chars is None else min(head_chars, len(head_text))
        tail_keep = len(tail_text) if tail_chars is None else min(tail_chars, len(tail_text))
        head, middle_head = head_text[:head_keep], head_text[head_keep:]
        cut_at = len(tail_text) - tail_keep
        middle_tail, tail = tail_text[:cut_at], tail_text[cut_at:]
        if not (middle_head or middle_tail or self.truncated):
            return head + tail, None
        # Cut at line ends where one is near, so neither side starts or ends mid-line.
        head, middle_head = _cut_head_at_line(head, middle_head)
        before_tail = (middle_tail or self._dropped_last or middle_head or head)[-1:]
        middle_tail, tail = _cut_tail_at_line(middle_tail, tail, before_tail)
        omitted = Omitted(
            len(middle_head) + self._dropped.chars + len(middle_tail),
            _utf8_len(middle_head) + self._dropped.bytes + _utf8_len(middle_tail),
            middle_head.count("\n") + self._dropped.lines + middle_tail.count("\n"),
        )
        separator = "" if not head or head.endswith("\n") else "\n"
        return f"{head}{separator}{omitted.notice()}\n{tail}", omitted


_LINE_SLACK = 0.2
"""A cut moves to a line end only if that gives up less than this share of the kept part."""


def _cut_head_at_line(head: str, rest: str) -> tuple[str, str]:
    end = head.rfind("\n") + 1
    if end and len(head) - end <= len(head) * _LINE_SLACK:
        return head[:end], head[end:] + rest
    return head, rest


def _cut_tail_at_line(rest: str, tail: str, before: str) -> tuple[str, str]:
    if before in ("\n", ""):
        return rest, tail
    start = tail.find("\n") + 1
    if start and start <= len(tail) * _LINE_SLACK:
        return rest + tail[:start], tail[start:]
    return rest, tail
