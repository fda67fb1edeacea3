"""A file the agent rewrites must look changed to mtime-based tools, even within the same second
and at the same size: Python's bytecode cache (whole seconds plus size) is the sharpest case."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openinspect.runtime.files import FileOps

NS_PER_S = 1_000_000_000
SAME_SECOND_ATTEMPTS = 5


def run_module(directory: Path) -> str:
    """Import ``mod`` in a fresh interpreter that reads and writes ``__pycache__`` as usual."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    done = subprocess.run(
        [sys.executable, "-c", "import mod; print(mod.VALUE)"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def write(ops: FileOps, text: str) -> None:
    ops.write_file({"path": "mod.py", "content": text})


def edit(ops: FileOps, text: str) -> None:
    old = (ops.repo_dir / "mod.py").read_text()
    ops.edit_file({"path": "mod.py", "old": old, "new": text})


@pytest.mark.parametrize("rewrite", [write, edit], ids=["write", "edit"])
def test_same_size_rewrite_in_the_same_second_runs_the_new_code(
    tmp_path: Path, rewrite: Callable[[FileOps, str], None]
) -> None:
    for attempt in range(SAME_SECOND_ATTEMPTS):
        directory = tmp_path / f"try{attempt}"
        directory.mkdir()
        ops = FileOps(directory)
        write(ops, "VALUE = 'old'\n")
        first_ns = (directory / "mod.py").stat().st_mtime_ns
        assert run_module(directory) == "old"
        assert list((directory / "__pycache__").glob("mod.*.pyc")), "the cache was written"
        rewrite(ops, "VALUE = 'new'\n")  # same size
        if time.time_ns() // NS_PER_S == first_ns // NS_PER_S:
            break  # the case that matters: still within the second of the first write
    else:
        pytest.fail("could not rewrite within one second; the machine is too slow for this test")
    assert run_module(directory) == "new"
    second = (directory / "mod.py").stat()
    assert second.st_mtime_ns // NS_PER_S > first_ns // NS_PER_S


def test_mtime_moves_forward_even_when_the_old_one_is_in_the_future(tmp_path: Path) -> None:
    """After a clock step back (or a previous bump) the write's own mtime can be older than the
    one tools remember; it still has to move forward."""
    ops = FileOps(tmp_path)
    write(ops, "VALUE = 1\n")
    future_ns = time.time_ns() + 30 * NS_PER_S
    os.utime(tmp_path / "mod.py", ns=(future_ns, future_ns))
    write(ops, "VALUE = 22\n")  # another size
    assert (tmp_path / "mod.py").stat().st_mtime_ns > future_ns
    edit(ops, "VALUE = 33\n")
    assert (tmp_path / "mod.py").stat().st_mtime_ns // NS_PER_S > future_ns // NS_PER_S


def test_a_new_file_keeps_the_time_it_was_written(tmp_path: Path) -> None:
    before_ns = time.time_ns()
    FileOps(tmp_path).write_file({"path": "fresh.txt", "content": "hi\n"})
    mtime_ns = (tmp_path / "fresh.txt").stat().st_mtime_ns
    # Nothing saw an older version: no bump into the future (filesystem granularity aside).
    assert mtime_ns <= time.time_ns()
    assert mtime_ns >= before_ns - NS_PER_S
