"""Which workspace mount a box gets, and the fallback when an ordinary server cannot stage an
overlay: decided by trying the real chain (``unshare`` → overlayfs in a user namespace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.errors import SandboxUnavailable
from openinspect.sandboxes.staging import (
    WorkspaceMount,
    choose_workspace_mount,
    overlay_workdir,
    prepare_overlay,
)
from tests.sandboxes.conftest import REPO_ROOT, UNPRIVILEGED_UID, as_ordinary_user

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="plays an ordinary server from a root run")

DECIDE = """
import json, sys
from pathlib import Path
from openinspect.cli.doctor import workspace_mount_check
from openinspect.sandboxes.staging import probe_user_staging
from openinspect.settings import Settings
settings = Settings(home=Path(sys.argv[1]))
check = workspace_mount_check(settings)
print(json.dumps({
    "probe": probe_user_staging(settings.workspaces_dir),
    "ok": check.ok, "detail": check.detail, "fix": check.fix,
    "left": sorted(p.name for p in settings.workspaces_dir.glob("*")),
}))
"""


@pytest.mark.parametrize(
    ("root", "image_problem", "overlay_problem", "expected"),
    [
        (True, None, "ignored", WorkspaceMount("image")),
        (
            True,
            "no loop devices",
            None,
            WorkspaceMount("bind", "no workspace images: no loop devices"),
        ),
        (False, "ignored", None, WorkspaceMount("overlay")),
        (False, None, "no overlay here", WorkspaceMount("bind", "no overlay here")),
    ],
)
def test_the_workspace_mount_follows_what_the_host_can_do(
    root: bool, image_problem: str | None, overlay_problem: str | None, expected: WorkspaceMount
) -> None:
    mount = choose_workspace_mount(
        root=root, image_problem=image_problem, overlay_problem=overlay_problem
    )
    assert mount == expected
    assert mount.names_host_path is (expected.kind == "bind")


@pytest.fixture
def home() -> Iterator[Path]:
    """A server home an ordinary uid owns, outside root's private tmp_path."""
    root = Path(tempfile.mkdtemp(prefix="oi-staging-"))
    os.chown(root, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _decide(home: Path, path: str | None = None) -> dict[str, Any]:
    argv, env = as_ordinary_user(["-c", DECIDE, str(home / "home")], home)
    if path is not None:
        env["PATH"] = path
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    decided: dict[str, Any] = json.loads(done.stdout)
    return decided


@needs_root
def test_an_ordinary_server_stages_an_overlay_where_the_host_allows_it(home: Path) -> None:
    decided = _decide(home)

    assert decided["probe"] is None
    assert decided["ok"] is True
    assert "overlay" in decided["detail"]
    assert decided["left"] == []  # the probe's scratch workspace is gone


@needs_root
def test_without_unshare_an_ordinary_server_falls_back_to_a_bind_with_a_warning(
    home: Path,
) -> None:
    tools = home / "bin"
    tools.mkdir(mode=0o755)
    os.chown(tools, UNPRIVILEGED_UID, UNPRIVILEGED_UID)

    decided = _decide(home, path=str(tools))

    assert "unshare is not installed" in decided["probe"]
    assert decided["ok"] is False
    assert decided["detail"].startswith("a bind mount of the host directory")
    assert "unshare" in decided["fix"]
    assert str(home) not in decided["detail"]


@needs_root
def test_a_probe_that_cannot_stage_anything_is_a_fallback_not_a_failure(home: Path) -> None:
    # A workspaces directory the ordinary uid cannot write: nothing can be staged there.
    workspaces = home / "home" / "workspaces"
    workspaces.mkdir(parents=True, mode=0o755)
    os.chown(home / "home", UNPRIVILEGED_UID, UNPRIVILEGED_UID)

    decided = _decide(home)

    assert decided["probe"] is not None
    assert decided["ok"] is False


def test_a_workspace_name_that_overlay_options_cannot_carry_is_refused(tmp_path: Path) -> None:
    for name in ("a,lowerdir=x", "a:b", "a\\b", "-x"):
        with pytest.raises(SandboxUnavailable):
            prepare_overlay(tmp_path / name)
    prepare_overlay(tmp_path / "ses-0123_ab.c")
    assert overlay_workdir(tmp_path / "ses-0123_ab.c").is_dir()
