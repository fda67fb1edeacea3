"""The host user a bwrap box runs as: never root.

bwrap maps the box's users onto the host uid that starts it, so a box started by a root server
would be host root (its ``/proc/sys`` writes reach the kernel, its files are root's). When the
server's effective uid is 0, bwrap is therefore started as a dedicated unprivileged host user
(``sandbox.bwrap.box_user``: a name, created as a system user when missing, or ``uid:gid``),
which owns the workspaces. When the server is not root, boxes run as the server's own user: it
can give a box nothing it does not have itself.

Every box of a server shares that uid. Boxes still cannot reach each other: each has its own
user, pid, mount and network namespaces, and a workspace is bound into its box alone.
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from openinspect.errors import ConfigError

USERADD = "useradd"
USERADD_TIMEOUT_S = 30.0
NOLOGIN = "/usr/sbin/nologin"


@dataclass(frozen=True)
class BoxUser:
    """The host uid and gid bwrap runs as; ``switch`` when the server must drop to them."""

    uid: int
    gid: int
    name: str
    switch: bool
    """True when the server is root and starts bwrap as this user (rather than as itself)."""


def server_is_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def resolve_box_user(setting: str) -> BoxUser:
    """The user boxes run as for ``setting`` (``sandbox.bwrap.box_user``); cached per process.

    Raises ``ConfigError`` for a setting naming root, or a user that cannot be created.
    """
    if not server_is_root():
        uid, gid = os.getuid(), os.getgid()
        return BoxUser(uid, gid, _name_of(uid), switch=False)
    uid, gid, name = _parse(setting)
    if uid == 0 or gid == 0:
        raise ConfigError(
            f"sandbox.bwrap.box_user must not be root, got {setting!r}",
            hint="set OPENINSPECT_SANDBOX__BWRAP__BOX_USER to an unprivileged user or 'uid:gid'",
        )
    return BoxUser(uid, gid, name, switch=True)


def _parse(setting: str) -> tuple[int, int, str]:
    uid_text, colon, gid_text = setting.partition(":")
    if colon:
        if not (uid_text.isdigit() and gid_text.isdigit()):
            raise ConfigError(
                f"sandbox.bwrap.box_user must be a user name or 'uid:gid', got {setting!r}",
                hint="for example OPENINSPECT_SANDBOX__BWRAP__BOX_USER=openinspect-box or 990:990",
            )
        return int(uid_text), int(gid_text), _name_of(int(uid_text))
    try:
        entry = pwd.getpwnam(setting)
    except KeyError:
        entry = _create(setting)
    return entry.pw_uid, entry.pw_gid, entry.pw_name


def _create(name: str) -> pwd.struct_passwd:
    """``useradd --system`` without a home or a shell; tolerates a concurrent creation."""
    if not name or name.startswith("-"):
        raise ConfigError(f"sandbox.bwrap.box_user is not a valid user name: {name!r}")
    argv = [USERADD, "--system", "--user-group", "--no-create-home"]
    argv += ["--home-dir", "/nonexistent", "--shell", NOLOGIN, "--", name]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=USERADD_TIMEOUT_S, check=False
        )
        problem = done.stderr.strip() if done.returncode != 0 else ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    try:
        return pwd.getpwnam(name)  # created now, or by a concurrent server a moment ago
    except KeyError:
        raise ConfigError(
            f"cannot create the sandbox user {name!r}: {problem or 'useradd failed'}",
            hint="create it (useradd --system --user-group --no-create-home "
            f"--shell {NOLOGIN} {name}) or set OPENINSPECT_SANDBOX__BWRAP__BOX_USER=uid:gid",
        ) from None


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def own_workspace(workspace: Path, user: BoxUser) -> None:
    """Hand ``workspace`` to the box user (a root server only).

    A workspace the box user already owns holds nothing else: a box cannot create files of
    another owner. One that it does not own (made by the server, or by an earlier run whose
    boxes were root) is re-owned entry by entry, without following links. No box runs in it
    meanwhile, so nothing can swap an entry under the walk.
    """
    if not user.switch or workspace.lstat().st_uid == user.uid:
        return
    os.chown(workspace, user.uid, user.gid, follow_symlinks=False)
    for root, dirs, files in os.walk(workspace):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)
