"""Build one repo image: boot a box in ``build`` mode, capture its workspace, destroy it.

A build box serves no session. It is registered on the bridge hub like any box (its runtime
must dial in) but has no row in ``sandboxes``, so the git proxy, which maps a box's token to
its session through that table, gives it nothing; the egress proxy finds its repo through the
running build (``store/egress.py``) and gives it that repo's allow-list, with no session to
announce a refusal in. Its environment holds the repo's secrets, as a session's box would, and
everything it sends is redacted of them; its boot log (the end of it) is kept with the build.

Errors are recorded on the build, never raised: a build that fails is a ``failed`` row with
what failed, without the server's paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections import deque
from dataclasses import asdict
from pathlib import Path

from openinspect.domain.ids import new_id
from openinspect.errors import ImagesUnsupported, OpenInspectError, SandboxError
from openinspect.runtime.protocol import RuntimeEvent
from openinspect.sandboxes.base import (
    SandboxHandle,
    SandboxProvider,
    SandboxSpec,
    SnapshotCapable,
    SnapshotRef,
)
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.secrets.redact import redactor_of
from openinspect.sessions.git import commit_of
from openinspect.sessions.origins import Origins, scrub_paths
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.images import LOG_MAX_BYTES, ImageBuild, ImageRepo
from openinspect.store.snapshots import SnapshotData
from openinspect.timeouts import wait_for

log = logging.getLogger(__name__)
BUILD_WORKSPACE_PREFIX = "image-"
"""Build boxes' workspaces are ``<workspaces>/image-<build id>``, deleted after the build."""
WORKSPACE_SIDE_FILES = (".log", ".img", ".snapshot")
"""What a provider may leave beside a workspace (its log, image and snapshot marker)."""


def require_images(provider: SandboxProvider) -> SnapshotCapable:
    """The provider as one that can keep images; ``ImagesUnsupported`` when it cannot."""
    if not isinstance(provider, SnapshotCapable):
        raise ImagesUnsupported(
            f"The {provider.name!r} sandbox backend keeps no snapshots, so it cannot have repo "
            "images",
            hint="Use a backend that keeps snapshots (sandbox.provider bwrap)",
        )
    return provider


class _BuildLog:
    """The end of a build box's boot log: its last :data:`LOG_MAX_BYTES`, line by line."""

    def __init__(self) -> None:
        self._lines: deque[str] = deque()
        self._bytes = 0

    def add(self, line: str) -> None:
        self._lines.append(line)
        self._bytes += len(line.encode()) + 1
        while self._bytes > LOG_MAX_BYTES and len(self._lines) > 1:
            self._bytes -= len(self._lines.popleft().encode()) + 1

    def text(self) -> str:
        return "\n".join(self._lines)


class ImageBuilder:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        origins: Origins,
        hub: BridgeHub,
        provider: SandboxProvider,
    ) -> None:
        self._settings = settings
        self._store = store
        self._origins = origins
        self._hub = hub
        self._provider = provider

    async def build(self, build: ImageBuild, repo: ImageRepo) -> ImageBuild | None:
        """Run the queued ``build`` of ``repo``'s image to its end; returns the finished build
        (None when another pass had started it)."""
        output = _BuildLog()
        sandbox_id = new_id("sbx")
        workspace = self._settings.workspaces_dir / f"{BUILD_WORKSPACE_PREFIX}{build.id}"
        data: SnapshotData | None = None
        error: str | None = None
        try:
            provider = require_images(self._provider)
            mirror = await self._origins.mirror(self._settings.mirrors_dir, repo.url)
            sha = await commit_of(mirror, f"refs/heads/{build.base_branch}")
            if sha is None:
                raise SandboxError(f"Branch {build.base_branch!r} not found in {repo.name}")
            if not await self._store.images.start(build.id, sandbox_id=sandbox_id, commit_sha=sha):
                return None
            output.add(f"[openinspect] building {repo.name} at {build.base_branch} {sha[:12]}")
            ref = await self._boot_and_capture(
                provider, build, repo, sandbox_id, mirror, workspace, output
            )
            data = SnapshotData(**asdict(ref))
        except OpenInspectError as exc:
            # Members read the build: no server path, nor a local repo's (they see its name).
            error = scrub_paths(
                exc.message.replace(repo.url, repo.name),
                self._settings.workspaces_dir,
                self._settings.home_dir,
            )
            output.add(f"[openinspect] the build failed: {error}")
            log.warning("image build %s of %s failed: %s", build.id, repo.name, exc)
        finally:
            await _remove_workspace(workspace)
        dropped = await self._store.images.finish(
            build.id,
            data=data,
            error=error,
            log=output.text(),
            keep=self._settings.sandbox.images.kept,
        )
        for old in dropped:
            with contextlib.suppress(SandboxError):
                await require_images(self._provider).discard_snapshot(SnapshotRef(**asdict(old)))
        return await self._store.images.get(build.repo_id, build.id)

    async def _boot_and_capture(
        self,
        provider: SnapshotCapable,
        build: ImageBuild,
        repo: ImageRepo,
        sandbox_id: str,
        mirror: Path,
        workspace: Path,
        output: _BuildLog,
    ) -> SnapshotRef:
        settings = self._settings
        box_secrets = await self._store.secrets.values_for(repo.repo_id)
        token = secrets.token_urlsafe(32)
        conn = self._hub.register(sandbox_id, token, redactor=redactor_of(box_secrets.items()))

        async def on_message(message: RuntimeEvent) -> None:
            if message["type"] == "log":
                output.add(f"[{message['source']}] {message['line']}")
            elif message["type"] == "boot" and message.get("message"):
                output.add(f"[boot] {message['phase']}: {message.get('message')}")

        async def on_limit(code: str, message: str) -> None:
            output.add(f"[openinspect] {message}")

        conn.on_message = on_message
        conn.on_limit = on_limit
        spec = SandboxSpec(
            sandbox_id=sandbox_id,
            workspace_dir=workspace,
            clone_source=str(mirror),
            clone_source_is_path=True,
            base_branch=build.base_branch,
            boot_mode="build",
            token=token,
            bridge_url=settings.bridge_url,
            env=box_secrets,
            setup_timeout_s=settings.sandbox.setup_timeout_s,
            start_timeout_s=settings.sandbox.start_timeout_s,
            heartbeat_s=settings.sandbox.heartbeat_interval_s,
            max_processes=settings.sandbox.max_processes,
            egress=settings.sandbox.egress.enabled,
        )
        handle: SandboxHandle | None = None
        try:
            handle = await self._provider.create(spec)
            await conn.wait_ready(settings.sandbox.boot_timeout_s)
            return await provider.snapshot(handle)
        finally:
            with contextlib.suppress(SandboxError):
                await wait_for(conn.shutdown(), 2)
            if handle is not None:
                await self._provider.destroy(handle)
            self._hub.unregister(sandbox_id)


async def _remove_workspace(workspace: Path) -> None:
    """Delete a build box's workspace and what its provider left beside it."""

    def remove() -> None:
        shutil.rmtree(workspace, ignore_errors=True)
        for suffix in WORKSPACE_SIDE_FILES:
            with contextlib.suppress(OSError):
                workspace.with_name(workspace.name + suffix).unlink()

    await asyncio.to_thread(remove)
