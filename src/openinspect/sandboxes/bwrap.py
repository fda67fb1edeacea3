"""The ``bwrap`` backend: a bubblewrap sandbox per session (the default on Linux).

Who the box is: never host root. A root server starts bwrap as the unprivileged box user
(:mod:`.boxuser`); any other server as itself. bwrap maps that one host uid into the box (the box
user keeps its host uid inside; there is no root in the box), every capability is dropped, and
nested user namespaces are forbidden where bwrap can (``--disable-userns``, bwrap 0.8+; bwrap
then puts an intermediate user namespace between host and box, which is why the box's own
``/proc/self/uid_map`` reads ``<uid> 0 1``: its "0" is that intermediate namespace's root, itself
the same unprivileged host uid).

What the box sees (everything else of the host is absent, not just unreadable):

- ``/usr`` read-only, ``/bin``, ``/lib``, ``/lib64``, ``/sbin`` as on the host (symlinks into
  ``/usr`` on merged-usr systems), fresh ``/dev`` and ``/tmp``;
- a fresh ``/proc`` whose kernel knobs (:data:`PROC_READ_ONLY`) are read-only whatever bwrap
  decides, and whose host-wide kernel state (:data:`PROC_MASKED_FILES`, :data:`PROC_MASKED_DIRS`)
  is masked;
- ``/etc`` holding only :data:`ETC_ALLOW_LIST` (no shadow, ssh, pip or git config: the host's
  ``/etc/gitconfig`` may hold credential helpers);
- ``/workspace``: the session's workspace, the only writable host directory (``HOME`` is
  ``/workspace/.home``, the repo ``/workspace/repo``);
- ``/opt/openinspect/runtime.zip``: the runtime's code, as data (:mod:`.payload`);
- ``/opt/openinspect/mirror``: the repo mirror's objects, read-only, which the clone borrows
  (git alternates) when the workspace is staged (:mod:`.staging`); the refs to clone come as
  data. A box that binds its workspace gets a git bundle of its branches instead;
- ``/run/openinspect/bridge.sock``: a socket of the box's own, relayed to the control plane's
  bridge (:mod:`.relay`).

No host path: bwrap's options come through ``--args FD`` (the box sees bwrap as its pid 1), the
runtime's code and the repo to clone are copied in as data, and the box's output reaches the
server's log through a pipe. The workspace is a file system of its own in the
mount table (a root server's image, an ordinary server's overlay: :mod:`.staging`), so
``/proc/self/mountinfo`` shows its root as ``/``; only where neither works is it a bind mount,
whose root is where the workspace is on the host.

Own user, pid, network, ipc, uts and cgroup namespaces: no network but loopback, no host
process visible. The environment is built from scratch (no model keys, nothing of the server's)
and passed as bwrap's own environment, not on its command line. ``--die-with-parent`` ties the
box to the server process (more exactly to the thread that started it, which is the event loop's;
bwrap arms it only once the box is set up, so a server killed in a sandbox's first milliseconds
can orphan it). ``destroy`` does not rely on it: it SIGKILLs the box's init through a pidfd (bwrap
reports its pid on ``--info-fd``), which ends the box's whole pid namespace. ``RLIMIT_NPROC`` and
``RLIMIT_CORE`` are set by the runtime for itself and its commands
(:func:`openinspect.runtime.supervisor.apply_limits`).

Limits (:mod:`.limits`): the workspace is a size-bounded image mounted before bwrap starts, ``/tmp``
is sized with ``--size``, and the box's init waits on ``--block-fd`` until it is in the box's
cgroup (memory, processes, CPU) and its bridge relay listens, so nothing in the box ever runs
outside its limits.
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
from dataclasses import dataclass, replace
from pathlib import Path

from openinspect.errors import ConfigError, SandboxUnavailable, SnapshotFailed
from openinspect.runtime.address import BadBridgeAddress, BridgeAddress, unix_url
from openinspect.settings import BwrapSettings, Settings
from openinspect.timeouts import wait_for

from .base import BackendContext, SandboxExit, SandboxHandle, SandboxSpec, SnapshotRef
from .boxuser import BoxUser, own_workspace, resolve_box_user
from .cgroups import BoxCgroup
from .limits import BoxLimiter
from .local import (
    HOME_DIRNAME,
    REPO_DIRNAME,
    UNKNOWN_EXIT,
    LocalHandle,
    LocalProcesses,
    local_handle,
    prepare_workspace,
    runtime_argv,
    runtime_sources,
    sandbox_env,
)
from .payload import data_fd, origin_bundle, origin_refs, runtime_zip, warm_runtime_zip
from .relay import BridgeRelay
from .snapshots import SNAPSHOTS_DIRNAME, WorkspaceSnapshots, archive_limits
from .staging import (
    STAGED_MIRROR,
    STAGED_WORKSPACE,
    ensure_stage_dir,
    prepare_overlay,
    probe_user_staging,
    staged_argv,
    user_staged_argv,
)

logger = logging.getLogger(__name__)

BOX_WORKSPACE = "/workspace"
BOX_RUNTIME_ZIP = "/opt/openinspect/runtime.zip"
BOX_BUNDLE = f"{BOX_WORKSPACE}/.openinspect-origin.bundle"
BOX_REFS = f"{BOX_WORKSPACE}/.openinspect-origin.refs"
BOX_MIRROR = "/opt/openinspect/mirror"
"""Where a box sees its repo mirror's objects, read-only: its clone borrows them (alternates)."""
BOX_BRIDGE_SOCKET = "/run/openinspect/bridge.sock"
BOX_PATH = "/usr/local/bin:/usr/bin:/bin"
BOX_HOSTNAME = "openinspect"
PROBE_TIMEOUT_S = 10.0
PROBE_COMMAND = ("/bin/sh", "-c", ":")
INFO_TIMEOUT_S = 10.0
"""Time bwrap gets to report the pid of the box's init."""
ROOT_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
"""Kernel knobs under ``/proc``, bound read-only over the box's own procfs where they exist.

bwrap covers some of them only when they look writable to it, which they do not to an
unprivileged or capability-less user; they are bound here unconditionally."""
PROC_MASKED_FILES = (
    "kcore",
    "kallsyms",
    "kmsg",
    "keys",
    "key-users",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "timer_stats",
    "kpagecount",
    "kpageflags",
    "kpagecgroup",
    "vmallocinfo",
)
"""Host-wide kernel state under ``/proc`` a box has no use for: ``/dev/null`` stands in."""
PROC_MASKED_DIRS = ("acpi", "asound", "scsi")
"""Host hardware under ``/proc``: an empty read-only tmpfs stands in."""
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


