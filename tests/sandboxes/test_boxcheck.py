"""The box user and what ``doctor`` reports about boxes, from real boxes on this host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openinspect.cli.doctor import BOX_WARNINGS, box_checks
from openinspect.errors import ConfigError
from openinspect.sandboxes.boxcheck import box_facts
from openinspect.sandboxes.boxuser import BoxUser, own_workspace, resolve_box_user
from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.settings import Settings

pytestmark = pytest.mark.bwrap
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="plays a root server")


def test_a_box_is_not_host_root_and_its_kernel_knobs_are_closed(
    bwrap_provider: BwrapProvider, settings: Settings
) -> None:
    facts = box_facts(settings.sandbox.bwrap.box_user)

    assert facts.error is None
    assert facts.user is not None
    assert facts.user.uid != 0
    assert facts.uid_in_box == facts.user.uid
    assert facts.user.switch is ROOT
    assert facts.knobs_read_only is True
    assert facts.nested_userns_refused is True


def test_doctor_names_the_box_user_and_the_workspace_mount(
    bwrap_provider: BwrapProvider, settings: Settings
) -> None:
    checks = {check.name: check for check in box_checks(settings)}

    user = resolve_box_user(settings.sandbox.bwrap.box_user)
    assert checks["box user"].ok
    assert f"uid {user.uid}" in checks["box user"].detail
    assert checks["box kernel knobs"].ok
    assert checks["box nested user namespaces"].ok
    # This host can do both: images for a root server, an overlay for an ordinary one.
    mount = checks["box workspace mount"]
    assert mount.ok, mount.detail
    assert ("image" if ROOT else "overlay") in mount.detail
    assert "box workspace mount" in BOX_WARNINGS  # a bind mount would be a warning


@needs_root
@pytest.mark.parametrize("setting", ["0:0", "root", "12:0", "x:y", "-rf"])
def test_a_root_server_refuses_a_box_user_that_is_root_or_garbled(setting: str) -> None:
    resolve_box_user.cache_clear()
    with pytest.raises(ConfigError):
        resolve_box_user(setting)


@needs_root
def test_a_workspace_left_by_root_is_handed_to_the_box_user(tmp_path: Path) -> None:
    user = BoxUser(uid=65534, gid=65534, name="nobody", switch=True)
    workspace = tmp_path / "ws"
    (workspace / "repo" / "src").mkdir(parents=True)
    (workspace / "repo" / "src" / "app.py").write_text("x = 1\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("the server's\n")
    (workspace / "link").symlink_to(outside)

    own_workspace(workspace, user)

    for path in (workspace, workspace / "repo", workspace / "repo" / "src" / "app.py"):
        assert path.lstat().st_uid == 65534, path
    assert (workspace / "link").lstat().st_uid == 65534
    assert outside.stat().st_uid == 0  # a link is re-owned, never what it points to
