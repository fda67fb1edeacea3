"""The display copy of a tool call's arguments (``shown_args``): unchanged when small, bounded
however large or deep the model's arguments are."""

from __future__ import annotations

import json

from openinspect.agent.tools import ARG_LIST_SHOWN, shown_args

LIMIT = 4_096


def size(args: object) -> int:
    return len(json.dumps(args, ensure_ascii=False))


def test_small_arguments_are_kept_as_they_are() -> None:
    args = {"path": "calc.py", "content": "x = 1\n", "n": 3}
    assert shown_args(args, LIMIT) is args


def test_a_long_string_keeps_its_start_and_end_and_says_what_was_cut() -> None:
    content = "START" + "x" * 100_000 + "END"
    shown = shown_args({"path": "big.txt", "content": content}, LIMIT)
    assert shown["path"] == "big.txt"
    assert shown["content"].startswith("START") and shown["content"].endswith("END")
    assert "omitted" in shown["content"]
    assert size(shown) <= LIMIT


def test_a_long_list_keeps_its_first_items_and_counts_the_rest() -> None:
    comments = [{"path": "a.py", "line": i, "body": "b" * 50} for i in range(5_000)]
    shown = shown_args({"event": "COMMENT", "comments": comments}, 64 * 1024)
    assert len(shown["comments"]) == ARG_LIST_SHOWN + 1
    assert shown["comments"][-1] == f"[… {5_000 - ARG_LIST_SHOWN:,} more items omitted …]"


def test_what_is_still_too_large_becomes_a_bounded_preview() -> None:
    wide = {f"key{i}": "v" * 300 for i in range(5_000)}
    shown = shown_args({"nested": [wide] * 200}, LIMIT)
    assert set(shown) == {"preview", "omitted_chars"}
    assert len(shown["preview"]) == LIMIT and shown["omitted_chars"] > 0
