"""The ``bwrap`` backend: a bubblewrap sandbox per session (the default on Linux).

What the box sees (everything else of the host is absent, not just unreadable):

- ``/usr`` read-only, ``/bin``, ``/lib``, ``/lib64``, ``/sbin`` as on the host (symlinks into
  ``/usr`` on merged-usr systems), fresh ``/proc``, ``/dev`` and ``/tmp``;
- ``/etc`` holding only :data:`ETC_ALLOW_LIST` (no shadow, ssh, pip or git config: the host's
  ``/etc/gitconfig`` may hold credential helpers);
- ``/workspace``: the session's workspace, the only writable host directory (``HOME`` is
  ``/workspace/.home``, the repo ``/workspace/repo``);
- ``/opt/openinspect/lib``: the runtime's code, read-only (``openinspect/__init__.py``,
  ``openinspect/runtime/`` and ``websockets`` only);
- ``/opt/openinspect/origin``: the local mirror to clone from, read-only;
- ``/run/openinspect/bridge.sock``: the control plane's bridge socket (the file alone).

Own user, pid, network, ipc, uts and cgroup namespaces: no network but loopback, no host
process visible, every capability dropped. The environment is built from scratch (no model keys,
nothing of the server's) and passed as bwrap's own environment, not on its command line, which
every host user can read. ``--die-with-parent`` ties the box to the server process (more exactly
to the thread that started it, which is the event loop's; bwrap arms it only once the box is set
up, so a server killed in a sandbox's first milliseconds can orphan it). ``destroy`` does not rely
on it: it SIGKILLs the box's init through a pidfd (bwrap reports its pid on ``--info-fd``), which
ends the box's whole pid namespace. ``RLIMIT_NPROC`` and ``RLIMIT_CORE`` are set by the runtime
for itself and its commands (:func:`openinspect.runtime.supervisor.apply_limits`). Output of the
bwrap process goes to ``<workspace>.log`` beside the workspace, outside the box's view.

Limits (:mod:`.limits`): the workspace is a size-bounded image mounted before bwrap starts, ``/tmp``
is sized with ``--size``, and the box's init waits on ``--block-fd`` until it is in the box's
cgroup (memory, processes, CPU), so nothing in the box ever runs outside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

from openinspect.errors import ConfigError, SandboxError, SandboxUnavailable
from openinspect.settings import Settings

from .base import SandboxHandle, SandboxSpec, SnapshotRef
from .cgroups import BoxCgroup
from .limits import BoxLimiter
from .local import (
    HOME_DIRNAME,
    LocalProcesses,
    RuntimeSources,
    prepare_workspace,
    runtime_argv,
    runtime_sources,
    sandbox_env,
)

logger = logging.getLogger(__name__)

BOX_WORKSPACE = "/workspace"
BOX_LIB = "/opt/openinspect/lib"
BOX_ORIGIN = "/opt/openinspect/origin"
BOX_BRIDGE_SOCKET = "/run/openinspect/bridge.sock"
BOX_PATH = "/usr/local/bin:/usr/bin:/bin"
BOX_HOSTNAME = "openinspect"
PROBE_TIMEOUT_S = 10.0
INFO_TIMEOUT_S = 10.0
"""Time bwrap gets to report the pid of the box's init."""
ROOT_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
ETC_ALLOW_LIST = (
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "group",
    "host.conf",
    "hosts",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "magic.mime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "protocols",
    "python3",
    "services",
    "shells",
    "ssl/certs",  # not ssl/private
    "ssl/openssl.cnf",
    "terminfo",
    "timezone",
)
"""Harmless ``/etc`` entries bound read-only when the host has them."""


