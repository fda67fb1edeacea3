"""A sandbox provider for tests that runs the real runtime as a task in the test's own process.

Engine tests (prompts, tools, the idle reaper, live output) need a runtime that boots, runs
commands and answers over the bridge, not a contained box. :class:`InProcessProvider` runs
:func:`openinspect.runtime.supervisor.serve` — the same supervisor, boot, executor and bridge
client a real box runs — as an asyncio task on the test's loop, against a temp workspace. It
dials the bridge through the real Unix socket the control plane serves, so the transport,
``hello``, validation, pacing and replay are exactly production's; only the process boundary is
gone, and with it interpreter start-up and the runtime's imports (what a ``process`` or
``bwrap`` box spends most of its boot on). Commands the agent runs are still subprocesses.

It isolates nothing and makes no containment claim: tests of containment and the end-to-end
tests keep real ``bwrap`` boxes. It is not in the provider registry, so no setting can select it;
a test gives it to the control plane in place of the configured one
(``open_control_plane(settings, provider=wrap_provider(InProcessProvider(), settings))``, as
``tests/sessions/bridged.py`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from openinspect.errors import SandboxUnavailable
from openinspect.runtime.supervisor import ConfigMissing, RuntimeConfig, serve
from openinspect.sandboxes.base import SandboxExit, SandboxHandle, SandboxSpec
from openinspect.sandboxes.local import HOME_DIRNAME, prepare_workspace, sandbox_env
from openinspect.timeouts import wait_for

logger = logging.getLogger(__name__)

STOP_GRACE_S = 3.0
"""Time a runtime gets to stop its commands and return before its task is cancelled."""
UNKNOWN = SandboxExit(-1)


@dataclass
class InProcessHandle(SandboxHandle):
    """An in-process box: its workspace on the host (tests look at files there)."""

    workspace_dir: Path

    @property
    def repo_dir(self) -> Path:
        return self.workspace_dir / "repo"


@dataclass
class _Box:
    task: asyncio.Task[int]
    stop: asyncio.Event


class InProcessProvider:
    """The real runtime as a task in this process (see the module docstring)."""

    name = "inprocess"
    isolates = False

    def __init__(self) -> None:
        self._boxes: dict[str, _Box] = {}

    @property
    def live(self) -> int:
        """Runtimes running now."""
        return sum(not box.task.done() for box in self._boxes.values())

    async def create(self, spec: SandboxSpec) -> InProcessHandle:
        """Start the runtime for ``spec`` as a task; see ``SandboxProvider.create``."""
        prepare_workspace(spec)
        env = sandbox_env(
            spec,
            path=os.environ.get("PATH", "/usr/bin:/bin"),
            home=str(spec.workspace_dir / HOME_DIRNAME),
            pythonpath="",  # the runtime is imported here already; commands get none of ours
            runtime_env=spec.runtime_env(
                bridge_url=spec.bridge_url,
                workspace=str(spec.workspace_dir),
                clone_source=spec.clone_source,
            ),
        )
        try:
            config = RuntimeConfig.from_env(env)
        except ConfigMissing as exc:
            raise SandboxUnavailable(f"the in-process runtime cannot start: {exc}") from exc
        stop = asyncio.Event()
        task = asyncio.create_task(serve(config, env, stop=stop), name=f"box {spec.sandbox_id}")
        self._boxes[spec.sandbox_id] = _Box(task, stop)
        return InProcessHandle(spec.sandbox_id, self.name, spec.workspace_dir)

    async def wait(self, handle: SandboxHandle) -> SandboxExit:
        """The runtime's exit status once its task ends (a crash is 1)."""
        box = self._boxes.get(handle.sandbox_id)
        if box is None:
            return UNKNOWN
        try:
            return SandboxExit(await asyncio.shield(box.task))
        except asyncio.CancelledError:
            if box.task.cancelled():
                return SandboxExit(-15)  # as a SIGTERM that had to be forced
            raise  # the waiter itself was cancelled
        except Exception:
            logger.exception("in-process runtime %s crashed", handle.sandbox_id)
            return SandboxExit(1, "the runtime raised")

    async def destroy(self, handle: SandboxHandle) -> None:
        """Stop the runtime (its commands are killed), cancelling it past the grace."""
        box = self._boxes.get(handle.sandbox_id)
        if box is None:
            return
        box.stop.set()
        with contextlib.suppress(TimeoutError):
            await wait_for(asyncio.shield(box.task), STOP_GRACE_S)
        if not box.task.done():
            box.task.cancel()
        await asyncio.gather(box.task, return_exceptions=True)
        self._boxes.pop(handle.sandbox_id, None)  # only now: a waiter meanwhile saw it end

    async def close(self) -> None:
        """Destroy every box (a test's teardown)."""
        for sandbox_id in list(self._boxes):
            await self.destroy(SandboxHandle(sandbox_id, self.name))
