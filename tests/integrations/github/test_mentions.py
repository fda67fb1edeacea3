"""Mentions of the bot: ``@slug`` and ``@slug[bot]`` in any case, as a whole word only; the ask
without them; a fix request is a mention followed by the word "fix"."""

from __future__ import annotations

import pytest

from openinspect.integrations.github.mentions import ask_of, fix_request, mentions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@inspect please review", True),
        ("hey @Inspect[bot], thoughts?", True),
        ("(@INSPECT)", True),
        ("@inspector please", False),
        ("mail me at a@inspect.dev", False),
        ("@inspect-team look", False),
        ("no mention here", False),
    ],
)
def test_a_mention_is_the_slug_as_a_whole_word(text: str, expected: bool) -> None:
    assert mentions(text, "inspect") is expected


def test_the_ask_and_the_fix_request() -> None:
    assert ask_of("@inspect[bot] why does this fail?", "inspect") == "why does this fail?"
    assert fix_request("@inspect fix the failing test", "inspect") == "fix the failing test"
    assert fix_request("@inspect: Fix it please", "inspect") == "Fix it please"
    assert fix_request("@inspect fixture names look odd", "inspect") is None
    assert fix_request("@inspect why?", "inspect") is None
    assert fix_request("fix it", "inspect") is None
    assert fix_request("@inspect fix", "") is None
