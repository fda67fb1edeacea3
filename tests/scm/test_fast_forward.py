"""A granted branch through the git proxy: fast-forwards land; force pushes, deletes and other
branches are refused before the upstream hears of them; a stale mirror is fetched once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.scm.fast_forward import MirrorAncestry
from openinspect.scm.push_rules import NOT_FAST_FORWARD, RefUpdate

from .helpers import OWNER, REPO, SESSION, Git, commit, serve
from .test_gitproxy import Proxy, assert_refused, start_proxy

GRANTED = "feature"


@pytest.fixture
def git(tmp_path: Path) -> Git:
    from .test_gitproxy import bearer_env

    return Git(tmp_path / "home", bearer_env())


@pytest.fixture
async def granted(tmp_path: Path, git: Git) -> AsyncIterator[tuple[Proxy, list[bool]]]:
    """A proxy whose session was given ``feature`` (made on the upstream from ``main``), checked
    against a mirror of the upstream; the list records each mirror request (True: refresh)."""
    served = await start_proxy(tmp_path, git)
    admin = Git(tmp_path / "home")
    await admin.run("branch", GRANTED, "main", cwd=served.bare)
    mirror = tmp_path / "mirror.git"
    await admin.run("clone", "--mirror", "--quiet", str(served.bare), str(mirror), cwd=tmp_path)
    asked: list[bool] = []

    async def mirror_of(refresh: bool) -> Path:
        asked.append(refresh)
        if refresh:
            await admin.run("remote", "update", "--prune", cwd=mirror)
        return mirror

    served.authority.granted = GRANTED
    served.authority.fast_forward = MirrorAncestry(mirror_of, scratch_dir=tmp_path / "scratch")
    async with serve(served.tap) as base:
        served.base = base
        served.url = f"{base}/git/{SESSION}/{OWNER}/{REPO}.git"
        yield served, asked


async def _clone(proxy: Proxy) -> Path:
    work = proxy.root / "work"
    await proxy.git.run(
        "clone", "--quiet", "--branch", GRANTED, proxy.url, str(work), cwd=proxy.root
    )
    return work


async def test_a_fast_forward_of_the_granted_branch_lands(
    granted: tuple[Proxy, list[bool]],
) -> None:
    proxy, asked = granted
    work = await _clone(proxy)
    first = await commit(proxy.git, work, "fix.txt")
    second = await commit(proxy.git, work, "more.txt")
    await proxy.git.run("push", "--quiet", "origin", f"HEAD:{GRANTED}", cwd=work)
    assert await proxy.upstream_ref(GRANTED) == second
    assert first != second and asked == [False]  # the mirror had the old head: no fetch
    (pushed,) = proxy.authority.pushes
    assert pushed.ok and [u.ref for u in pushed.updates] == [f"refs/heads/{GRANTED}"]
    assert list(proxy.root.joinpath("scratch").iterdir()) == []  # nothing left behind


async def test_a_force_push_of_the_granted_branch_is_refused(
    granted: tuple[Proxy, list[bool]],
) -> None:
    proxy, _ = granted
    work = await _clone(proxy)
    await commit(proxy.git, work, "fix.txt")
    await proxy.git.run("push", "--quiet", "origin", f"HEAD:{GRANTED}", cwd=work)
    landed = await proxy.upstream_ref(GRANTED)
    await proxy.git.run("reset", "--quiet", "--hard", "HEAD~1", cwd=work)
    await commit(proxy.git, work, "instead.txt")
    stderr = await assert_refused(
        proxy, work, ["--force", "origin", f"HEAD:{GRANTED}"], [NOT_FAST_FORWARD]
    )
    assert "[remote rejected]" in stderr
    assert await proxy.upstream_ref(GRANTED) == landed
    # rewinding to an older commit, with no new objects at all, is refused too
    await assert_refused(
        proxy, work, ["--force", "origin", f"HEAD~1:{GRANTED}"], [NOT_FAST_FORWARD]
    )


async def test_nothing_but_fast_forwards_of_the_granted_branch(
    granted: tuple[Proxy, list[bool]],
) -> None:
    proxy, _ = granted
    work = await _clone(proxy)
    await commit(proxy.git, work, "fix.txt")
    only = "this session may push only fast-forward updates of feature"
    await assert_refused(proxy, work, ["origin", "HEAD:refs/heads/openinspect/ses1"], [only])
    await assert_refused(proxy, work, ["origin", "HEAD:refs/heads/elsewhere"], [only])
    await assert_refused(proxy, work, ["origin", f":{GRANTED}"], ["cannot be deleted"])
    await assert_refused(proxy, work, ["origin", "HEAD:main"], ["is the base branch"])
    # a good update next to a refused one: neither lands
    await assert_refused(
        proxy, work, ["origin", f"HEAD:{GRANTED}", "HEAD:refs/heads/other"], [only]
    )


async def test_a_stale_mirror_is_fetched_once_before_it_decides(
    granted: tuple[Proxy, list[bool]],
) -> None:
    """Someone pushed to the branch after the mirror was fetched: the session fetched that too
    and builds on it; the check fetches the mirror and lets the fast-forward through."""
    proxy, asked = granted
    admin = Git(proxy.root / "home")
    other = proxy.root / "other"
    await admin.run(
        "clone", "--quiet", "--branch", GRANTED, str(proxy.bare), str(other), cwd=proxy.root
    )
    await commit(admin, other, "theirs.txt")
    await admin.run("push", "--quiet", "origin", GRANTED, cwd=other)
    work = await _clone(proxy)
    mine = await commit(proxy.git, work, "mine.txt")
    await proxy.git.run("push", "--quiet", "origin", f"HEAD:{GRANTED}", cwd=work)
    assert await proxy.upstream_ref(GRANTED) == mine
    assert asked == [False, True]


async def test_a_check_without_a_mirror_refuses(tmp_path: Path) -> None:
    async def gone(refresh: bool) -> Path:
        raise OSError("no mirror")

    pack = tmp_path / "empty.pack"
    pack.write_bytes(b"")
    update = RefUpdate("a" * 40, "b" * 40, f"refs/heads/{GRANTED}")
    assert await MirrorAncestry(gone).rewinds([update], pack) == {update.ref}
