"""Mirrors keep every object a box may have borrowed (bwrap clones use them as git alternates):
a commit no ref reaches any more, after a force-push upstream, survives the mirror's refresh and
its ``git gc``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from openinspect.sessions.git import MIRROR_CONFIG, ensure_mirror
from openinspect.testing.repos import git_output, make_sample_repo

AGE_S = 60 * 24 * 3600


async def test_a_commit_force_pushed_away_stays_in_the_mirror_through_gc(tmp_path: Path) -> None:
    origin = make_sample_repo(tmp_path)
    mirror = await ensure_mirror(tmp_path / "mirrors", str(origin))
    for key, value in MIRROR_CONFIG:
        assert git_output("config", "--get", key, cwd=mirror).strip() == value
    borrowed = git_output("rev-parse", "refs/heads/main", cwd=mirror).strip()

    work = tmp_path / "rewrite"
    git_output("clone", "--quiet", str(origin), str(work), cwd=tmp_path)
    identity = ["-c", "user.name=t", "-c", "user.email=t@x"]
    git_output(*identity, "commit", "--quiet", "--amend", "-m", "rewritten", cwd=work)
    git_output("push", "--quiet", "--force", "origin", "main", cwd=work)
    await ensure_mirror(tmp_path / "mirrors", str(origin))
    assert git_output("rev-parse", "refs/heads/main", cwd=mirror).strip() != borrowed

    # As if the borrowed objects were old: git's default would now prune them.
    for path in (mirror / "objects").rglob("*"):
        os.utime(path, (time.time() - AGE_S, time.time() - AGE_S))
    control = tmp_path / "control.git"
    shutil.copytree(mirror, control)
    git_output("config", "--unset", "gc.pruneExpire", cwd=control)

    for repo in (mirror, control):  # what the automatic gc after a fetch would do
        git_output("gc", "--quiet", cwd=repo)
    assert _has(mirror, borrowed)
    assert not _has(control, borrowed)  # without the setting it would be gone


def _has(repo: Path, sha: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo, check=False)
    return found.returncode == 0
