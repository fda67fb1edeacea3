"""One session's sandbox: start it (in the background, so inference never waits for it), report
its boot as events, bind it to the session, hand the ready connection to tools, tear it down.

A box is made knowing no session (:class:`~openinspect.sandboxes.base.SandboxSpec`) and bound
once it has booted (:class:`~openinspect.sandboxes.base.SessionBinding`), so a session with no
snapshot to restore may claim a box of its repo's warm pool (``sessions/pool.py``), made ahead
of time the same way (``sessions/boxes.py``).

Status flow: ``none → warming → booting → ready`` and ``failed`` or ``lost``. A failed boot is
reported once; the next prompt (or ``typing``) tries again.

Snapshots (providers that can, :class:`~openinspect.sandboxes.base.SnapshotCapable`): the actor
asks for one after each prompt and before an idle box stops (``snapshot``), while it starts
nothing in the box; the store keeps the newest ones (``store/snapshots.py``, so any replica
finds them). A session's next box restores the newest (boot mode ``snapshot_restore``). A restore
that fails is the box's ``failed`` status with the reason and a ``snapshot_corrupt`` error event:
never a fresh checkout in its place, which would drop the work the snapshot holds.

Repo images (:mod:`openinspect.images`): a session's first box, with no snapshot (and no pooled
box to claim), starts from its repo's newest image when the repo has one (boot mode
``repo_image``: no ``setup.sh``, the newest commits fetched, ``start.sh``), which its ``ready``
status names. An image that cannot be restored is marked bad, an ``image_corrupt`` warning names
it, and the box starts fresh: an image holds no one's work. Pooled boxes are made from the
newest image too.

A box's environment holds the repo secrets of the session's repo and the global ones (the repo's
win), read when it starts: a secret changed later reaches the next box. Their values are tracked
(``secrets.redact.SecretRedaction``) and the box's bridge connection redacts everything it
sends; the sandbox log names the secrets, never their values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path

from openinspect.domain.events import (
    ErrorEvent,
    Event,
    SandboxLog,
    SandboxStatusChanged,
    WarningEvent,
)
from openinspect.domain.ids import new_id
from openinspect.domain.models import SandboxStatus, Session
from openinspect.errors import (
    OpenInspectError,
    SandboxAtCapacity,
    SandboxBootFailed,
    SandboxError,
    SandboxLost,
    SnapshotCorrupt,
)
from openinspect.images.choice import FRESH, BootSource, from_snapshot, repo_image
from openinspect.runtime.protocol import RuntimeEvent
from openinspect.sandboxes.base import (
    SandboxHandle,
    SandboxProvider,
    SessionBinding,
    SnapshotCapable,
    SnapshotRef,
)
from openinspect.sandboxes.bridge import BridgeHub, SandboxConnection
from openinspect.sandboxes.local import move_workspace, remove_workspace
from openinspect.secrets.redact import Redactor, SecretRedaction, redactor_of
from openinspect.sessions.boxes import Box, BoxMaker
from openinspect.sessions.git import branch_in_mirror, commit_of, mirror_path
from openinspect.sessions.origins import Origins
from openinspect.sessions.pool import WarmPool
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.changes import Change, NewSandbox, SandboxMove
from openinspect.store.snapshots import SnapshotData, SnapshotReason, SnapshotRecord
from openinspect.timeouts import wait_for

log = logging.getLogger(__name__)
Emit = Callable[[Event], Awaitable[Event]]
Commit = Callable[[Change], Awaitable[Event | None]]
RUNTIME_WARNING_PREFIX = "[openinspect] warning:"
LIVE_STATUSES = ("warming", "booting", "ready", "snapshotting")
REPLACED_NOTE = (
    "[openinspect] Your sandbox was replaced: the box of the earlier prompts is gone and this "
    "one {how}. Files in the workspace (the repo with its uncommitted changes, your home "
    "directory, virtualenvs) are as they were after the last prompt; running processes, /tmp "
    "and anything started since are not. .openinspect/start.sh ran again."
)
REUSED_NOTE = (
    "[openinspect] Your sandbox was replaced: the box of the earlier prompts is gone and this "
    "one was started on the workspace it left (this backend keeps no snapshots). Files there "
    "are as that box left them; running processes and /tmp are not kept. "
    ".openinspect/start.sh ran again."
)
POOLED_MESSAGE = "a ready box from the warm pool"
CATCH_UP_TIMEOUT_S = 120.0
MIRROR_FRESH_S = 5.0
"""A mirror fetched this recently is taken as the origin's state when a pooled box is claimed."""
MAX_GIT_OUTPUT_CHARS = 300
RESTORE_HINT = (
    "The snapshot holds the work since the last push; nothing was started in its place. "
    "Start a new session from the session's branch to continue from the pushed commits"
)


