"""The sandbox seam: what a backend must do to run a sandbox, and nothing more.

A provider only starts the in-sandbox runtime (``python3 -m openinspect.runtime``) next to a
workspace, with the environment documented in :mod:`openinspect.runtime.supervisor`. The runtime
then dials the control plane's bridge; everything else (boot progress, commands, files) goes over
the bridge (:mod:`openinspect.sandboxes.bridge`), never through the provider.

Making a box is separate from giving it to a session: :class:`SandboxSpec` says what box to make
(repo, base branch, limits, boot mode) and names no session; :class:`SessionBinding` is what the
box learns over the bridge once it has booted (``SandboxConnection.bind``), so boxes can be made
ahead of time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from openinspect.runtime.protocol import BootMode
from openinspect.settings import SandboxSettings, Settings

DEFAULT_SETUP_TIMEOUT_S = 300.0
DEFAULT_START_TIMEOUT_S = 120.0
DEFAULT_HEARTBEAT_S = 30.0
DEFAULT_MAX_PROCESSES = 4096


@dataclass(frozen=True)
class SandboxSpec:
    """Everything a provider needs to start one sandbox.

    ``workspace_dir`` is a host directory the provider creates (mode 0700) and the only one the
    sandbox may write; the repo is cloned into ``workspace_dir / "repo"`` unless it is already
    there (a restarted sandbox reuses it). ``clone_source`` is a local bare mirror when
    ``clone_source_is_path`` (isolating providers require that: they have no network), else a
    URL. ``env`` is the dev environment's extra variables (repo secrets the user configured);
    it never holds control-plane credentials. ``token`` authenticates the runtime on the bridge.
    ``bridge_url`` is where the bridge is, as the host sees it (:mod:`openinspect.runtime.address`:
    ``unix:///…/bridge.sock`` on this host, ``wss://…/sandbox/bridge`` for a remote box); a
    provider passes it on, or (a box that sees the host's socket elsewhere) translates it.
    """

    sandbox_id: str
    workspace_dir: Path
    clone_source: str
    clone_source_is_path: bool
    base_branch: str
    token: str = field(repr=False)
    bridge_url: str
    boot_mode: BootMode = "fresh"
    env: dict[str, str] = field(default_factory=dict, repr=False)
    setup_timeout_s: float = DEFAULT_SETUP_TIMEOUT_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    max_processes: int = DEFAULT_MAX_PROCESSES
    egress: bool = False
    """The box reaches the network through the control plane's egress proxy (its runtime runs
    the forwarder and sets ``HTTP_PROXY``); otherwise it has none."""
    carry_branches: tuple[str, ...] = ()
    """Branches besides the base one that the box's clone must hold: a box without network
    cannot fetch later, so a session's existing work branch is named here to be tracked at
    bind. Branches the clone source lacks are skipped."""
    known_commits: tuple[str, ...] = ()
    """Commits the box's restored checkout already has (a repo image's, for ``repo_image``): a
    provider that hands the box a copy of the repo may leave out what they hold."""

    def runtime_env(self, *, bridge_url: str, workspace: str, clone_source: str) -> dict[str, str]:
        """The ``OPENINSPECT_*`` variables of the runtime, with the bridge and paths as the
        sandbox sees them."""
        return {
            "OPENINSPECT_BRIDGE_URL": bridge_url,
            "OPENINSPECT_SANDBOX_ID": self.sandbox_id,
            "OPENINSPECT_SANDBOX_TOKEN": self.token,
            "OPENINSPECT_BOOT_MODE": self.boot_mode,
            "OPENINSPECT_WORKSPACE": workspace,
            "OPENINSPECT_CLONE_SOURCE": clone_source,
            "OPENINSPECT_BASE_BRANCH": self.base_branch,
            "OPENINSPECT_SETUP_TIMEOUT_S": f"{self.setup_timeout_s:g}",
            "OPENINSPECT_START_TIMEOUT_S": f"{self.start_timeout_s:g}",
            "OPENINSPECT_HEARTBEAT_S": f"{self.heartbeat_s:g}",
            "OPENINSPECT_MAX_PROCESSES": str(self.max_processes),
            "OPENINSPECT_EGRESS": "1" if self.egress else "0",
        }


@dataclass(frozen=True)
class SessionBinding:
    """What makes a box a session's: sent to a booted box with ``SandboxConnection.bind``.

    ``work_branch`` is checked out (tracking ``origin/<work_branch>`` when the clone has it);
    ``git_remote_path`` (``/git/<session>/<owner>/<repo>.git``) points ``origin`` at the git
    proxy through the box's loopback forwarder, None leaves ``origin`` as cloned. The box's
    token belongs to ``session_id`` once the store records it (the git proxy checks that).
    """

    session_id: str
    work_branch: str
    git_remote_path: str | None = None


@dataclass(frozen=True)
class BackendContext:
    """What a backend gets besides its own settings section (``sandbox.<name>``): the limits
    and timeouts every backend applies, and where this server keeps its files. Backends never
    see the whole :class:`~openinspect.settings.Settings` (model keys, auth, the database)."""

    sandbox: SandboxSettings
    home_dir: Path
    run_dir: Path
    """Sockets and other per-boot files."""
    workspaces_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> BackendContext:
        return cls(settings.sandbox, settings.home_dir, settings.run_dir, settings.workspaces_dir)


@dataclass
class SandboxHandle:
    """A box as its callers know it: an id and the backend that made it, nothing more.

    The control plane (sessions, API, git proxy) holds handles but never reaches into them: a
    backend subclasses this with what it needs to find the box again (a host pid, a remote
    box's name) and keeps those details to itself. What callers need to learn about a box goes
    through the provider (``wait`` says how it ended) or the bridge (files, commands, logs).
    """

    sandbox_id: str
    provider: str


@dataclass(frozen=True)
class SandboxExit:
    """How a box ended: ``status`` is its process's exit status (negative: the signal that
    ended it; -1 for a box the provider does not know or already destroyed), ``reason`` a limit
    it ran into when the provider knows, such as "out of memory (limit 512 MiB)"."""

    status: int
    reason: str | None = None


@dataclass(frozen=True)
class SnapshotRef:
    """A provider's snapshot, as the store keeps it (``store/snapshots.py``).

    ``key`` is the provider's own name for it (an archive's file name for ``bwrap``; an image
    or volume id for a remote backend), read only by the provider that made it. ``sha256`` is
    the digest of its content as written, checked before a restore uses it (empty for a
    provider whose backend verifies its own snapshots); ``size_bytes`` what it costs to keep.
    """

    provider: str
    key: str
    sha256: str
    size_bytes: int


@runtime_checkable
class SandboxProvider(Protocol):
    """A sandbox backend. Implementations live one per module and are found by the registry.

    ``name`` is the registry name; ``isolates`` tells whether a sandbox is kept from the host
    (its files, network and processes). A provider never raises anything but
    :class:`~openinspect.errors.SandboxError` subclasses and
    :class:`~openinspect.errors.ConfigError` out of these methods. Optional capabilities are
    protocols of their own (:class:`SnapshotCapable`): callers check with ``isinstance``.
    """

    name: str
    isolates: bool

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        """Create ``spec.workspace_dir`` and start the runtime in a new sandbox.

        Returns as soon as the process runs; it does not wait for the runtime to dial the bridge
        or to boot (use ``SandboxConnection.wait_ready`` for that). Raises ``SandboxUnavailable``
        when the sandbox cannot be started (with what to do about it) and ``ConfigError`` for a
        bad setting.
        """
        ...

    async def wait(self, handle: SandboxHandle) -> SandboxExit:
        """Wait until the sandbox process exits and say how it ended.

        The session engine awaits this to learn that a sandbox died (and then calls
        ``SandboxConnection.mark_lost``). Returns at once (status -1) for a destroyed or unknown
        sandbox.
        """
        ...

    async def destroy(self, handle: SandboxHandle) -> None:
        """Stop the sandbox and every process in it: SIGTERM, at most ~3 s of grace, SIGKILL.

        Idempotent; never raises for a sandbox that is already gone. The workspace directory is
        left in place (a restarted session reuses it); the caller deletes it when it is done.
        """
        ...


@runtime_checkable
class SnapshotCapable(Protocol):
    """A provider that can capture a box and start another from the capture (``bwrap`` can).
    Callers check ``isinstance(provider, SnapshotCapable)`` first.

    What a snapshot holds is the box's workspace: the repo with its uncommitted files, and
    ``HOME`` (``<workspace>/.home``, so ``pip install --user``) and anything else written
    there (a venv in the repo). Processes, ``/tmp`` and memory are not kept: a restored box
    boots again (``start.sh``, not ``setup.sh``).
    """

    async def snapshot(self, handle: SandboxHandle) -> SnapshotRef:
        """Capture the workspace of a running box. The caller starts nothing in the box
        meanwhile. Raises ``SnapshotFailed`` (too big, unreadable) or another ``SandboxError``."""
        ...

    async def restore(self, ref: SnapshotRef, spec: SandboxSpec) -> SandboxHandle:
        """Start a box whose workspace is ``ref``'s (``spec.boot_mode`` is
        ``snapshot_restore``), as ``create`` does. Raises ``SnapshotCorrupt`` (missing, digest
        mismatch, refused content) before anything starts, leaving the workspace as it was:
        a caller never answers that with a fresh checkout."""
        ...

    async def discard_snapshot(self, ref: SnapshotRef) -> None:
        """Delete ``ref``'s data; idempotent (a snapshot already gone is fine)."""
        ...
