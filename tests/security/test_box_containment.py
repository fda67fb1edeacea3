"""A hostile agent in a real bwrap box, with the server as root and as an ordinary user.

Each mode runs :mod:`tests.security.box_probe` once, in a subprocess with the server's uid of
that mode (root itself; or, from a root test run, uid 65534 through ``setpriv``), and the tests
judge its report: kernel knobs, uid mapping, nested user namespaces, host paths, the log file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.sandboxes.bwrap import BOX_BRIDGE_SOCKET, BOX_WORKSPACE, probe_bwrap
from tests.sandboxes.conftest import (
    HOST_PATH,
    IN_CI,
    REPO_ROOT,
    UNPRIVILEGED_UID,
    as_ordinary_user,
)

pytestmark = pytest.mark.bwrap

PROBE_TIMEOUT_S = 300.0
MIN_KNOBS = 200
"""/proc/sys alone holds about a thousand files: fewer means the walk did not happen."""
WITHOUT_UNSHARE = ("bwrap", "git")
"""The tools a server without ``unshare`` keeps: it cannot stage an overlay, and binds."""


def _path_without_unshare(tools: Path) -> str:
    """A ``PATH`` of one directory, ``tools``, holding only :data:`WITHOUT_UNSHARE` (a
    directory of its own: bwrap's path is the box's pid 1's ``argv[0]``)."""
    tools.chmod(0o755)
    for name in WITHOUT_UNSHARE:
        found = shutil.which(name)
        assert found is not None, name
        (tools / name).symlink_to(found)
    return str(tools)


def _require_bwrap() -> None:
    reason = probe_bwrap()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"bubblewrap is required under CI=true: {reason}")
        pytest.skip(f"bubblewrap cannot create namespaces here: {reason}")


def _run_probe(root: Path, *, ordinary: bool, path: str = HOST_PATH) -> dict[str, Any]:
    out = root / "report.json"
    argv = [sys.executable, "-m", "tests.security.box_probe", str(root), str(out)]
    env = {**os.environ}
    if ordinary:
        argv, env = as_ordinary_user(argv[1:], root, path=path)
    done = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report


@pytest.fixture(scope="module", params=["root-server", "user-server", "user-server-bind"])
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The probe's report for a server running as root, or as an ordinary user (which stages
    an overlay; or, without ``unshare``, falls back to binding the workspace)."""
    _require_bwrap()
    mode = request.param
    am_root = os.geteuid() == 0
    if mode != "user-server" and not am_root:
        pytest.skip(f"{mode} can only be played by a test run as root")
    root = Path(tempfile.mkdtemp(prefix="oi-box-probe-"))
    tools = Path(tempfile.mkdtemp(prefix="oi-tools-"))
    try:
        if mode == "user-server-bind":
            path = _path_without_unshare(tools)
            os.chown(root, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
            yield _run_probe(root, ordinary=True, path=path)
        elif mode == "user-server" and am_root:
            os.chown(root, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
            yield _run_probe(root, ordinary=True)
        else:
            yield _run_probe(root, ordinary=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(tools, ignore_errors=True)


def _texts(report: dict[str, Any]) -> dict[str, str]:
    """Everything the box could read, by where it read it, but the mount table."""
    texts = {"env": json.dumps(report["env"]), "/proc/net/unix": report["net_unix"]}
    for pid, seen in report["processes"].items():
        texts[f"/proc/{pid}/cmdline"] = seen["cmdline"]
        texts[f"/proc/{pid}/environ"] = seen["environ"]
        for link, target in seen["links"].items():
            texts[f"/proc/{pid}/{link}"] = target
    return texts


def test_no_kernel_knob_opens_for_writing(report: dict[str, Any]) -> None:
    assert report["knobs_checked"] > MIN_KNOBS
    assert report["knobs_writable"] == []


def test_host_wide_kernel_state_is_masked(report: dict[str, Any]) -> None:
    for name, read in report["masked"].items():
        assert read == 0 or isinstance(read, str), name  # empty, or not there at all


def test_the_box_is_never_host_root(report: dict[str, Any]) -> None:
    box_uid = report["box_uid"]
    assert box_uid != 0
    if report["server_uid"] != 0:
        assert box_uid == report["server_uid"]  # an ordinary server's boxes run as itself
    # Inside, the box user keeps its host uid, and it is not root in the box either.
    assert report["uid"] == box_uid
    assert report["gid"] != 0
    # The box's own uid_map reads "<uid> 0 1": with nested user namespaces disabled, bwrap puts
    # an intermediate namespace between the host and the box, and that "0" is the intermediate
    # namespace's root, not the host's. What it maps to on the host is what the host's view
    # of the same process says: read from the host, a process's uid_map is in host ids.
    inside = [line.split() for line in report["uid_map"].splitlines()]
    assert [int(first) for first, _, _ in inside] == [box_uid]
    assert report["host"], "no box process seen from the host"
    for pid, view in report["host"].items():
        assert view["uids"] == [box_uid] * 4, pid
        for first, outside, count in (line.split() for line in view["uid_map"].splitlines()):
            assert (int(first), int(outside), int(count)) == (box_uid, box_uid, 1), pid
    # bwrap itself (the box's monitor on the host) runs as the box user too, and what the box
    # writes is the box user's on the host.
    assert report["bwrap_host"]["uids"] == [box_uid] * 4
    assert report["written_by"] == [box_uid, report["gid"]]


def test_nested_user_namespaces_are_refused(report: dict[str, Any]) -> None:
    assert report["unshare_user"] != 0


def test_no_host_path_in_processes_environment_sockets_or_descriptors(
    report: dict[str, Any],
) -> None:
    found = {
        (where, needle)
        for where, text in _texts(report).items()
        for needle in report["needles"]
        if needle in text
    }
    assert found == set()
    # The box's bridge socket is its own: listed, if at all, under no host address.
    assert report["bridge_socket"] not in report["net_unix"]


def test_output_goes_through_a_pipe_not_a_reachable_log_file(report: dict[str, Any]) -> None:
    assert report["outputs"]
    assert set(report["outputs"].values()) <= {"fifo", "0o20666"}  # pipes, or /dev/null
    assert "fifo" in report["outputs"].values()
    assert "bridge connected" in report["log"]  # the runtime's output did reach the log


def _mountinfo_with_needles(report: dict[str, Any]) -> dict[str, str]:
    """Mount point → mount root, for the box's mounts whose line names a host path."""
    named = {}
    for line in report["mountinfo"].splitlines():
        if any(needle in line for needle in report["needles"]):
            fields = line.split()
            named[fields[4]] = fields[3]
    return named


