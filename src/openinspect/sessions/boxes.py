"""Making a box: the steps a session's own box and a warm pool's box share.

``BoxMaker.prepare`` refreshes the repo's mirror, reads the repo's secrets, registers the box's
bridge connection (its token, its redactor) and, for a session's box, writes the ``sandboxes``
row that ties the token to the session (the git proxy checks it). ``start`` builds the
:class:`~openinspect.sandboxes.base.SandboxSpec` and creates the box, or restores one, as the
:class:`~openinspect.images.choice.BootSource` says; ``wait_ready`` waits for its boot. A box
made for a pool has no row until a session claims it (``sessions/pool.py``): its token belongs
to no session.

What a box starts from is one value, a :class:`~openinspect.images.choice.BootSource` (a
session's snapshot or a repo's image to restore with its boot mode, or a fresh clone): a session
decides it from its snapshots and its repo's images, a pool from the images.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openinspect.errors import SandboxError
from openinspect.images.choice import FRESH, BootSource
from openinspect.sandboxes.base import (
    SandboxHandle,
    SandboxProvider,
    SandboxSpec,
    SnapshotCapable,
)
from openinspect.sandboxes.bridge import BridgeHub, SandboxConnection
from openinspect.secrets.redact import Redactor, redactor_of
from openinspect.sessions.git import commit_of
from openinspect.sessions.origins import Origins
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.timeouts import wait_for

SHUTDOWN_TIMEOUT_S = 2.0
"""How long a box's runtime gets to shut down cleanly before the provider kills it."""


@dataclass
class Box:
    """A box being made or made: its bridge connection, and what it was made from."""

    sandbox_id: str
    conn: SandboxConnection
    token_hash: str
    workspace_dir: Path
    repo_url: str
    repo_id: str | None
    base_branch: str
    mirror: Path
    secrets: dict[str, str] = field(repr=False)
    base_commit: str | None
    """The base branch's commit in the mirror when the box was made (what it checked out)."""
    token: str = field(repr=False)
    handle: SandboxHandle | None = None
    made_at: float = field(default_factory=time.monotonic)


class BoxMaker:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        origins: Origins,
        hub: BridgeHub,
        provider: SandboxProvider,
    ) -> None:
        self.settings = settings
        self.store = store
        self.origins = origins
        self.hub = hub
        self.provider = provider

    async def prepare(
        self,
        *,
        repo_url: str,
        repo_id: str | None,
        base_branch: str,
        workspace_dir: Path,
        session_id: str | None,
        sandbox_id: str,
        redactor_for: Callable[[dict[str, str]], Redactor] | None = None,
    ) -> Box:
        """Everything before the box exists (see the module docstring). ``redactor_for``
        turns the box's secrets into its connection's redactor (a session tracks them);
        ``session_id`` None: a pool's box, with no ``sandboxes`` row. Raises ``SandboxError``
        for a base branch the repo lacks, ``RepoUnusable`` for a repo git cannot fetch."""
        mirror = await self.origins.mirror(self.settings.mirrors_dir, repo_url)  # under its lock
        base_commit = await commit_of(mirror, f"refs/heads/{base_branch}")
        if base_commit is None:
            raise SandboxError(f"Branch {base_branch!r} not found in {repo_url}")
        box_secrets = await self.store.secrets.values_for(repo_id)
        redactor = (redactor_for or _shared_redactor)(box_secrets)
        token = secrets.token_urlsafe(32)
        token_hash = hashlib.sha256(token.encode()).hexdigest()
        conn = self.hub.register(sandbox_id, token, redactor=redactor)
        if session_id is not None:
            await self.store.sandboxes.create(
                sandbox_id=sandbox_id,
                session_id=session_id,
                provider=self.provider.name,
                token_hash=token_hash,
            )
        workspace_dir.mkdir(parents=True, exist_ok=True)
        return Box(
            sandbox_id=sandbox_id,
            conn=conn,
            token_hash=token_hash,
            workspace_dir=workspace_dir,
            repo_url=repo_url,
            repo_id=repo_id,
            base_branch=base_branch,
            mirror=mirror,
            secrets=box_secrets,
            base_commit=base_commit,
            token=token,
        )

    def spec(self, box: Box, source: BootSource, carry_branches: tuple[str, ...]) -> SandboxSpec:
        """The provider's view of ``box``: no session in it (see ``SandboxSpec``)."""
        sandbox = self.settings.sandbox
        return SandboxSpec(
            sandbox_id=box.sandbox_id,
            workspace_dir=box.workspace_dir,
            clone_source=str(box.mirror),
            clone_source_is_path=True,
            base_branch=box.base_branch,
            carry_branches=carry_branches,
            boot_mode=source.boot_mode,
            known_commits=source.known_commits,
            token=box.token,
            bridge_url=self.settings.bridge_url,
            env=box.secrets,
            setup_timeout_s=sandbox.setup_timeout_s,
            start_timeout_s=sandbox.start_timeout_s,
            heartbeat_s=sandbox.heartbeat_interval_s,
            max_processes=sandbox.max_processes,
            egress=sandbox.egress.enabled,
        )

    async def start(
        self, box: Box, source: BootSource = FRESH, *, carry_branches: tuple[str, ...] = ()
    ) -> SandboxHandle:
        """Create the box (or restore ``source.ref`` into it); returns once its process runs.
        A restore's ``SnapshotCorrupt`` is the caller's to handle."""
        spec = self.spec(box, source, carry_branches)
        if source.ref is not None:
            if not isinstance(self.provider, SnapshotCapable):
                raise SandboxError(f"the {self.provider.name} backend cannot restore snapshots")
            box.handle = await self.provider.restore(source.ref, spec)
        else:
            box.handle = await self.provider.create(spec)
        return box.handle

    async def wait_ready(self, box: Box) -> None:
        """Wait for the box's boot (``SandboxConnection.wait_ready``'s errors)."""
        await box.conn.wait_ready(self.settings.sandbox.boot_timeout_s)

    async def destroy(self, box: Box) -> None:
        """Stop the box and forget its connection; idempotent."""
        handle, box.handle = box.handle, None
        if handle is not None:
            with contextlib.suppress(SandboxError):
                await wait_for(box.conn.shutdown(), SHUTDOWN_TIMEOUT_S)
            await self.provider.destroy(handle)
        self.hub.unregister(box.sandbox_id)


def _shared_redactor(box_secrets: dict[str, str]) -> Redactor:
    return redactor_of(box_secrets.items())
