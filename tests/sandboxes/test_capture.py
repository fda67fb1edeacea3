"""The bounded output capture: a head, a tail, and exact counts of what it left out."""

from __future__ import annotations

import re

from openinspect.sandboxes.capture import OutputCapture

NOTICE = re.compile(r"\[… ([\d,]+) bytes \(([\d,]+) lines\) omitted …\]\n")
SPLIT = re.compile(r"\[… [\d,]+ bytes \([\d,]+ lines\) omitted …\]\n")


def _sides(text: str, full: str) -> tuple[str, str]:
    """The kept head and tail, without the newline put before a notice after a cut line."""
    head, tail = SPLIT.split(text)
    if not full.startswith(head):
        assert head.endswith("\n")
        head = head[:-1]
    return head, tail


def _numbers(n: int) -> str:
    return "".join(f"{i}\n" for i in range(1, n + 1))


def _accounted(text: str, full: str) -> None:
    """What is shown plus what the notice counts is exactly the original."""
    (found,) = NOTICE.findall(text)
    omitted_bytes, omitted_lines = (int(n.replace(",", "")) for n in found)
    head, tail = _sides(text, full)
    assert full.startswith(head) and full.endswith(tail)
    assert len(head.encode()) + omitted_bytes + len(tail.encode()) == len(full.encode())
    assert head.count("\n") + omitted_lines + tail.count("\n") == full.count("\n")


def test_short_output_is_kept_whole() -> None:
    capture = OutputCapture(100, 100)
    capture.add("one\ntwo\n")
    assert capture.render() == ("one\ntwo\n", None)
    assert not capture.truncated


def test_long_output_keeps_head_and_tail_fed_in_small_pieces() -> None:
    full = _numbers(100_000)
    capture = OutputCapture(1000, 1000)
    for start in range(0, len(full), 7):
        capture.add(full[start : start + 7])
    text, omitted = capture.render()
    assert omitted is not None and capture.truncated
    assert text.startswith("1\n2\n") and text.endswith("99999\n100000\n")
    assert len(text) <= 2000 + 100
    _accounted(text, full)


def test_a_smaller_render_counts_everything_missing_from_it() -> None:
    full = _numbers(50_000)
    capture = OutputCapture(10_000, 10_000)
    capture.add(full)
    text, _ = capture.render(300, 150)
    assert len(text) < 500
    assert text.endswith("50000\n")
    _accounted(text, full)


def test_multibyte_output_is_counted_in_bytes() -> None:
    full = "é" * 5000 + "\nlast line ✓\n"
    capture = OutputCapture(100, 100)
    capture.add(full)
    text, omitted = capture.render()
    assert omitted is not None and omitted.bytes == 2 * omitted.chars
    assert text.endswith("last line ✓\n")
    _accounted(text, full)


def test_cuts_move_to_line_ends() -> None:
    full = "".join(f"line {i:05d}\n" for i in range(10_000))
    capture = OutputCapture(1005, 1005)  # not a multiple of the 11-character lines
    capture.add(full)
    text, _ = capture.render()
    head, tail = _sides(text, full)
    assert head.endswith("\n") and all(len(x) == 10 for x in head.splitlines())
    assert all(len(x) == 10 for x in tail.splitlines())