def test_the_mount_table_names_only_the_documented_residue(report: dict[str, Any]) -> None:
    # The one host directory bound into the box is the workspace (WORKSPACE_RESIDUE): its
    # mount may name its host source, and nothing else may (the bridge socket is the box's
    # own, relayed; the runtime and the repo are copied in as data).
    named = _mountinfo_with_needles(report)
    assert set(named) <= {BOX_WORKSPACE}
    assert named.get(BOX_WORKSPACE, report["workspace"]) == report["workspace"]
    assert not any(BOX_BRIDGE_SOCKET in line for line in report["mountinfo"].splitlines())


WORKSPACE_RESIDUE = (
    "the workspace is a bind mount of a host directory, and a bind mount's root in "
    "/proc/self/mountinfo is where its source is on the host; a workspace that is a file "
    "system of its own (a root server's loop-mounted image, an ordinary server's overlay in a "
    "user namespace) shows '/' instead, and this host can do neither"
)
BOX_FILE_SYSTEMS = {"image": "ext4", "overlay": "overlay"}


def _workspace_line(report: dict[str, Any]) -> tuple[str, str]:
    """The box's /workspace mount: (its root, its file system type)."""
    for line in report["mountinfo"].splitlines():
        fields, _, after = line.partition(" - ")
        if fields.split()[4] == BOX_WORKSPACE:
            return fields.split()[3], after.split()[0]
    raise AssertionError("no /workspace mount in the box")


def test_the_workspace_is_mounted_as_the_server_decided(report: dict[str, Any]) -> None:
    root, fstype = _workspace_line(report)
    if report["workspace_mount"] == "bind":
        assert root == report["workspace"]
    else:
        assert (root, fstype) == ("/", BOX_FILE_SYSTEMS[report["workspace_mount"]])
    # The overlay's work directory sits beside the workspace; its probe leaves nothing behind.
    assert not [name for name in report["workspaces_left"] if name.startswith(".overlay-probe")]


def test_the_mount_table_names_no_host_path(
    report: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    if report["workspace_mount"] == "bind":
        request.applymarker(pytest.mark.xfail(strict=True, reason=WORKSPACE_RESIDUE))
    assert _mountinfo_with_needles(report) == {}


def test_the_workspace_survives_a_restart_as_plain_files_of_the_box_user(
    report: dict[str, Any],
) -> None:
    again = report["restart"]
    assert again["exit"] == 0, again["out"]
    assert again["out"].strip() == "restarted"
    if report["workspace_mount"] == "image":
        return  # the host sees the workspace only while a box has its image mounted
    # What the server wrote, the box could append to; what the box wrote is the host's view too.
    assert again["from_server"] == "server\nbox\n"
    assert again["host_log"].splitlines()[0] == "restarted"
    assert again["owners"] == [[report["box_uid"], report["gid"]]]
    assert "moved" not in again["left"] and "made" not in again["left"]
