"""What binds a box: its cgroup (:mod:`.cgroups`), its workspace image (:mod:`.workspace_fs`)
and the size of its ``/tmp``, put together for the ``bwrap`` provider.

The provider makes one :class:`BoxLimiter` when it starts. That is the moment leftovers of a
previous run of this server are cleaned up (boxes killed, cgroups removed, images unmounted) and
every limit this host cannot enforce is logged, once, with why. The doctor reports the same
findings through :func:`unenforced_limits`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import subprocess
from pathlib import Path

from openinspect.errors import SandboxUnavailable
from openinspect.settings import Settings

from .base import BackendContext, SandboxSpec
from .cgroups import MIB, BoxCgroup, BoxLimits, Cgroups, instance_name
from .workspace_fs import mount_image, probe_workspace_images, unmount_image, unmount_stale

logger = logging.getLogger(__name__)


TMP_LIMIT = "box tmpfs (/tmp)"
HELP_TIMEOUT_S = 10.0


@functools.cache
def bwrap_sizes_tmpfs(bwrap: str = "bwrap") -> bool:
    """Whether this bwrap has ``--size`` (bubblewrap 0.5 and later); asked once per process."""
    try:
        done = subprocess.run(
            [bwrap, "--help"], capture_output=True, text=True, timeout=HELP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--size" in done.stdout + done.stderr


def unenforced_limits(
    settings: Settings | BackendContext, cgroups: Cgroups | None = None, *, bwrap: str = "bwrap"
) -> dict[str, str]:
    """Limit name → why this host cannot enforce it (only limits the settings ask for)."""
    sandbox = settings.sandbox
    if cgroups is None:
        cgroups = Cgroups.detect(instance_name(settings.home_dir))  # leaves nothing behind
    wanted = {
        "memory": sandbox.memory_mib > 0,
        "processes": sandbox.max_processes > 0,
        "cpu": sandbox.cpus > 0,
    }
    found = {name: why for name, why in cgroups.unenforced.items() if wanted.get(name)}
    if sandbox.tmp_mib > 0 and not bwrap_sizes_tmpfs(bwrap):
        found[TMP_LIMIT] = f"{bwrap} has no --size option (bubblewrap 0.5 or later has it)"
    if sandbox.workspace_mib > 0 and (why := probe_workspace_images()) is not None:
        found["workspace disk"] = why
    return found


class BoxLimiter:
    """Sets up and tears down the limits of each box of one provider."""

    def __init__(self, context: Settings | BackendContext, *, bwrap: str = "bwrap") -> None:
        self._settings = context.sandbox
        self._cgroups = Cgroups.detect(instance_name(context.home_dir))
        self.unenforced = unenforced_limits(context, self._cgroups, bwrap=bwrap)
        self._images = "workspace disk" not in self.unenforced and self._settings.workspace_mib > 0
        self._boxes: dict[str, BoxCgroup] = {}
        self._mounted: dict[str, Path] = {}
        left = self._cgroups.clean_leftovers()
        if left:
            logger.warning("killed %d sandboxes a previous run of the server left behind", left)
        if self._images and unmount_stale(context.workspaces_dir):
            logger.warning("unmounted workspace images a previous run of the server left behind")
        for name, why in self.unenforced.items():
            logger.warning("sandbox %s limit is not enforced on this host: %s", name, why)
        if 0 < self._settings.memory_mib <= self._settings.tmp_mib:
            logger.warning(
                "sandbox.tmp_mib (%d) is not below sandbox.memory_mib (%d): a full /tmp ends in "
                "the OOM killer rather than 'no space left on device'",
                self._settings.tmp_mib,
                self._settings.memory_mib,
            )
        cores = os.cpu_count() or 1
        if self._settings.cpus <= 0 or self._settings.cpus >= cores:
            logger.warning(
                "sandbox.cpus is %g on a %d-core host: one busy sandbox can take every core",
                self._settings.cpus,
                cores,
            )

    def enforces(self, limit: str) -> bool:
        """Whether ``limit`` (a name of :data:`~.cgroups.LIMITS`) binds this provider's boxes."""
        return bool(self._cgroups.parents) and limit not in self.unenforced

    @property
    def tmp_size_bytes(self) -> int | None:
        if self._settings.tmp_mib <= 0 or TMP_LIMIT in self.unenforced:
            return None
        return self._settings.tmp_mib * MIB

    async def prepare(self, spec: SandboxSpec) -> None:
        """Mount the workspace image and create the box's cgroup, before the box exists."""
        if self._images:
            mounted = await mount_image(spec.workspace_dir, self._settings.workspace_mib * MIB)
            if mounted:
                self._mounted[spec.sandbox_id] = spec.workspace_dir
        if not self._cgroups.parents:
            return
        limits = BoxLimits.from_settings(self._settings, pids_max=spec.max_processes)
        try:
            self._boxes[spec.sandbox_id] = self._cgroups.create(spec.sandbox_id, limits)
        except OSError as exc:
            logger.error("cannot create the cgroup of sandbox %s: %s", spec.sandbox_id, exc)
            await self.release(spec.sandbox_id)
            raise SandboxUnavailable(
                "cannot set the sandbox's resource limits", hint="see the server log"
            ) from exc

    def enter(self, sandbox_id: str, pid: int) -> None:
        """Put ``pid`` (the box's init, still blocked) in the box's cgroup; raises OSError."""
        box = self._boxes.get(sandbox_id)
        if box is not None:
            box.add(pid)

    def image_missing(self, sandbox_id: str) -> bool:
        """Whether the box's workspace should be its mounted image but no image is mounted
        there now (something unmounted it on the host; the box keeps its own view)."""
        workspace = self._mounted.get(sandbox_id)
        return workspace is not None and not os.path.ismount(workspace)

    def cgroup(self, sandbox_id: str) -> BoxCgroup | None:
        return self._boxes.get(sandbox_id)

    def exit_reason(self, sandbox_id: str) -> str | None:
        """Which limit the box ran into, if any ("out of memory (limit 512 MiB)")."""
        box = self._boxes.get(sandbox_id)
        return box.exit_reason() if box is not None else None

    async def release(self, sandbox_id: str) -> None:
        """Kill what is left of the box, remove its cgroup, unmount its workspace; idempotent."""
        box = self._boxes.pop(sandbox_id, None)
        if box is not None:
            await asyncio.to_thread(box.remove)  # waits for killed processes to be reaped
            if not self._boxes:
                self._cgroups.remove_parents()
        workspace = self._mounted.pop(sandbox_id, None)
        if workspace is not None:
            await unmount_image(workspace)