def build_env(
    spec: SandboxSpec, *, hibernate_s: float = 0.0, borrow: bool = False
) -> dict[str, str]:
    """The box's whole environment, built from scratch (nothing of the server's).

    It is handed to bwrap as its process environment, which bwrap passes on unchanged, rather
    than as ``--setenv`` arguments: a command line is readable by every user of the host, an
    environment only by its owner. ``borrow``: the box sees the mirror's objects at
    :data:`BOX_MIRROR` and clones from a list of refs (:data:`BOX_REFS`), not a bundle.
    """
    runtime_env = spec.runtime_env(
        bridge_url=unix_url(BOX_BRIDGE_SOCKET),
        workspace=BOX_WORKSPACE,
        # A repo image's box fetches what its image lacks from a bundle, borrowing or not.
        clone_source=BOX_REFS if borrow and spec.boot_mode != "repo_image" else BOX_BUNDLE,
    )
    runtime_env["OPENINSPECT_HIBERNATE_S"] = f"{hibernate_s:g}"
    if borrow:
        runtime_env["OPENINSPECT_CLONE_OBJECTS"] = BOX_MIRROR
    return sandbox_env(
        spec,
        path=BOX_PATH,
        home=f"{BOX_WORKSPACE}/{HOME_DIRNAME}",
        pythonpath=BOX_RUNTIME_ZIP,
        runtime_env=runtime_env,
    )