def root_args() -> list[str]:
    """``/usr`` and the top-level links or directories that point into it, as on the host."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ROOT_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args


def etc_args() -> list[str]:
    """A minimal ``/etc``: the allow-list entries that exist on the host."""
    args = ["--dir", "/etc"]
    names = list(ETC_ALLOW_LIST)
    # Debian keeps per-version sitecustomize hooks in /etc/python3.X.
    names += sorted(p.name for p in Path("/etc").glob("python3.*"))
    for name in names:
        host = Path("/etc") / name
        if host.exists():
            args += ["--ro-bind", str(host), f"/etc/{name}"]
    return args


def build_env(spec: SandboxSpec) -> dict[str, str]:
    """The box's whole environment, built from scratch (nothing of the server's).

    It is handed to bwrap as its process environment, which bwrap passes on unchanged, rather
    than as ``--setenv`` arguments: a command line is readable by every user of the host, an
    environment only by its owner.
    """
    return sandbox_env(
        spec,
        path=BOX_PATH,
        home=f"{BOX_WORKSPACE}/{HOME_DIRNAME}",
        pythonpath=BOX_LIB,
        runtime_env=spec.runtime_env(
            bridge_socket=BOX_BRIDGE_SOCKET, workspace=BOX_WORKSPACE, clone_source=BOX_ORIGIN
        ),
    )


def build_argv(
    spec: SandboxSpec,
    *,
    bwrap: str,
    python: str,
    sources: RuntimeSources,
    info_fd: int | None = None,
    block_fd: int | None = None,
    tmp_size_bytes: int | None = None,
) -> list[str]:
    """The full bwrap command line for ``spec``; it holds no secret (see :func:`build_env`).

    With ``info_fd``, bwrap writes ``{"child-pid": …}`` (the box's init, as a host pid) to it.
    With ``block_fd``, the box's init waits, set up but before running anything, until a byte
    (or end of file) arrives there: the time to put it in its cgroup. ``tmp_size_bytes`` bounds
    the box's ``/tmp``.
    """
    argv = [
        bwrap,
        *(["--info-fd", str(info_fd)] if info_fd is not None else []),
        *(["--block-fd", str(block_fd)] if block_fd is not None else []),
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        BOX_HOSTNAME,
        *root_args(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *(["--size", str(tmp_size_bytes)] if tmp_size_bytes else []),  # for the next --tmpfs
        "--tmpfs",
        "/tmp",  # noqa: S108 - the box's own tmpfs, not the host's /tmp
        *etc_args(),
        "--bind",
        str(spec.workspace_dir),
        BOX_WORKSPACE,
        "--ro-bind",
        str(sources.package_init),
        f"{BOX_LIB}/openinspect/__init__.py",
        "--ro-bind",
        str(sources.runtime_dir),
        f"{BOX_LIB}/openinspect/runtime",
        "--ro-bind",
        str(sources.websockets_dir),
        f"{BOX_LIB}/websockets",
        "--ro-bind",
        spec.clone_source,
        BOX_ORIGIN,
        "--ro-bind",
        str(spec.bridge_socket),
        BOX_BRIDGE_SOCKET,
        "--chdir",
        BOX_WORKSPACE,
    ]
    return [*argv, "--", *runtime_argv(python)]


def _read_child_pid(fd: int) -> int:
    """Read bwrap's ``--info-fd`` JSON to its end and return the box init's host pid."""
    with os.fdopen(fd, "rb") as info:
        data = info.read()
    try:
        pid = json.loads(data)["child-pid"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unexpected bwrap info {data[:200]!r}") from exc
    if not isinstance(pid, int):
        raise ValueError(f"unexpected bwrap child-pid {pid!r}")
    return pid


@functools.cache
def probe_bwrap(bwrap: str = "bwrap") -> str | None:
    """Whether bwrap can create the namespaces a sandbox needs: None if so, else why not.

    Runs ``bwrap --unshare-all … true`` once per process (the answer is cached).
    """
    path = shutil.which(bwrap)
    if path is None:
        return f"{bwrap} is not installed (apt-get install bubblewrap)"
    argv = [path, "--unshare-all", "--unshare-user", "--die-with-parent", *root_args()]
    argv += ["--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} could not run: {exc}"
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        return f"{path} cannot create namespaces here: {error}"
    return None


class BwrapProvider:
    """Sandboxes in bubblewrap namespaces; see the module docstring for what a box sees."""

    name = "bwrap"
    isolates = True

    def __init__(self, settings: Settings, *, bwrap: str = "bwrap") -> None:
        self._bwrap = bwrap
        self._python = settings.sandbox.python
        self._procs = LocalProcesses(self.name)
        self._inits: dict[str, int] = {}  # sandbox id → pidfd of the box's init
        self._limits = BoxLimiter(settings, bwrap=bwrap)  # also cleans up after a previous run

    @property
    def unenforced_limits(self) -> dict[str, str]:
        """Limit name → why this host cannot enforce it for this provider's boxes."""
        return dict(self._limits.unenforced)

    def box_cgroup(self, sandbox_id: str) -> BoxCgroup | None:
        """The kernel cgroup of a running box (its counters), if it has one."""
        return self._limits.cgroup(sandbox_id)

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        """Start the runtime in a new box; see :meth:`SandboxProvider.create`.

        Returns once bwrap has created the box's init (whose pid :meth:`destroy` needs) and
        that init is in the box's cgroup: it waits on ``--block-fd`` until then, so nothing in
        the box ever runs outside its limits.
        """
        bwrap = self._check(spec)
        await self._limits.prepare(spec)  # the workspace image is mounted before it is used
        try:
            return await self._start(spec, bwrap)
        except BaseException:
            await self._limits.release(spec.sandbox_id)
            raise

    async def _start(self, spec: SandboxSpec, bwrap: str) -> SandboxHandle:
        log_path = prepare_workspace(spec)
        sources = runtime_sources()
        read_fd, write_fd = os.pipe()
        block_read, block_write = os.pipe()
        try:
            argv = build_argv(
                spec,
                bwrap=bwrap,
                python=self._python,
                sources=sources,
                info_fd=write_fd,
                block_fd=block_read,
                tmp_size_bytes=self._limits.tmp_size_bytes,
            )
            # RLIMIT_NPROC counts a uid's processes host-wide (every box of a shared uid): with
            # the cgroup's pids.max binding this box alone, the runtime sets none.
            env_spec = (
                replace(spec, max_processes=0) if self._limits.enforces("processes") else spec
            )
            handle = await self._procs.start(
                spec, argv, build_env(env_spec), log_path=log_path, pass_fds=(write_fd, block_read)
            )
        except BaseException:
            os.close(read_fd)
            os.close(block_write)
            raise
        finally:
            os.close(write_fd)
            os.close(block_read)
        init: int | None = None
        try:
            # The thread owns read_fd from here on; bwrap's exit closes the pipe, so it ends.
            init_pid = await asyncio.wait_for(
                asyncio.to_thread(_read_child_pid, read_fd), INFO_TIMEOUT_S
            )
            # A pidfd names the box's init without the risk of pid reuse.
            init = os.pidfd_open(init_pid)
            self._limits.enter(spec.sandbox_id, init_pid)
        except (TimeoutError, ValueError, OSError) as exc:
            await self._kill_unreleased(handle, init, block_write)
            logger.error("sandbox %s did not start (%s); see %s", spec.sandbox_id, exc, log_path)
            # An OSError's text can name a cgroup file: users get its errno text only.
            detail = (exc.strerror or "no answer") if isinstance(exc, OSError) else str(exc)
            raise SandboxUnavailable(
                f"bwrap did not start the sandbox: {detail}", hint="see the server log"
            ) from exc
        except BaseException:  # cancelled: nobody else will ever have the handle to destroy it
            await self._kill_unreleased(handle, init, block_write)
            raise
        self._inits[spec.sandbox_id] = init
        try:
            os.write(block_write, b"1")  # the box may run now
        finally:
            os.close(block_write)
        return handle

    async def _kill_unreleased(self, handle: SandboxHandle, init: int | None, block: int) -> None:
        """Kill a box still waiting on its block fd; the fd is closed (which would let it run)
        only once the box is dead."""
        try:
            if init is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(init, signal.SIGKILL)
                os.close(init)
            await self._procs.stop(handle)
        finally:
            os.close(block)

    def _check(self, spec: SandboxSpec) -> str:
        """Fail early and clearly on what would make bwrap fail; returns bwrap's path."""
        bwrap = shutil.which(self._bwrap)
        if bwrap is None:
            raise SandboxUnavailable(
                f"{self._bwrap} is not installed",
                hint="apt-get install bubblewrap, or set OPENINSPECT_SANDBOX__PROVIDER=process",
            )
        python = Path(self._python)
        if not python.is_absolute() or not python.resolve().is_relative_to("/usr"):
            raise ConfigError(
                f"sandbox.python must be an interpreter under /usr for bwrap sandboxes, "
                f"got {self._python!r}",
                hint="set OPENINSPECT_SANDBOX__PYTHON=/usr/bin/python3",
            )
        if not spec.clone_source_is_path or not Path(spec.clone_source).is_dir():
            raise SandboxUnavailable(
                f"a bwrap sandbox clones from a local mirror directory, got {spec.clone_source!r}",
                hint="bwrap sandboxes have no network; pass the path of a local bare mirror",
            )
        if not spec.bridge_socket.exists():
            raise SandboxUnavailable(
                f"the bridge socket {spec.bridge_socket} does not exist",
                hint="start the control plane's bridge listener before creating sandboxes",
            )
        return bwrap

    async def wait(self, handle: SandboxHandle) -> int:
        """See :meth:`SandboxProvider.wait`; also sets ``handle.exit_reason`` from the box's
        cgroup (a limit it ran into) and releases the box's limits, as the box is gone."""
        code = await self._procs.wait(handle)
        if code != -1:
            init = self._inits.pop(handle.sandbox_id, None)
            if init is not None:
                os.close(init)
            handle.exit_reason = self._limits.exit_reason(handle.sandbox_id)
            await self._limits.release(handle.sandbox_id)
        return code

    async def destroy(self, handle: SandboxHandle) -> None:
        """SIGKILL the box's init (so its whole pid namespace), then stop the bwrap process.

        Killing only bwrap is not enough: the box's init arms ``--die-with-parent`` at the end
        of its setup, so a sandbox destroyed while starting would outlive bwrap.
        """
        init = self._inits.pop(handle.sandbox_id, None)
        if init is not None:
            try:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(init, signal.SIGKILL)
            finally:
                os.close(init)
        await self._procs.stop(handle)
        await self._limits.release(handle.sandbox_id)

    async def snapshot(self, handle: SandboxHandle) -> SnapshotRef:
        """Not supported yet."""
        raise SandboxError(f"snapshots are not supported by {self.name}")

    async def restore(self, ref: SnapshotRef, spec: SandboxSpec) -> SandboxHandle:
        """Not supported yet."""
        raise SandboxError(f"snapshots are not supported by {self.name}")
