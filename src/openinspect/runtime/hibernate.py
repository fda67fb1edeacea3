"""Hibernation: an idle box's runtime ``exec``\\s into :mod:`.idle` and back, so that a box with
nothing to do keeps a quarter of the memory resident.

The full runtime (asyncio, websockets and the rest: about 15 MB of private memory per box) is
what an idle box cost. After ``OPENINSPECT_HIBERNATE_S`` seconds (0: never) with the bridge
connected over a Unix socket, the boot over, no request running, nothing waiting in the outbox
and no forwarder connection open, the runtime replaces itself (``execve``, same pid) with the
idle runtime, handing over in ``OPENINSPECT_RESUME_*`` variables:

- ``HELLO``: the ``hello`` the idle runtime sends (the boot's phase included);
- ``FDS``: the forwarders' listening sockets, inherited, so their ports (in ``origin``'s URL and
  the commands' proxy variables) stay the same;
- ``BINDING``: the session the box was bound to (branch, git proxy path, tracking), so a repeated
  ``bind`` gets the same answer and a different one is still refused.

The idle runtime ``exec``\\s the full one back when anything happens; that one sees
``OPENINSPECT_RESUME_HELLO`` and resumes instead of booting: no clone, no ``setup.sh``, no
``start.sh``, the listeners adopted, the binding restored, and the control plane's unanswered
requests, re-sent on the new connection, served. The variables are hidden from commands
(:func:`.supervisor.command_environment`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .protocol import BindResult, BootPhase, HelloMessage

logger = logging.getLogger("openinspect.runtime.hibernate")

RESUME_PREFIX = "OPENINSPECT_RESUME_"
HELLO_VAR = f"{RESUME_PREFIX}HELLO"
FDS_VAR = f"{RESUME_PREFIX}FDS"
BINDING_VAR = f"{RESUME_PREFIX}BINDING"
IDLE_CODE = "from openinspect.runtime.idle import main; main()"
CHECK_INTERVAL_S = 1.0
_SETTLED: tuple[BootPhase, ...] = ("ready", "failed")


@dataclass(frozen=True)
class BoundState:
    """What ``bind`` applied: the branch, the git proxy path, and the answer it gave."""

    branch: str
    remote_path: str | None
    result: BindResult


@dataclass(frozen=True)
class ResumeState:
    """What a resumed runtime takes over from the one that hibernated."""

    phase: BootPhase | None
    listener_fds: dict[str, int]
    """Forwarder name (``git``, ``egress``) → its inherited listening socket."""
    bound: BoundState | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ResumeState | None:
        """The state handed over, or None for a runtime that starts afresh."""
        raw = env.get(HELLO_VAR)
        if not raw:
            return None
        try:
            hello = json.loads(raw)
            phase = hello.get("phase")
            fds = {}
            for item in filter(None, env.get(FDS_VAR, "").split(",")):
                name, _, fd = item.partition("=")
                fds[name] = int(fd)
            bound = None
            if binding := env.get(BINDING_VAR):
                data = json.loads(binding)
                bound = BoundState(data["branch"], data["remote_path"], data["result"])
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignoring a garbled resume state; booting afresh")
            return None
        settled = next((p for p in _SETTLED if p == phase), None)
        return cls(settled, fds, bound)


def hibernate(
    env: Mapping[str, str],
    hello: HelloMessage,
    listener_fds: Mapping[str, int],
    bound: BoundState | None,
) -> None:
    """Replace this process with the idle runtime; returns only when ``execve`` failed."""
    child = {k: v for k, v in env.items() if not k.startswith(RESUME_PREFIX)}
    child[HELLO_VAR] = json.dumps(hello, separators=(",", ":"))
    for fd in listener_fds.values():
        os.set_inheritable(fd, True)
    child[FDS_VAR] = ",".join(f"{name}={fd}" for name, fd in listener_fds.items())
    if bound is not None:
        child[BINDING_VAR] = json.dumps(
            {"branch": bound.branch, "remote_path": bound.remote_path, "result": bound.result}
        )
    logger.info("hibernating: nothing ran for a while")
    for handler in logging.getLogger().handlers:
        handler.flush()
    argv = [sys.executable, "-S", "-s", "-B", "-c", IDLE_CODE]
    try:
        os.execve(sys.executable, argv, child)  # noqa: S606 - the same interpreter, no shell
    except OSError as exc:
        logger.warning("cannot hibernate: %s", exc)