def host_bridge_socket(spec: SandboxSpec) -> Path:
    """The host's bridge socket, which the box reaches through its relay: a box has no network,
    so its bridge must be a ``unix://`` one. Raises ``ConfigError``."""
    try:
        address = BridgeAddress.parse(spec.bridge_url)
    except BadBridgeAddress as exc:
        raise ConfigError(f"bad bridge URL for a bwrap sandbox: {exc}") from None
    if address.scheme != "unix":
        raise ConfigError(
            f"a bwrap sandbox has no network: its bridge is a unix:// socket, not {address.scheme}",
            hint="bwrap boxes run on the server's host; a remote bridge is for remote backends",
        )
    return Path(address.path)


def proc_args() -> list[str]:
    """A fresh ``/proc`` whose kernel knobs are read-only and whose host-wide state is masked."""
    args = ["--proc", "/proc"]
    for name in PROC_READ_ONLY:
        args += ["--ro-bind-try", f"/proc/{name}", f"/proc/{name}"]
    for name in PROC_MASKED_FILES:
        if Path("/proc", name).exists():
            args += ["--ro-bind", "/dev/null", f"/proc/{name}"]
    for name in PROC_MASKED_DIRS:
        if Path("/proc", name).is_dir():
            args += ["--tmpfs", f"/proc/{name}", "--remount-ro", f"/proc/{name}"]
    return args


def userns_args(nested_userns_disabled: bool) -> list[str]:
    """Own user namespace; no nested ones where bwrap can forbid them (0.8 and later)."""
    args = ["--unshare-user"]
    if nested_userns_disabled:
        args += ["--disable-userns", "--assert-userns-disabled"]
    return args


@dataclass(frozen=True)
class BoxInputs:
    """Where bwrap finds what it puts in one box: the workspace by path (the host's, or its
    staged path for a root server: :mod:`.staging`), the rest as descriptors that bwrap reads
    and closes before the runtime starts, so no box process holds one."""

    workspace: str
    runtime_zip: int
    """The runtime's code (:func:`.payload.runtime_zip`)."""
    bundle: int | None = None
    """A git bundle to clone from, when the workspace has no checkout yet (or to fetch from, for
    a box started from a repo image)."""
    refs: int | None = None
    """The refs to clone (``<sha> refs/heads/<branch>`` lines), when the clone borrows the
    mirror's objects (``mirror``) and the workspace has no checkout yet."""
    mirror: str | None = None
    """The staged read-only overlay of the mirror's objects (:data:`.staging.STAGED_MIRROR`)."""
    info: int | None = None
    """Where bwrap writes ``{"child-pid": …}`` (the box's init, as a host pid)."""
    block: int | None = None
    """What the box's init waits on, set up but running nothing, until a byte arrives (or the
    end of file): the time to put the box's bridge socket in place (:mod:`.relay`)."""

    def fds(self) -> tuple[int, ...]:
        fds = (self.runtime_zip, self.bundle, self.refs, self.info, self.block)
        return tuple(fd for fd in fds if fd is not None)


def build_argv(
    spec: SandboxSpec,
    *,
    bwrap: str,
    python: str,
    inputs: BoxInputs,
    nested_userns_disabled: bool = True,
    tmp_size_bytes: int | None = None,
) -> list[str]:
    """The full bwrap command line for ``spec``; it holds no secret (see :func:`build_env`).

    :class:`BwrapProvider` passes the options through a descriptor (``--args``): bwrap's own
    command line, which the box sees as its pid 1's, then names nothing of the server.
    ``tmp_size_bytes`` bounds the box's ``/tmp``.
    """
    argv = [
        bwrap,
        *(["--info-fd", str(inputs.info)] if inputs.info is not None else []),
        *(["--block-fd", str(inputs.block)] if inputs.block is not None else []),
        "--unshare-all",
        *userns_args(nested_userns_disabled),
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        BOX_HOSTNAME,
        *root_args(),
        *proc_args(),
        "--dev",
        "/dev",
        *(["--size", str(tmp_size_bytes)] if tmp_size_bytes else []),  # for the next --tmpfs
        "--tmpfs",
        "/tmp",  # noqa: S108 - the box's own tmpfs, not the host's /tmp
        *etc_args(),
        "--bind",
        inputs.workspace,
        BOX_WORKSPACE,
        "--ro-bind-data",
        str(inputs.runtime_zip),
        BOX_RUNTIME_ZIP,
        "--dir",
        os.path.dirname(BOX_BRIDGE_SOCKET),  # the relay's socket goes there (:mod:`.relay`)
    ]
    if inputs.mirror is not None:
        argv += ["--ro-bind", inputs.mirror, BOX_MIRROR]
    if inputs.bundle is not None:
        argv += ["--perms", "0600", "--file", str(inputs.bundle), BOX_BUNDLE]
    if inputs.refs is not None:
        argv += ["--perms", "0600", "--file", str(inputs.refs), BOX_REFS]
    argv += ["--chdir", BOX_WORKSPACE]
    return [*argv, "--", *runtime_argv(python)]


