"""The runtime's ``build`` and ``repo_image`` boots: a build runs ``setup.sh`` and not
``start.sh``; a box started on what a build left skips ``setup.sh``, runs ``start.sh`` and
brings the checkout up to the clone source's newest base branch (from a bundle, as a bwrap box
gets it, which is then deleted)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from openinspect.runtime.boot import Boot, BootPlan
from openinspect.runtime.bridge import Outbox
from tests.runtime.helpers import boot_plan, git_env
from tests.scm.helpers import Git, commit

SETUP = "echo setup >> ../setup-count\necho built > built.txt\n"
START = "echo start >> ../start-count\n"


async def origin_with_scripts(git: Git, root: Path) -> tuple[Path, Path]:
    """A bare origin whose ``main`` has the two scripts; returns (origin, a clone to push from)."""
    bare, seed = root / "origin.git", root / "seed"
    await git.run("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=root)
    await git.run("init", "--quiet", "--initial-branch=main", str(seed), cwd=root)
    (seed / ".openinspect").mkdir()
    (seed / ".openinspect" / "setup.sh").write_text(SETUP)
    (seed / ".openinspect" / "start.sh").write_text(START)
    (seed / ".gitignore").write_text("built.txt\n")
    await git.run("add", ".", cwd=seed)
    await git.run("commit", "--quiet", "-m", "scripts", cwd=seed)
    await git.run("push", "--quiet", str(bare), "main", cwd=seed)
    return bare, seed


async def drain(outbox: Outbox) -> list[dict[str, Any]]:
    messages = []
    while outbox._items:
        messages.append(json.loads(await outbox.peek()))
        await outbox.pop()
    return messages


def count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def built(tmp_path: Path) -> tuple[Git, Path, Path, BootPlan]:
    git = Git(tmp_path / "home")
    root = tmp_path / "up"
    root.mkdir()
    origin, seed = await origin_with_scripts(git, root)
    plan = replace(boot_plan(tmp_path, origin), boot_mode="build")
    plan.workspace.mkdir()
    outbox = Outbox()
    assert await Boot(plan, outbox, git_env(tmp_path)).run()
    messages = await drain(outbox)
    assert [m["phase"] for m in messages if m["type"] == "boot"] == ["clone", "setup", "ready"]
    return git, origin, seed, plan


async def test_a_build_runs_setup_once_and_a_box_from_it_runs_start_on_the_newest_commit(
    tmp_path: Path,
) -> None:
    git, origin, seed, plan = await built(tmp_path)
    workspace = plan.workspace
    assert (count(workspace / "setup-count"), count(workspace / "start-count")) == (1, 0)
    imaged = await git.out("rev-parse", "HEAD", cwd=workspace / "repo")
    newer = await commit(git, seed, "later.txt")
    await git.run("push", "--quiet", str(origin), "main", cwd=seed)
    # As a bwrap box gets it: a bundle in the workspace of what the image lacks.
    bundle = workspace / ".openinspect-origin.bundle"
    await git.run("bundle", "create", "--quiet", str(bundle), "main", f"^{imaged}", cwd=origin)
    outbox = Outbox()
    image_plan = replace(plan, boot_mode="repo_image", clone_source=str(bundle))
    assert await Boot(image_plan, outbox, git_env(tmp_path)).run()
    messages = await drain(outbox)
    phases = [m["phase"] for m in messages if m["type"] == "boot"]
    assert phases == ["clone", "start", "ready"]
    assert "updating the image's checkout" in messages[0]["message"]
    assert (count(workspace / "setup-count"), count(workspace / "start-count")) == (1, 1)
    assert (workspace / "repo" / "built.txt").read_text() == "built\n"  # what setup.sh made
    assert await git.out("rev-parse", "HEAD", cwd=workspace / "repo") == newer
    assert await git.out("rev-parse", "origin/main", cwd=workspace / "repo") == newer
    assert not bundle.exists()  # the bundle is for this boot alone
    assert not [m for m in messages if m["type"] == "log" and "warning" in m["line"]]


async def test_a_checkout_that_cannot_fast_forward_stays_at_the_image_with_a_warning(
    tmp_path: Path,
) -> None:
    git, origin, seed, plan = await built(tmp_path)
    repo = plan.workspace / "repo"
    await git.run("config", "user.email", "b@example.com", cwd=repo)
    await git.run("config", "user.name", "b", cwd=repo)
    local = await commit(git, repo, "local.txt")  # the image's checkout diverged
    await commit(git, seed, "later.txt")
    await git.run("push", "--quiet", str(origin), "main", cwd=seed)
    outbox = Outbox()
    assert await Boot(replace(plan, boot_mode="repo_image"), outbox, git_env(tmp_path)).run()
    lines = [m["line"] for m in await drain(outbox) if m["type"] == "log"]
    assert any(
        line.startswith("[openinspect] warning: ") and "could not be fast-forwarded" in line
        for line in lines
    )
    assert await git.out("rev-parse", "HEAD", cwd=repo) == local
    assert count(plan.workspace / "start-count") == 1


async def test_a_repo_image_boot_whose_source_cannot_be_fetched_fails(tmp_path: Path) -> None:
    _, _, _, plan = await built(tmp_path)
    broken = plan.workspace / ".openinspect-origin.bundle"
    broken.write_text("not a bundle\n")
    outbox = Outbox()
    plan = replace(plan, boot_mode="repo_image", clone_source=str(broken))
    assert not await Boot(plan, outbox, git_env(tmp_path)).run()
    failed = [m for m in await drain(outbox) if m.get("phase") == "failed"]
    assert failed and "git fetch failed" in failed[0]["message"]
    assert count(plan.workspace / "start-count") == 0


async def test_a_repo_image_boot_without_a_bundle_is_at_the_newest_commit(tmp_path: Path) -> None:
    git, _, _, plan = await built(tmp_path)
    head = await git.out("rev-parse", "HEAD", cwd=plan.repo_dir)
    absent = plan.workspace / ".openinspect-origin.bundle"  # nothing new: none was sent
    outbox = Outbox()
    plan = replace(plan, boot_mode="repo_image", clone_source=str(absent))
    assert await Boot(plan, outbox, git_env(tmp_path)).run()
    messages = await drain(outbox)
    assert "is at the newest main" in messages[0]["message"]
    assert await git.out("rev-parse", "HEAD", cwd=plan.repo_dir) == head
    assert count(plan.workspace / "start-count") == 1
