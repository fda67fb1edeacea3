"""How a server stages the workspace it hands to bwrap, and starts bwrap as the box user.

*A root server.* bwrap run by the box user must reach its bind source (the workspace) by
path: it resolves even ``--bind-fd`` descriptors to paths and checks them as the box user, who
may not traverse the server's private home (``/root/.openinspect`` is behind a 0700 ``/root``).
So the server starts the box through a short chain that needs no change to the host:

``unshare --mount`` (a private mount namespace, gone with the box) → ``sh`` that mounts a small
tmpfs on :data:`STAGE_DIR`, binds the workspace into it, → ``setpriv`` to the box
user → ``bwrap`` (one pid: each step ``exec``\\s the next). The host's own mount table never
changes; the staging paths are what bwrap's options name.

*An ordinary server.* A bind mount's root in ``/proc/self/mountinfo`` is its source's path
inside its file system, so a bound host directory names itself in the box. Where the host allows
unprivileged user namespaces and overlayfs in them, the server instead starts the box through
``unshare --user --map-root-user --mount`` (root of a new user namespace, which is still the
server's own uid on the host) → ``sh`` that opens the workspaces directory, covers ``/run`` with
a small tmpfs, binds that directory in as :data:`STAGED_SESSIONS`, mounts an overlay with an
empty lower layer and the workspace as its upper layer at :data:`STAGED_WORKSPACE`, and unbinds
the directory again → ``unshare --user`` back to the server's uid (bwrap runs unprivileged, as it
would otherwise) → ``bwrap``. The overlay's mount table line names only those inner paths (and
the session's id), with root ``/``; every write lands in the workspace directory itself, as a
plain file of the server's uid. The overlay's work directory sits beside the workspace
(:func:`overlay_workdir`), on the same file system as it must. :func:`probe_user_staging`
tries the chain once per process; where it fails, the box binds the host directory as before
and ``doctor`` says so (:func:`workspace_mount`).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from openinspect.errors import SandboxUnavailable

from .boxuser import BoxUser, server_is_root
from .workspace_fs import probe_workspace_images

STAGE_DIR = Path("/run/openinspect-box")
"""An empty root-owned directory the private tmpfs covers; nothing is ever written in it."""
STAGED_WORKSPACE = f"{STAGE_DIR}/workspace"
STAGED_SESSIONS = f"{STAGE_DIR}/sessions"
"""Where an ordinary server's chain binds the workspaces directory, while it mounts the overlay."""
STAGED_EMPTY = f"{STAGE_DIR}/empty"
"""The overlay's empty lower layer (on the chain's tmpfs)."""
STAGED_MIRROR = f"{STAGE_DIR}/mirror"
"""The mirror's objects as a read-only overlay (its only layers: the objects and an empty
directory), which the box binds read-only: its mount table line names no host path, its root is
``/``, and nothing can write through it (:mod:`.bwrap`, "What a box costs")."""
NO_MIRROR = "-"
# The mirror's objects are bound in, an overlay without an upper layer (so read-only) is made of
# them and an empty directory, and the bind is dropped: the overlay's options name stage paths.
_MIRROR_STEP = (
    'if [ "$objs" != - ]; then mkdir -p "$stage/mirror-src" "$stage/mirror" "$stage/empty"; '
    'mount --bind "$objs" "$stage/mirror-src"; '
    'mount -t overlay -o "ro,lowerdir=$stage/mirror-src:$stage/empty" openinspect-mirror '
    '"$stage/mirror"; umount -l "$stage/mirror-src"; fi; '
)
WORKDIR_SUFFIX = ".work"
PROBE_TIMEOUT_S = 10.0
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
"""Workspace names that need no escaping in overlay options (no comma, colon or backslash)."""
_SCRIPT = (
    'set -e; ws=$1 objs=$2 uid=$3 gid=$4; shift 4; stage="$0"; '
    'mount -t tmpfs -o mode=0755,size=64k,nosuid,nodev,noexec openinspect-stage "$stage"; '
    'mkdir "$stage/workspace"; mount --bind "$ws" "$stage/workspace"; '
    + _MIRROR_STEP
    + 'exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"'
)


def ensure_stage_dir() -> None:
    """Create :data:`STAGE_DIR` (root's, 0755) or check that the one there is root's own dir."""
    try:
        STAGE_DIR.mkdir(mode=0o755, exist_ok=True)
        info = STAGE_DIR.lstat()
    except OSError as exc:
        raise SandboxUnavailable(
            f"cannot create {STAGE_DIR}: {exc.strerror or exc}",
            hint="the server runs as root and needs /run to be writable",
        ) from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise SandboxUnavailable(
            f"{STAGE_DIR} is not a directory owned by root and writable by root alone",
            hint=f"remove {STAGE_DIR}; the server recreates it",
        )