def _mirror_objects(spec: SandboxSpec) -> Path:
    """The host directory of the objects of the mirror ``spec`` clones from."""
    return Path(spec.clone_source) / "objects"


def args_via_fd(argv: list[str]) -> tuple[list[str], int]:
    """``argv`` with bwrap's options moved into a descriptor: (new argv, the descriptor).

    bwrap reads NUL-separated options from ``--args FD``; the command stays on the real
    command line (bwrap takes it from there only).
    """
    split = argv.index("--")
    options = b"".join(arg.encode() + b"\0" for arg in argv[1:split])
    fd = data_fd("bwrap-args", options)
    return [argv[0], "--args", str(fd), *argv[split:]], fd


def _own_top(workspace: Path, owner: tuple[int, int]) -> None:
    """Give a restored workspace and its home directory (made here if the snapshot had none)
    to the box user; everything below them came out of the archive as the box user's."""
    home = workspace / HOME_DIRNAME
    with contextlib.suppress(FileExistsError):
        home.mkdir(mode=0o700)
    for path in (workspace, home):
        os.chown(path, *owner, follow_symlinks=False)


def _read_child_pid(fd: int) -> int:
    """Read bwrap's ``--info-fd`` JSON (to its end, or to the end of the first document: a box
    waiting on its block descriptor keeps the pipe open) and return the box init's host pid."""
    data = b""
    with os.fdopen(fd, "rb", buffering=0) as info:
        while chunk := info.read(4096):
            data += chunk
            with contextlib.suppress(ValueError):
                json.loads(data)
                break
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
    done = _run_probe([path, "--unshare-all", "--unshare-user", "--die-with-parent"])
    if isinstance(done, str):
        return done
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        return f"{path} cannot create namespaces here: {error}"
    return None


@functools.cache
def can_disable_userns(bwrap: str) -> bool:
    """Whether this bwrap can forbid nested user namespaces (``--disable-userns``, 0.8+)."""
    done = _run_probe([bwrap, "--unshare-all", *userns_args(True), "--die-with-parent"])
    return not isinstance(done, str) and done.returncode == 0


def _run_probe(options: list[str]) -> subprocess.CompletedProcess[bytes] | str:
    # An absolute path: bwrap looks a bare name up on the server's PATH, which need not have it.
    argv = [*options, *root_args(), "--proc", "/proc", "--dev", "/dev", "--", *PROBE_COMMAND]
    try:
        return subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{options[0]} could not run: {exc}"


