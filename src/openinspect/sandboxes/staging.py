"""How a root server starts bwrap as the unprivileged box user.

bwrap run by the box user must reach its bind source (the workspace) by path: it resolves even
``--bind-fd`` descriptors to paths and checks them as the box user, who may not traverse the
server's private home (``/root/.openinspect`` is behind a 0700 ``/root``).
So the server starts the box through a short chain that needs no change to the host:

``unshare --mount`` (a private mount namespace, gone with the box) → ``sh`` that mounts a small
tmpfs on :data:`STAGE_DIR`, binds the workspace into it, → ``setpriv`` to the box
user → ``bwrap`` (one pid: each step ``exec``\\s the next). The host's own mount table never
changes; the staging paths are what bwrap's options name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from openinspect.errors import SandboxUnavailable

from .boxuser import BoxUser

STAGE_DIR = Path("/run/openinspect-box")
"""An empty root-owned directory the private tmpfs covers; nothing is ever written in it."""
STAGED_WORKSPACE = f"{STAGE_DIR}/workspace"
_SCRIPT = (
    'set -e; ws=$1 uid=$2 gid=$3; shift 3; stage="$0"; '
    'mount -t tmpfs -o mode=0755,size=64k,nosuid,nodev,noexec openinspect-stage "$stage"; '
    'mkdir "$stage/workspace"; mount --bind "$ws" "$stage/workspace"; '
    'exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"'
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


def staged_argv(argv: list[str], user: BoxUser, *, workspace: Path) -> list[str]:
    """``argv`` (bwrap's) started as ``user`` with the sources under :data:`STAGE_DIR`."""
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
        str(user.uid),
        str(user.gid),
        *argv,
    ]