def staged_argv(
    argv: list[str], user: BoxUser, *, workspace: Path, mirror_objects: Path | None = None
) -> list[str]:
    """``argv`` (bwrap's) started as ``user`` with the sources under :data:`STAGE_DIR` (and
    ``mirror_objects`` at :data:`STAGED_MIRROR`, read-only, when given)."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        _SCRIPT,
        str(STAGE_DIR),
        os.fspath(workspace),
        os.fspath(mirror_objects) if mirror_objects is not None else NO_MIRROR,
        str(user.uid),
        str(user.gid),
        *argv,
    ]


_USER_SCRIPT = (
    'set -e; parent=$1 name=$2 objs=$3 uid=$4 gid=$5; shift 5; stage="$0"; '
    # Opened before the tmpfs covers /run, which may hold the workspaces directory.
    'exec 3<"$parent"; '
    'mount -t tmpfs -o mode=0755,size=64k,nosuid,nodev,noexec openinspect-stage "${stage%/*}"; '
    'mkdir "$stage" "$stage/sessions" "$stage/empty" "$stage/workspace"; '
    'mount --no-canonicalize --bind /proc/self/fd/3 "$stage/sessions"; exec 3<&-; '
    'mount -t overlay -o "userxattr,lowerdir=$stage/empty,upperdir=$stage/sessions/$name,'
    f'workdir=$stage/sessions/$name{WORKDIR_SUFFIX}" openinspect-workspace "$stage/workspace"; '
    'umount -l "$stage/sessions"; '
    + _MIRROR_STEP
    + 'exec unshare --user --map-user="$uid" --map-group="$gid" -- "$@"'
)


def overlay_workdir(workspace: Path) -> Path:
    """The overlay's work directory for ``workspace``: beside it, like its image and its log."""
    return workspace.parent / f"{workspace.name}{WORKDIR_SUFFIX}"


def prepare_overlay(workspace: Path) -> None:
    """Create the work directory :func:`user_staged_argv` needs; raises ``SandboxUnavailable``."""
    if not _SAFE_NAME.fullmatch(workspace.name):
        raise SandboxUnavailable(
            "the workspace's name cannot be staged in an overlay",
            hint="workspace names are session ids; report this",
        )
    try:
        overlay_workdir(workspace.resolve()).mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise SandboxUnavailable(
            f"cannot create the workspace's overlay directory: {exc.strerror or exc}",
            hint="check that the server may write its workspaces directory",
        ) from exc


def user_staged_argv(
    argv: list[str], user: BoxUser, *, workspace: Path, mirror_objects: Path | None = None
) -> list[str]:
    """``argv`` (bwrap's) started by an ordinary server with ``workspace`` staged as an overlay
    at :data:`STAGED_WORKSPACE` (see the module docstring), and ``mirror_objects`` at
    :data:`STAGED_MIRROR` when given; :func:`prepare_overlay` first."""
    workspace = workspace.resolve()
    return [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        _USER_SCRIPT,
        str(STAGE_DIR),
        os.fspath(workspace.parent),
        workspace.name,
        os.fspath(mirror_objects) if mirror_objects is not None else NO_MIRROR,
        str(user.uid),
        str(user.gid),
        *argv,
    ]


@functools.cache
def probe_user_staging(workspaces_dir: Path) -> str | None:
    """None if an ordinary server can stage workspaces under ``workspaces_dir`` as overlays,
    else why not. Runs the whole chain once per process (cached) on a scratch workspace there:
    overlayfs in a user namespace depends on the kernel and on the workspaces' file system."""
    if server_is_root():
        return "the server runs as root (it stages workspaces as root does)"
    if shutil.which("unshare") is None:
        return "unshare is not installed (apt-get install util-linux)"
    uid, gid = os.getuid(), os.getgid()
    try:
        workspaces_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".overlay-probe-", dir=workspaces_dir))
    except OSError as exc:
        return f"cannot create a scratch workspace: {exc.strerror or exc}"
    try:
        workspace = scratch / "probe"
        workspace.mkdir()
        prepare_overlay(workspace)
        check = f'test "$(id -u)" = {uid} && : > {STAGED_WORKSPACE}/written'
        user = BoxUser(uid, gid, str(uid), switch=False)
        argv = user_staged_argv(["/bin/sh", "-c", check], user, workspace=workspace)
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False, cwd="/"
        )
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            return f"no overlay in a user namespace here: {lines[-1] if lines else done.returncode}"
        if (workspace / "written").lstat().st_uid != uid:
            return "a write through the overlay did not land as the server's own file"
        return None
    except (OSError, subprocess.TimeoutExpired, SandboxUnavailable) as exc:
        return f"the overlay probe did not run: {exc}"
    finally:
        _remove(scratch)


def _remove(scratch: Path) -> None:
    """Remove a probe's scratch tree, including the overlay's mode-0 ``work`` directory."""
    for work in scratch.glob(f"*{WORKDIR_SUFFIX}/work"):
        work.chmod(0o700)
    shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class WorkspaceMount:
    """How a box's ``/workspace`` is mounted, and so what its mount table shows."""

    kind: Literal["image", "overlay", "bind"]
    why: str | None = None
    """For ``bind``: why neither an image nor an overlay is used."""

    @property
    def names_host_path(self) -> bool:
        return self.kind == "bind"


def choose_workspace_mount(
    *, root: bool, image_problem: str | None, overlay_problem: str | None
) -> WorkspaceMount:
    """A root server mounts images where it can (else binds); any other server stages an
    overlay where it can (else binds, as a bind mount's root names its host path)."""
    if root:
        if image_problem is None:
            return WorkspaceMount("image")
        return WorkspaceMount("bind", f"no workspace images: {image_problem}")
    if overlay_problem is None:
        return WorkspaceMount("overlay")
    return WorkspaceMount("bind", overlay_problem)


def workspace_mount(workspaces_dir: Path, workspace_mib: int) -> WorkspaceMount:
    """The workspace mount boxes of this server get (``doctor`` reports it)."""
    root = server_is_root()
    if root:
        image_problem = (
            probe_workspace_images() if workspace_mib > 0 else "sandbox.workspace_mib is 0"
        )
        return choose_workspace_mount(root=True, image_problem=image_problem, overlay_problem=None)
    return choose_workspace_mount(
        root=False, image_problem=None, overlay_problem=probe_user_staging(workspaces_dir)
    )