class BwrapProvider:
    """Sandboxes in bubblewrap namespaces; see the module docstring for what a box sees."""

    name = "bwrap"
    isolates = True

    def __init__(
        self, config: BwrapSettings, context: BackendContext, *, bwrap: str = "bwrap"
    ) -> None:
        self._bwrap = bwrap
        self._python = config.python
        self._box_user = config.box_user
        self._hibernate_s = config.hibernate_s
        self._scratch = context.run_dir
        self._workspaces_dir = context.workspaces_dir
        self._overlay: bool | None = None  # an ordinary server's staging; probed when first used
        self._procs = LocalProcesses(self.name)
        self._inits: dict[str, int] = {}  # sandbox id → pidfd of the box's init
        self._relays: dict[str, BridgeRelay] = {}  # sandbox id → its bridge socket's relay
        self._limits = BoxLimiter(context, bwrap=bwrap)  # also cleans up after a previous run
        self._snapshots = WorkspaceSnapshots(
            self.name,
            context.sandbox.snapshots_dir or context.home_dir / SNAPSHOTS_DIRNAME,
            archive_limits(context.sandbox),
        )
        with contextlib.suppress(SandboxUnavailable):  # create() says so, when it is needed
            warm_runtime_zip(runtime_sources(), self._python)

    @classmethod
    def from_settings(cls, settings: Settings, *, bwrap: str = "bwrap") -> BwrapProvider:
        """The provider the registry makes for ``settings``."""
        return cls(settings.sandbox.bwrap, BackendContext.from_settings(settings), bwrap=bwrap)

    @property
    def unenforced_limits(self) -> dict[str, str]:
        """Limit name → why this host cannot enforce it for this provider's boxes."""
        return dict(self._limits.unenforced)

    def box_cgroup(self, sandbox_id: str) -> BoxCgroup | None:
        """The kernel cgroup of a running box (its counters), if it has one."""
        return self._limits.cgroup(sandbox_id)

    def box_user(self) -> BoxUser:
        """The host user boxes run as (see :mod:`.boxuser`); raises ``ConfigError``."""
        return resolve_box_user(self._box_user)

    async def create(self, spec: SandboxSpec) -> LocalHandle:
        """Start the runtime in a new box; see :meth:`SandboxProvider.create`.

        Returns once bwrap has created the box's init (whose pid :meth:`destroy` needs), that
        init is in the box's cgroup and its bridge relay listens: it waits on ``--block-fd``
        until then, so nothing in the box ever runs outside its limits.
        """
        bwrap = self._check(spec)
        user = self.box_user()
        await self._limits.prepare(spec)  # the workspace image is mounted before it is used
        try:
            return await self._start(spec, bwrap, user)
        except BaseException:
            await self._limits.release(spec.sandbox_id)
            raise

    async def snapshot(self, handle: SandboxHandle) -> SnapshotRef:
        """Archive the running box's workspace (:mod:`.snapshots`); see
        :meth:`SnapshotCapable.snapshot`. The workspace is read on the host (a root server's
        image is mounted while its box runs) through descriptors that never follow a link."""
        box = local_handle(handle, self.name)
        if self._limits.image_missing(box.sandbox_id):
            logger.error("sandbox %s: its workspace image is no longer mounted", box.sandbox_id)
            raise SnapshotFailed(
                "the box's workspace is not where the server can read it",
                hint="see the server log; the box keeps running",
            )
        return await self._snapshots.capture(box.sandbox_id, box.workspace_dir)

    async def restore(self, ref: SnapshotRef, spec: SandboxSpec) -> LocalHandle:
        """Put ``ref``'s workspace in place, then start the box as :meth:`create` does; see
        :meth:`SnapshotCapable.restore`. A refused snapshot raises ``SnapshotCorrupt`` with the
        workspace untouched and no box started."""
        bwrap = self._check(spec)
        user = self.box_user()
        try:
            spec.workspace_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxUnavailable(
                f"cannot create the workspace: {exc.strerror or exc}",
                hint="check that the workspaces directory is writable",
            ) from exc
        await self._limits.prepare(spec)  # a root server's workspace image is mounted first
        try:
            owner = (user.uid, user.gid) if user.switch else None
            await self._snapshots.unpack(ref, spec.workspace_dir, owner)
            if owner is not None:
                # Every entry is the box user's already: owned at the top too, the workspace
                # is not walked again (``own_workspace``).
                await asyncio.to_thread(_own_top, spec.workspace_dir, owner)
            return await self._start(spec, bwrap, user)
        except BaseException:
            await self._limits.release(spec.sandbox_id)
            raise

    async def discard_snapshot(self, ref: SnapshotRef) -> None:
        """Delete ``ref``'s archive; idempotent."""
        await self._snapshots.discard(ref)

    async def _start(self, spec: SandboxSpec, bwrap: str, user: BoxUser) -> LocalHandle:
        log_path = prepare_workspace(spec)
        own_workspace(spec.workspace_dir, user)
        overlay = await self._stages_overlay(user)
        if overlay:
            prepare_overlay(spec.workspace_dir)
        opened: list[int] = []
        read_fd: int | None = None
        block_write: int | None = None
        try:
            inputs = await self._open_inputs(spec, opened, staged=user.switch or overlay)
            # Probed once per process by running bwrap: not on the event loop.
            nested_userns_disabled = await asyncio.to_thread(can_disable_userns, bwrap)
            read_fd, write_fd = os.pipe()
            opened.append(write_fd)
            block_read, block_write = os.pipe()
            opened.append(block_read)
            argv = build_argv(
                spec,
                bwrap=bwrap,
                python=self._python,
                inputs=replace(inputs, info=write_fd, block=block_read),
                nested_userns_disabled=nested_userns_disabled,
                tmp_size_bytes=self._limits.tmp_size_bytes,
            )
            # RLIMIT_NPROC counts a uid's processes host-wide (every box of a shared uid): with
            # the cgroup's pids.max binding this box alone, the runtime sets none.
            env_spec = (
                replace(spec, max_processes=0) if self._limits.enforces("processes") else spec
            )
            argv, args_fd = args_via_fd(argv)
            opened.append(args_fd)
            objects = _mirror_objects(spec) if inputs.mirror is not None else None
            if user.switch:
                argv = staged_argv(argv, user, workspace=spec.workspace_dir, mirror_objects=objects)
            elif overlay:
                argv = user_staged_argv(
                    argv, user, workspace=spec.workspace_dir, mirror_objects=objects
                )
            handle = await self._procs.start(
                spec,
                argv,
                build_env(
                    env_spec, hibernate_s=self._hibernate_s, borrow=inputs.mirror is not None
                ),
                log_path=log_path,
                pass_fds=(*inputs.fds(), write_fd, block_read, args_fd),
                cwd=Path("/"),  # not the workspace: bwrap's cwd is a host path
            )
        except BaseException:
            for fd in (read_fd, block_write):
                if fd is not None:
                    os.close(fd)
            raise
        finally:
            for fd in opened:
                os.close(fd)
        assert read_fd is not None
        assert block_write is not None
        init: int | None = None
        relay = BridgeRelay(host_bridge_socket(spec))
        try:
            # The thread owns read_fd from here on; bwrap's exit closes the pipe, so it ends.
            init_pid = await wait_for(asyncio.to_thread(_read_child_pid, read_fd), INFO_TIMEOUT_S)
            # A pidfd names the box's init without the risk of pid reuse.
            init = os.pidfd_open(init_pid)
            self._limits.enter(spec.sandbox_id, init_pid)
            await relay.start(init_pid, BOX_BRIDGE_SOCKET, user, INFO_TIMEOUT_S)
        except (TimeoutError, ValueError, OSError) as exc:
            await self._kill_unreleased(handle, init, block_write, relay)
            logger.error("sandbox %s did not start (%s); see %s", spec.sandbox_id, exc, log_path)
            # An OSError's text can name a host file: users get its errno text only.
            detail = (exc.strerror or "no answer") if isinstance(exc, OSError) else str(exc)
            raise SandboxUnavailable(
                f"bwrap did not start the sandbox: {detail or 'no answer'}",
                hint="see the server log",
            ) from exc
        except BaseException:  # cancelled: nobody else will ever have the handle to destroy it
            await self._kill_unreleased(handle, init, block_write, relay)
            raise
        self._inits[spec.sandbox_id] = init
        self._relays[spec.sandbox_id] = relay
        try:
            os.write(block_write, b"1")  # the box may run now
        finally:
            os.close(block_write)
        return handle

    async def _kill_unreleased(
        self, handle: LocalHandle, init: int | None, block: int, relay: BridgeRelay
    ) -> None:
        """Kill a box still waiting on its block descriptor. The descriptor is closed (which
        would let the box run) only once the box is dead."""
        try:
            if init is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(init, signal.SIGKILL)
                os.close(init)
            await self._procs.stop(handle)
            await relay.close()
        finally:
            os.close(block)

    async def _stages_overlay(self, user: BoxUser) -> bool:
        """Whether this (ordinary) server stages workspaces as overlays; decided once, by trying
        (:func:`.staging.probe_user_staging`); where it cannot, boxes bind the workspace."""
        if user.switch:
            return False
        if self._overlay is None:
            problem = await asyncio.to_thread(probe_user_staging, self._workspaces_dir)
            if problem is not None:
                logger.warning(
                    "sandbox workspaces are bind mounts, whose host path a box sees in its "
                    "/proc/self/mountinfo: %s",
                    problem,
                )
            self._overlay = problem is None
        return self._overlay

    async def _open_inputs(
        self, spec: SandboxSpec, opened: list[int], *, staged: bool
    ) -> BoxInputs:
        """What :func:`build_argv` hands to bwrap; every descriptor opened goes into ``opened``.
        ``staged``: the workspace is reached at its staged path (:mod:`.staging`)."""
        workspace = str(spec.workspace_dir)
        if staged:
            if self.box_user().switch:
                ensure_stage_dir()
            workspace = STAGED_WORKSPACE
        # Built once per process (compiling takes a while): not on the event loop.
        code = await asyncio.to_thread(runtime_zip, runtime_sources(), self._python)
        runtime = data_fd("openinspect-runtime", code)
        opened.append(runtime)
        # Staged boxes borrow the mirror's objects through a read-only overlay; a box that binds
        # its workspace (which names its host path anyway) gets a bundle, as a mount of the
        # mirror would name the mirror's path too.
        mirror = STAGED_MIRROR if staged and _mirror_objects(spec).is_dir() else None
        bundle = refs = None
        branches = [spec.base_branch, *spec.carry_branches]
        if spec.boot_mode == "repo_image":
            # A repo image's box fetches the newest commits from a bundle of what the image
            # lacks, none when nothing is new (:mod:`openinspect.runtime.boot`).
            bundle = await origin_bundle(
                spec.clone_source, branches, self._scratch, known=spec.known_commits
            )
        elif not (spec.workspace_dir / REPO_DIRNAME / ".git").exists():
            if mirror is not None:
                listed = await origin_refs(spec.clone_source, branches)
                refs = data_fd("openinspect-refs", listed)
                opened.append(refs)
            else:
                bundle = await origin_bundle(spec.clone_source, branches, self._scratch)
        if bundle is not None:
            opened.append(bundle)
        return BoxInputs(workspace, runtime_zip=runtime, bundle=bundle, refs=refs, mirror=mirror)

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
                f"sandbox.bwrap.python must be an interpreter under /usr for bwrap sandboxes, "
                f"got {self._python!r}",
                hint="set OPENINSPECT_SANDBOX__BWRAP__PYTHON=/usr/bin/python3",
            )
        if not spec.clone_source_is_path or not Path(spec.clone_source).is_dir():
            raise SandboxUnavailable(
                f"a bwrap sandbox clones from a local mirror directory, got {spec.clone_source!r}",
                hint="bwrap sandboxes have no network; pass the path of a local bare mirror",
            )
        if not host_bridge_socket(spec).exists():
            raise SandboxUnavailable(
                "the bridge socket does not exist",
                hint="start the control plane's bridge listener before creating sandboxes",
            )
        return bwrap

    async def wait(self, handle: SandboxHandle) -> SandboxExit:
        """See :meth:`SandboxProvider.wait`; the reason comes from the box's cgroup (a limit it
        ran into). Also releases the box's limits, as the box is gone."""
        code = await self._procs.wait(local_handle(handle, self.name))
        if code == UNKNOWN_EXIT.status:
            return UNKNOWN_EXIT
        init = self._inits.pop(handle.sandbox_id, None)
        if init is not None:
            os.close(init)
        reason = self._limits.exit_reason(handle.sandbox_id)
        await self._limits.release(handle.sandbox_id)
        return SandboxExit(code, reason)

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
        await self._procs.stop(local_handle(handle, self.name))
        relay = self._relays.pop(handle.sandbox_id, None)
        if relay is not None:
            await relay.close()
        await self._limits.release(handle.sandbox_id)
