"""Concurrency never fails a request (issue 8 item 11): session creates on one repo at once, and
creates racing new commits on the origin and diffs fetching into the same mirror, all succeed;
the mirror lock also holds against another process (a second replica on the same home).

Real concurrency: ``asyncio.gather`` over the ASGI app, real git against a real local origin,
a real second process holding the lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.sessions.git import mirror_path
from openinspect.testing.repos import git_output, make_sample_repo
from tests.api.signin_helpers import Api, running, settings_for

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(300)]
CREATES = 10
LOCK_HELD_S = 1.5


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    return make_sample_repo(tmp_path / "src")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running(settings_for(tmp_path / "home")) as opened:
        yield opened


async def _creates(api: Api, repo: str, count: int = CREATES) -> list[int]:
    answers = await asyncio.gather(
        *(api.admin("POST", "/api/sessions", json={"repo": repo}) for _ in range(count))
    )
    for answer in answers:
        assert answer.status_code == 201, answer.text
    return [a.status_code for a in answers]


def _mirror_dir_is_clean(api: Api, origin: Path) -> None:
    mirrors = api.plane.settings.mirrors_dir
    mirror = mirror_path(mirrors, str(origin))
    assert (mirror / "HEAD").exists()
    leftovers = sorted(p.name for p in mirrors.iterdir() if p not in (mirror,))
    assert leftovers == [mirror.name + ".lock"], leftovers  # no temp clone left behind


async def test_concurrent_creates_on_one_new_repo_all_succeed(api: Api, origin: Path) -> None:
    assert await _creates(api, str(origin)) == [201] * CREATES
    _mirror_dir_is_clean(api, origin)
    # And again with the mirror in place: ten refreshes of one mirror at once.
    assert await _creates(api, str(origin)) == [201] * CREATES
    _mirror_dir_is_clean(api, origin)


async def test_creates_racing_origin_updates_and_diffs_all_succeed(
    api: Api, origin: Path, tmp_path: Path
) -> None:
    work = tmp_path / "pusher"
    git_output("clone", "--quiet", str(origin), str(work), cwd=tmp_path)
    first = await api.admin("POST", "/api/sessions", json={"repo": str(origin)})
    session_id = first.json()["session"]["id"]
    stop = threading.Event()
    pushed: list[int] = []

    def push_commits() -> None:  # the upstream moving while mirrors refresh
        n = 0
        while not stop.is_set() and n < 200:
            n += 1
            (work / "counter.txt").write_text(f"{n}\n")
            git_output("add", "counter.txt", cwd=work)
            git_output(
                "-c", "user.name=P", "-c", "user.email=p@example.com",
                "commit", "--quiet", "-m", f"update {n}", cwd=work,
            )  # fmt: skip
            git_output("push", "--quiet", "origin", "main", cwd=work)
            pushed.append(n)

    pusher = threading.Thread(target=push_commits)
    pusher.start()
    try:
        body = {"repo": str(origin)}
        diffs = [api.admin("GET", f"/api/sessions/{session_id}/diff") for _ in range(3)]
        creates = [api.admin("POST", "/api/sessions", json=body) for _ in range(CREATES)]
        answers = await asyncio.gather(*diffs, *creates)
    finally:
        stop.set()
        pusher.join(60)
    for answer in answers:
        assert answer.status_code in (200, 201), answer.text
    assert pushed, "the origin never moved during the creates"
    _mirror_dir_is_clean(api, origin)


_HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


async def test_the_mirror_lock_holds_against_another_process(api: Api, origin: Path) -> None:
    """A second replica on the same home (here: a process holding the mirror's flock) makes a
    create wait for it, rather than both running git on one mirror."""
    await _creates(api, str(origin), 1)
    mirror = mirror_path(api.plane.settings.mirrors_dir, str(origin))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(mirror) + ".lock", str(LOCK_HELD_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        await _creates(api, str(origin), 2)
        waited_s = time.monotonic() - started
    finally:
        holder.wait(30)
    assert waited_s >= LOCK_HELD_S * 0.6, f"the create did not wait for the lock ({waited_s:.2f} s)"
