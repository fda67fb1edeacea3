"""A bwrap box's clone borrows its mirror's objects (git alternates) through a read-only mount:
the box cannot write there, the mount names no host path, and the clone has only the refs the
bundle used to carry (the base branch and the session's), not the mirror's others."""

from __future__ import annotations

from pathlib import Path

import pytest

from openinspect.sandboxes.bwrap import BOX_MIRROR, BwrapProvider
from tests.sandboxes.conftest import (  # noqa: F401  (fixtures used by name)
    Origin,
    StartSandbox,
    bridge,
    repo_origin,
    settings,
)
from tests.sandboxes.conftest import bwrap_provider as bwrap_provider
from tests.sandboxes.conftest import start_sandbox as start_sandbox

pytestmark = pytest.mark.bwrap

BOOT_TIMEOUT_S = 60.0


def _tree(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in path.rglob("*")}


async def test_the_clone_borrows_a_read_only_mirror_and_holds_only_its_own_refs(
    bwrap_provider: BwrapProvider,
    start_sandbox: StartSandbox,
    repo_origin: Origin,  # noqa: F811
) -> None:
    objects = repo_origin.bare / "objects"
    before = _tree(objects)
    box = await start_sandbox(bwrap_provider, carry_branches=("openinspect/existing",))
    await box.conn.wait_ready(BOOT_TIMEOUT_S)

    seen = await box.conn.exec(
        "cat .git/objects/info/alternates; ls .git/objects/pack | wc -l; "
        "git for-each-ref --format='%(refname)'; "
        "git fsck --connectivity-only --no-dangling --no-progress 2>&1 && echo fsck-ok",
        timeout_s=60,
    )
    assert seen.exit_code == 0, seen.stderr
    lines = seen.stdout.splitlines()
    assert lines[0] == BOX_MIRROR  # the box's path of them, not the host's
    assert lines[1] == "0"  # no pack of its own: the history is the mirror's
    refs = set(lines[2:-1])
    assert refs == {
        "refs/heads/main",
        "refs/remotes/origin/HEAD",
        "refs/remotes/origin/main",
        "refs/remotes/origin/openinspect/existing",
    }  # the origin's "broken" branch is not the box's
    assert lines[-1] == "fsck-ok"

    writes = await box.conn.exec(
        f"exec 2>&1; touch {BOX_MIRROR}/planted; mkdir {BOX_MIRROR}/pack/x; "
        f"echo junk > {BOX_MIRROR}/info/alternates; "
        f"echo x | GIT_OBJECT_DIRECTORY={BOX_MIRROR} git hash-object -w --stdin; "
        "grep ' /opt/openinspect/mirror ' /proc/self/mountinfo",
        timeout_s=60,
    )
    assert writes.stdout.count("Read-only file system") >= 3, writes.stdout
    assert "unable to" in writes.stdout  # git could not write its object either
    mount = writes.stdout.splitlines()[-1]
    assert mount.split()[3] == "/"  # its root names no host directory
    assert " ro," in f" {mount.split()[5]}," or mount.split()[5].startswith("ro")
    assert str(repo_origin.bare) not in mount and str(objects) not in mount
    assert _tree(objects) == before  # the mirror is as it was
