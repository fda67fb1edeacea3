"""The README's first screen (everything above the screenshot) tells a newcomer what they need
before they type anything, and offers exactly two commands."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# How the README names the packages scripts/bootstrap.sh installs.
SHOWN_AS = {"nodejs": "Node.js", "chromium": "Chromium", "bubblewrap": "bubblewrap"}


def first_screen() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[: readme.index("![")]


def test_first_screen_offers_exactly_make_run_and_make_test() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", first_screen(), re.DOTALL)
    commands = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]


def test_first_screen_says_what_it_needs_and_installs() -> None:
    text = first_screen()
    assert "Linux" in text
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    packages = set(re.findall(r"(?:missing|browser)\+=\((\w+)\)", bootstrap))
    assert {"git", "bubblewrap", "nodejs", "chromium"} <= packages  # the parse found them
    for package in sorted(packages):
        assert SHOWN_AS.get(package, package) in text, package
    assert "uv" in text


def test_first_screen_says_where_branches_go_and_the_demo_is_separate() -> None:
    text = " ".join(first_screen().split())
    assert "pushed back to the repo's origin" in text
    assert "for a local path, that is the repository itself" in text
    assert "demo" in text and "throwaway server of its own" in text
