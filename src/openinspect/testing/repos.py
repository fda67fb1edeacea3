"""Sample repositories for the demo, tests and benchmarks: a small Python project with a bug
and a failing test, pushed to a bare origin."""

from __future__ import annotations

import subprocess
from pathlib import Path

_CALC = '''def add(a, b):
    """Return the sum of a and b."""
    return a - b
'''
_TEST = """import unittest

from calc import add


class AddTest(unittest.TestCase):
    def test_adds(self):
        self.assertEqual(add(2, 3), 5)


if __name__ == "__main__":
    unittest.main()
"""
_START = '#!/bin/sh\necho "dev environment ready ($OPENINSPECT_BOOT_MODE boot)"\n'


def git_output(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_sample_repo(root: Path) -> Path:
    """A working repo with the bug, pushed to a bare origin. Returns the origin's path."""
    origin, work = root / "origin.git", root / "work"
    git_output("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=root)
    work.mkdir()
    (work / "calc.py").write_text(_CALC)
    (work / "test_calc.py").write_text(_TEST)
    (work / ".gitignore").write_text("__pycache__/\n")
    (work / ".openinspect").mkdir()
    (work / ".openinspect" / "start.sh").write_text(_START)
    (work / ".openinspect" / "start.sh").chmod(0o755)
    git_output("init", "--quiet", "--initial-branch=main", cwd=work)
    git_output("add", ".", cwd=work)
    git_output(
        "-c",
        "user.name=Demo",
        "-c",
        "user.email=demo@example.com",
        "commit",
        "--quiet",
        "-m",
        "Sample project",
        cwd=work,
    )
    git_output("push", "--quiet", str(origin), "main", cwd=work)
    return origin
