"""The ``process`` backend: the runtime as a plain host subprocess, for development and macOS.

It does NOT isolate: commands see the host's files, network and processes as the server's user
does. It keeps only what costs nothing: the environment is built from scratch (no model keys, no
server settings; the host ``PATH`` is kept so the developer's tools are found), the clone source is
used directly, ``HOME`` is ``<workspace>/.home``. The runtime's code is reached through a directory
of symlinks holding only the runtime and ``websockets``.

``destroy`` SIGTERMs the runtime (which kills its commands' process groups), SIGKILLs it after
the grace, then kills any process still carrying the sandbox's ``OPENINSPECT_SANDBOX_ID`` (on
Linux): commands run in sessions of their own, so a killed runtime would otherwise leave them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import tempfile
from pathlib import Path

from openinspect.settings import ProcessSettings, Settings

from .base import BackendContext, SandboxExit, SandboxHandle, SandboxSpec
from .local import (
    HOME_DIRNAME,
    LocalHandle,
    LocalProcesses,
    RuntimeSources,
    local_handle,
    prepare_workspace,
    runtime_argv,
    runtime_sources,
    sandbox_env,
)

logger = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_warned = False


def runtime_lib(sources: RuntimeSources, parent: Path) -> Path:
    """A directory under ``parent`` holding only the runtime's code (symlinks), shared by every
    sandbox of this installation."""
    key = hashlib.sha256(
        "\0".join(
            map(str, (sources.package_init, sources.runtime_dir, sources.websockets_dir))
        ).encode()
    ).hexdigest()[:16]
    lib = parent / f"runtime-lib-{key}"
    if (lib / "websockets").exists():
        return lib
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".runtime-lib-", dir=parent))
    (staging / "openinspect").mkdir()
    (staging / "openinspect" / "__init__.py").symlink_to(sources.package_init)
    (staging / "openinspect" / "runtime").symlink_to(sources.runtime_dir)
    (staging / "websockets").symlink_to(sources.websockets_dir)
    try:
        staging.rename(lib)
    except OSError:  # another process won the race (or a stale dir is there): use theirs
        _remove_tree(staging)
    return lib


def _remove_tree(path: Path) -> None:
    for child in (path / "openinspect" / "__init__.py", path / "openinspect" / "runtime"):
        child.unlink(missing_ok=True)
    (path / "websockets").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (path / "openinspect").rmdir()
        path.rmdir()


def kill_tagged(sandbox_id: str) -> int:
    """SIGKILL every process of ours whose environment tags it with ``sandbox_id``; Linux only.

    Returns how many were signalled.
    """
    tag = f"OPENINSPECT_SANDBOX_ID={sandbox_id}".encode()
    killed = 0
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return 0
    for entry in proc_root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours
        if tag in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


class ProcessProvider:
    """Sandboxes as plain subprocesses: no isolation (see the module docstring)."""

    name = "process"
    isolates = False

    def __init__(self, config: ProcessSettings, context: BackendContext) -> None:
        self._python = config.python
        self._lib_parent = context.run_dir
        self._procs = LocalProcesses(self.name)

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessProvider:
        """The provider the registry makes for ``settings``."""
        return cls(settings.sandbox.process, BackendContext.from_settings(settings))

    async def create(self, spec: SandboxSpec) -> LocalHandle:
        """Start the runtime as a host process; see :meth:`SandboxProvider.create`."""
        global _warned
        if not _warned:
            _warned = True
            logger.warning(
                "sandbox provider 'process' does not isolate: agent commands run on this host "
                "with your user's access; use 'bwrap' for isolation"
            )
        log_path = prepare_workspace(spec)
        sources = runtime_sources()
        env = sandbox_env(
            spec,
            path=os.environ.get("PATH", DEFAULT_PATH),
            home=str(spec.workspace_dir / HOME_DIRNAME),
            pythonpath=str(runtime_lib(sources, self._lib_parent)),
            runtime_env=spec.runtime_env(
                bridge_url=spec.bridge_url,
                workspace=str(spec.workspace_dir),
                clone_source=spec.clone_source,
            ),
        )
        return await self._procs.start(spec, runtime_argv(self._python), env, log_path=log_path)

    async def wait(self, handle: SandboxHandle) -> SandboxExit:
        """See :meth:`SandboxProvider.wait`."""
        return SandboxExit(await self._procs.wait(local_handle(handle, self.name)))

    async def destroy(self, handle: SandboxHandle) -> None:
        """Stop the runtime and everything it started; see the module docstring."""
        await self._procs.stop(local_handle(handle, self.name))
        if kill_tagged(handle.sandbox_id):
            logger.info("killed processes left behind by sandbox %s", handle.sandbox_id)
