"""What ``openinspect doctor`` says about how boxes run here, from a real (minimal) box.

The box is started the way :class:`~.bwrap.BwrapProvider` starts one (the box user, its user
namespace options, its ``/proc``) and asked three things: its uid, whether a kernel knob opens
for writing (``: >> /proc/sys/kernel/domainname`` opens without writing), and whether it may
create a user namespace of its own.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from openinspect.errors import ConfigError

from .boxuser import BoxUser, resolve_box_user
from .bwrap import (
    PROBE_TIMEOUT_S,
    can_disable_userns,
    proc_args,
    root_args,
    userns_args,
)

_SCRIPT = (
    "id -u; "
    "if (: >> /proc/sys/kernel/domainname) 2>/dev/null; then echo knobs=writable; "
    "else echo knobs=read-only; fi; "
    "if unshare --user true 2>/dev/null; then echo userns=allowed; else echo userns=refused; fi"
)


@dataclass(frozen=True)
class BoxFacts:
    """How a box runs on this host; ``error`` when no box could be started to find out."""

    user: BoxUser | None
    nested_userns_flag: bool
    """bwrap can forbid nested user namespaces (``--disable-userns``)."""
    uid_in_box: int | None = None
    knobs_read_only: bool | None = None
    nested_userns_refused: bool | None = None
    error: str | None = None


def box_facts(box_user_setting: str, bwrap: str = "bwrap") -> BoxFacts:
    """Start a minimal box as the box user and report what it found."""
    path = shutil.which(bwrap)
    if path is None:
        return BoxFacts(None, False, error=f"{bwrap} is not installed")
    try:
        user = resolve_box_user(box_user_setting)
    except ConfigError as exc:
        return BoxFacts(None, False, error=exc.message)
    flag = can_disable_userns(path)
    argv = [path, "--unshare-all", *userns_args(flag), "--die-with-parent", "--cap-drop", "ALL"]
    argv += [*root_args(), *proc_args(), "--dev", "/dev", "--", "/bin/sh", "-c", _SCRIPT]
    if user.switch:
        drop = [f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "--"]
        argv = ["setpriv", *drop, *argv]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BoxFacts(user, flag, error=f"the test box did not run: {exc}")
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 3 or not lines[0].isdigit():
        why = done.stderr.strip() or f"exit {done.returncode}"
        return BoxFacts(user, flag, error=f"the test box failed: {why}")
    return BoxFacts(
        user,
        flag,
        uid_in_box=int(lines[0]),
        knobs_read_only=lines[1] == "knobs=read-only",
        nested_userns_refused=lines[2] == "userns=refused",
    )