class SessionSandbox:
    def __init__(
        self,
        session: Session,
        *,
        settings: Settings,
        store: Store,
        origins: Origins,
        hub: BridgeHub,
        provider: SandboxProvider,
        emit: Emit,
        commit: Commit,
        redaction: SecretRedaction | None = None,
        pool: WarmPool | None = None,
        maker: BoxMaker | None = None,
    ) -> None:
        """``pool``: the warm pool a fresh box is claimed from (None: none); ``maker``: how
        boxes are made (one shared by the sessions and the pool; made here when None)."""
        self._session = session
        self._pool = pool
        self._maker = maker or BoxMaker(
            settings=settings, store=store, origins=origins, hub=hub, provider=provider
        )
        self._box: Box | None = None
        self._claimed_workspace: Path | None = None
        self._redaction = redaction
        self._settings = settings
        self._store = store
        self._origins = origins
        self._hub = hub
        self._provider = provider
        self._emit = emit
        self._commit = commit
        self._boot: asyncio.Task[SandboxConnection] | None = None
        self._handle: SandboxHandle | None = None
        self._conn: SandboxConnection | None = None
        self._sandbox_id: str | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._setup_warned = False
        self._restored: SnapshotRecord | None = None
        self._image_message: str | None = None
        self._replacement_told = False
        self._snapshot_warned = False
        self.status: SandboxStatus = "none"
        self._wakes: set[asyncio.Task[None]] = set()

    @property
    def workspace_dir(self) -> Path:
        return self._settings.workspaces_dir / self._session.id

    def warm(self) -> None:
        """Start booting unless a boot was already started (it may be running, have succeeded,
        or have failed: a failure stands until ``reset_failure``). Returns at once. A ready
        box is woken, in case it hibernated (:mod:`openinspect.runtime.hibernate`): called
        when a prompt starts or someone types, so that the wake overlaps the model's work."""
        if self._boot is not None:
            if self._conn is not None and self.status == "ready":
                self._wake(self._conn)
            return
        self._start_boot()

    def _start_boot(self) -> None:
        if self._boot is None:
            self._boot = asyncio.create_task(self._start(), name=f"boot {self._session.id}")
            self._boot.add_done_callback(_consume_exception)

    def _wake(self, conn: SandboxConnection) -> None:
        task = asyncio.create_task(conn.wake(), name=f"wake {self._session.id}")
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    def reset_failure(self) -> None:
        """Allow a new boot if the last one failed or its sandbox is gone (called when a new
        prompt starts, or someone types)."""
        if self._boot is not None and self._boot.done() and self.status != "ready":
            self._boot = None

    async def ready(self) -> SandboxConnection:
        """The connection once the sandbox is ready. Raises ``SandboxError`` if it cannot be.
        (No wake: a request wakes a hibernated box by itself.)"""
        self._start_boot()
        assert self._boot is not None
        conn = await asyncio.shield(self._boot)
        if self.status != "ready":
            raise SandboxLost(f"The sandbox is {self.status}", hint="Send another prompt to retry")
        return conn

    def connection_if_ready(self) -> SandboxConnection | None:
        return self._conn if self.status == "ready" else None

    async def _set_status(self, status: SandboxStatus, message: str | None = None) -> None:
        """The box's status here, then the session's and the sandbox record's copies with the
        ``sandbox-status`` event, in one transaction."""
        self.status = status
        await self._commit(
            Change(
                SandboxStatusChanged(session_id=self._session.id, status=status, message=message),
                session={"sandbox_status": status},
                sandbox=SandboxMove(self._sandbox_id, status) if self._sandbox_id else None,
            )
        )

    async def _start(self) -> SandboxConnection:
        await self._set_status("warming")
        try:
            return await self._boot_sandbox()
        except asyncio.CancelledError:
            await self._teardown()
            raise
        except SnapshotCorrupt as exc:
            await self._teardown()
            message = f"The session's snapshot could not be restored: {exc.message}"
            await self._emit(
                ErrorEvent(
                    session_id=self._session.id, code=exc.code, message=message, hint=RESTORE_HINT
                )
            )
            await self._set_status("failed", message)
            raise SandboxBootFailed(message, hint=RESTORE_HINT) from exc
        except OpenInspectError as exc:
            await self._teardown()
            await self._set_status("failed", str(exc))
            raise SandboxBootFailed(
                f"The sandbox could not start: {exc.message}", hint=exc.hint
            ) from exc

    async def _boot_sandbox(self) -> SandboxConnection:
        source = await self._boot_source()
        # No snapshot of the session's to restore: a pooled box is as good as a fresh one (or
        # one from the repo's image), and ready now.
        if source.snapshot is None and self._pool is not None and self._pool.enabled:
            conn = await self._claim_pooled()
            if conn is not None:
                return conn
        return await self._boot_new(source)

    async def _boot_source(self) -> BootSource:
        """What the box starts from: the session's newest snapshot, else (a workspace that
        never had a box) its repo's newest image, else a fresh clone (:mod:`openinspect.images`).
        One call: every source of a box's state is decided here."""
        snapshot = await self._newest_snapshot()
        if snapshot is not None:
            return from_snapshot(snapshot)
        if self._had_box() or (self.workspace_dir / "repo" / ".git").exists():
            return FRESH
        image = await repo_image(
            self._store, self._provider, self._session.repo_id, self._session.base_branch
        )
        return image or FRESH

    def _redactor_for(self, box_secrets: dict[str, str]) -> Redactor:
        if self._redaction is not None:
            return self._redaction.track(self._session.id, box_secrets)
        return redactor_of(box_secrets.items())

    def _hold(self, box: Box) -> SandboxConnection:
        """Make ``box`` this session's current one: its messages are the session's."""
        conn = box.conn
        conn.on_message = self._on_message
        conn.on_limit = self._on_limit
        self._setup_warned = False
        self._sandbox_id, self._conn, self._box = box.sandbox_id, conn, box
        return conn

    async def _boot_new(self, source: BootSource) -> SandboxConnection:
        session = self._session
        self._sandbox_id = new_id("sbx")  # before anything: a teardown unregisters it
        box = await self._maker.prepare(
            repo_url=session.repo_url,
            repo_id=session.repo_id,
            base_branch=session.base_branch,
            workspace_dir=self.workspace_dir,
            session_id=session.id,
            sandbox_id=self._sandbox_id,
            redactor_for=self._redactor_for,
        )
        conn = self._hold(box)
        self._restored, self._snapshot_warned = source.snapshot, False
        self._handle = await self._make_box(box, source)
        self._watcher = asyncio.create_task(self._watch_exit(self._handle, conn))
        await self._set_status("booting")
        await self._log_secrets(box)
        await self._maker.wait_ready(box)
        # Made, then bound: the box learns its session only now (the store row above already
        # ties its token to the session, for the git proxy).
        await conn.bind(self._binding())
        await self._set_status("ready", self._restored_message() or self._image_message)
        return conn

    async def _make_box(self, box: Box, source: BootSource) -> SandboxHandle:
        """Create the box, or restore it from ``source``. A snapshot that cannot be restored
        raises (``SnapshotCorrupt``: never a fresh checkout in its place); an image that cannot
        is marked bad, said in a warning, and the box is made fresh instead (it held no work)."""
        self._image_message = None
        try:
            handle = await self._start_box(box, source)
        except SnapshotCorrupt as exc:
            if source.image is None:
                raise
            await self._store.images.mark_bad(source.image.id, exc.message)
            await self._emit(
                WarningEvent(
                    session_id=self._session.id,
                    code="image_corrupt",
                    message=f"The repo image {source.image.id} could not be used "
                    f"({exc.message}); it is marked bad and this box starts from a fresh clone.",
                )
            )
            return await self._start_box(box, FRESH)
        self._image_message = source.describe_image()
        if self._image_message is not None:
            await self._emit(
                SandboxLog(
                    session_id=self._session.id, source="openinspect", line=self._image_message
                )
            )
        return handle

    async def _start_box(self, box: Box, source: BootSource) -> SandboxHandle:
        carry = (self._session.branch,)  # a follow-up session continues its pushed branch
        try:
            return await self._maker.start(box, source, carry_branches=carry)
        except SandboxAtCapacity:
            # A session's box goes before a pool's: one pooled box makes room, once.
            if self._pool is None or not await self._pool.make_room():
                raise
            return await self._maker.start(box, source, carry_branches=carry)

    def _binding(self) -> SessionBinding:
        session = self._session
        return SessionBinding(
            session_id=session.id,
            work_branch=session.branch,
            git_remote_path=self._origins.proxy_path(session.id, session.repo_url),
        )

    async def _log_secrets(self, box: Box) -> None:
        if box.secrets:
            names = ", ".join(sorted(box.secrets))
            line = f"secrets given to the box as environment variables: {names}"
            await self._emit(
                SandboxLog(session_id=self._session.id, source="openinspect", line=line)
            )

    async def _claim_pooled(self) -> SandboxConnection | None:
        """Take a ready box of the warm pool and bind it, or None (none fits, or it could not
        be used: then the caller boots a box of its own, as without a pool).

        A pooled box fits a session on the repo's pooled base branch whose work branch is not
        on the origin yet (the box's clone holds the base branch only) and whose repo's
        secrets are still the ones the box was given. Its row is written with the session's
        first ``sandbox-status`` event, in one transaction; after ``bind`` it fetches the base
        branch through the git proxy when the origin moved since the box was made."""
        session, pool = self._session, self._pool
        assert pool is not None
        if session.repo_id is None or not pool.ready(session.repo_id):
            return None
        # The mirror as the session's creation refreshed it (fetched again below, meanwhile).
        mirror = mirror_path(self._settings.mirrors_dir, session.repo_url)
        if await branch_in_mirror(mirror, session.branch):
            return None  # the work branch exists: a box that carries it is made instead
        box = pool.claim(session.repo_id, session.base_branch)
        if box is None:
            return None
        if await self._store.secrets.values_for(session.repo_id) != box.secrets:
            log.info("session %s: pooled box %s has outdated secrets", session.id, box.sandbox_id)
            await pool.discard(box)
            return None
        started = time.monotonic()
        conn = self._hold(box)
        conn.redactor = self._redactor_for(box.secrets)
        self._handle, self._restored, self._snapshot_warned = box.handle, None, False
        assert box.handle is not None
        self._watcher = asyncio.create_task(self._watch_exit(box.handle, conn))
        self.status = "booting"
        # The claim's three steps at once: the box binds (which needs neither the row nor the
        # origin), the mirror is fetched (the origin may have moved since the box was made),
        # and the row and the event are written; then the box catches up if the base moved.
        bound = asyncio.create_task(conn.bind(self._binding()))
        refreshed = asyncio.create_task(self._fresh_mirror(mirror))
        try:
            await self._commit(
                Change(
                    SandboxStatusChanged(
                        session_id=session.id, status="booting", message=POOLED_MESSAGE
                    ),
                    session={"sandbox_status": "booting"},
                    sandbox=SandboxMove(
                        box.sandbox_id,
                        "booting",
                        new=NewSandbox(session.id, self._provider.name, box.token_hash),
                    ),
                )
            )
            await self._log_secrets(box)
        finally:
            await asyncio.wait([bound, refreshed])
        try:
            bound.result()
            base = await commit_of(refreshed.result(), f"refs/heads/{session.base_branch}")
            if base is not None and base != box.base_commit:
                await self._catch_up(conn)
        except OpenInspectError as exc:
            log.warning("session %s: pooled box %s unusable: %s", session.id, box.sandbox_id, exc)
            await self._teardown()
            await self._store.sandboxes.set_status(box.sandbox_id, "failed")
            await asyncio.to_thread(remove_workspace, box.workspace_dir)
            return None
        self._claimed_workspace = box.workspace_dir
        await self._set_status("ready", POOLED_MESSAGE)
        log.info(
            "session %s: pooled box %s bound in %d ms",
            session.id,
            box.sandbox_id,
            (time.monotonic() - started) * 1000,
        )
        return conn

    async def _fresh_mirror(self, mirror: Path) -> Path:
        """The repo's mirror, fetched unless a fetch ended within :data:`MIRROR_FRESH_S` (the
        session's creation fetched it, typically milliseconds before its first prompt)."""
        try:
            age_s = time.time() - (mirror / "FETCH_HEAD").stat().st_mtime
        except OSError:
            age_s = MIRROR_FRESH_S
        if 0 <= age_s < MIRROR_FRESH_S:
            return mirror
        return await self._origins.mirror(self._settings.mirrors_dir, self._session.repo_url)

    async def _catch_up(self, conn: SandboxConnection) -> None:
        """Bring a pooled box's checkout to the base branch's newest commit, through the git
        proxy (the box has no other way out); the work branch was just made from the old one,
        so this is a fast-forward. Raises ``SandboxError`` when git fails."""
        base = shlex.quote(self._session.base_branch)
        command = (
            f"git fetch --quiet origin +refs/heads/{base}:refs/remotes/origin/{base} "
            f"&& git merge --ff-only --quiet refs/remotes/origin/{base}"
        )
        result = await conn.exec(command, timeout_s=CATCH_UP_TIMEOUT_S)
        if result.exit_code != 0:
            raise SandboxError(
                f"the pooled box could not fast-forward to {self._session.base_branch!r} "
                f"(exit {result.exit_code}): {result.stderr.strip()[-MAX_GIT_OUTPUT_CHARS:]}"
            )

    def _restored_message(self) -> str | None:
        restored = self._restored
        if restored is None:
            return None
        when = restored.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        after = "the prompt" if restored.reason == "prompt" else "the box went idle"
        return f"restored from the snapshot taken {when}, after {after}"

    @property
    def snapshots_enabled(self) -> bool:
        """Whether this session's boxes are snapshotted (the setting, and a provider that can)."""
        return self._settings.sandbox.snapshots and isinstance(self._provider, SnapshotCapable)

    async def _newest_snapshot(self) -> SnapshotRecord | None:
        """The snapshot the next box restores: the newest, when this provider can restore."""
        if not self._settings.sandbox.snapshots or not isinstance(self._provider, SnapshotCapable):
            return None
        return await self._store.snapshots.newest(self._session.id)

    async def replacement_note(self) -> str | None:
        """What the agent is told at the start of a prompt when its box was (or is about to
        be) replaced by one restored from a snapshot; None when it keeps its box. Told once a
        box."""
        if self._replacement_told:
            return None
        if self.status in LIVE_STATUSES and self._handle is not None:  # the box is made
            if self._restored is None:
                return None
            how = "was restored from the snapshot of the workspace"
        elif await self._newest_snapshot() is not None:  # none yet, or one looking for it
            how = "is being restored from the snapshot of the workspace"
        elif self._had_box():
            self._replacement_told = True
            return REUSED_NOTE
        else:
            return None
        self._replacement_told = True
        return REPLACED_NOTE.format(how=how)

    def _had_box(self) -> bool:
        """Whether the session had a box before the one to come (here, or on the replica that
        owned it before: the session's stored status)."""
        return self.status in ("stopped", "lost") or self._session.sandbox_status in (
            "ready",
            "snapshotting",
            "stopped",
            "lost",
        )

    async def snapshot(self, reason: SnapshotReason) -> bool:
        """Capture the ready box's workspace and record it as the session's newest snapshot.
        The caller starts nothing in the box meanwhile. Returns whether one was taken; a
        failure is a ``snapshot_failed`` warning (once a box), not an exception."""
        handle = self._handle
        provider = self._provider
        if (
            not self._settings.sandbox.snapshots
            or not isinstance(provider, SnapshotCapable)
            or self.status != "ready"
            or handle is None
        ):
            return False
        self.status = "snapshotting"  # connection_if_ready() hands the box to no one meanwhile
        started = time.monotonic()
        try:
            ref = await provider.snapshot(handle)
        except SandboxError as exc:
            log.warning("session %s: snapshot failed: %s", self._session.id, exc)
            if not self._snapshot_warned:
                self._snapshot_warned = True
                await self._emit(
                    WarningEvent(
                        session_id=self._session.id,
                        code=exc.code,
                        message=f"The sandbox could not be snapshotted: {exc.message}. If the "
                        "box is lost, its next one restores the previous snapshot.",
                    )
                )
            return False
        finally:
            if self.status == "snapshotting":
                self.status = "ready"
        _, dropped = await self._store.snapshots.add(
            self._session.id,
            handle.sandbox_id,
            SnapshotData(**asdict(ref)),
            reason,
            keep=self._settings.sandbox.snapshots_kept,
        )
        for old in dropped:
            await provider.discard_snapshot(SnapshotRef(**asdict(old)))
        log.info(
            "session %s: snapshot of %d bytes in %d ms",
            self._session.id,
            ref.size_bytes,
            (time.monotonic() - started) * 1000,
        )
        return True

    async def _watch_exit(self, handle: SandboxHandle, conn: SandboxConnection) -> None:
        """A sandbox process that exits on its own is lost; say so once."""
        ended = await self._provider.wait(handle)
        conn.mark_lost(f"the sandbox process exited with status {ended.status}")
        if self._handle is handle:  # not a teardown we asked for
            self._handle, self._conn = None, None
            self._replacement_told = False  # the next box is a replacement to tell of
            self._hub.unregister(handle.sandbox_id)
            if self.status in ("booting", "ready", "snapshotting"):
                # The reason is a limit the box ran into, when the provider knows it.
                why = f": {ended.reason}" if ended.reason else ""
                await self._set_status("lost", f"The sandbox process exited ({ended.status}){why}")

    async def _on_message(self, message: RuntimeEvent) -> None:
        """Boot progress becomes ``sandbox-log`` lines; a setup failure is also a warning (once
        a box: the runtime sends one, anything more is made up in the box).

        The connection has validated and cut every message and stops ``log`` lines at the box's
        boot log budget, so what this stores is bounded (see :mod:`openinspect.sandboxes`)."""
        sid = self._session.id
        if message["type"] == "log":
            line = message["line"]
            await self._emit(SandboxLog(session_id=sid, source=message["source"], line=line))
            if line.startswith(RUNTIME_WARNING_PREFIX) and not self._setup_warned:
                self._setup_warned = True
                await self._emit(
                    WarningEvent(
                        session_id=sid,
                        code="sandbox_setup_failed",
                        message=line.removeprefix(RUNTIME_WARNING_PREFIX).strip(),
                    )
                )
        elif message["type"] == "boot" and message.get("message"):
            await self._emit(
                SandboxLog(
                    session_id=sid,
                    source="boot",
                    line=f"{message['phase']}: {message.get('message')}",
                )
            )

    async def _on_limit(self, code: str, message: str) -> None:
        """A bridge limit bit (at most once per kind and box): the end of a cut boot log is
        marked in the log itself, the rest is a warning."""
        sid = self._session.id
        if code == "sandbox_log_truncated":
            await self._emit(SandboxLog(session_id=sid, source="openinspect", line=message))
        else:
            await self._emit(WarningEvent(session_id=sid, code=code, message=message))

    async def destroy(self, *, message: str | None = None) -> None:
        """Stop the sandbox and everything in it. Idempotent. ``message`` says why, in the
        ``sandbox-status`` event (``idle``, ``archived``). A later ``warm`` boots a new one."""
        await self._stop_box()
        if self.status not in ("none", "failed", "lost", "stopped"):
            await self._set_status("stopped", message)

    async def discard(self) -> None:
        """Stop the sandbox of a session that no longer exists (a deleted draft): as
        ``destroy``, but nothing is recorded, since there is no session to record it on."""
        await self._stop_box()
        self.status = "stopped"

    async def _stop_box(self) -> None:
        if self._boot is not None and not self._boot.done():
            self._boot.cancel()
            with contextlib.suppress(BaseException):
                await self._boot
        await self._teardown()

    async def _teardown(self) -> None:
        conn, handle = self._conn, self._handle
        self._conn, self._handle = None, None
        if handle is not None:
            self._replacement_told = False  # the next box is a replacement to tell of
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        if conn is not None:
            with contextlib.suppress(SandboxError):
                await wait_for(conn.shutdown(), 2)
        if handle is not None:
            await self._provider.destroy(handle)
        if self._sandbox_id is not None:
            self._hub.unregister(self._sandbox_id)
        claimed, self._claimed_workspace = self._claimed_workspace, None
        if claimed is not None and handle is not None:
            # The box is stopped: its workspace becomes the session's, for its next box.
            try:
                await asyncio.to_thread(move_workspace, claimed, self.workspace_dir)
            except OSError as exc:
                log.warning(
                    "session %s: the pooled box's workspace stays apart: %s",
                    self._session.id,
                    exc.strerror,
                )


def _consume_exception(task: asyncio.Task[SandboxConnection]) -> None:
    # The failure is reported as events and re-raised to whoever awaits ready(); this only keeps
    # asyncio from logging "exception was never retrieved" when nobody did.
    if not task.cancelled():
        task.exception()
