"""The warm pool: per registered repo, ready boxes made ahead of time, for sessions to claim.

An admin sets a repo's pool size (``openinspect repos pool set``, ``store/pools.py``). **Each
replica** keeps that many ready boxes of the repo: a bwrap box lives on one host and a session's
box must be on the replica that owns the session, so a shared count would leave a replica's
sessions without boxes while another's sit unused. A pool of N on R replicas is N x R boxes.

A pool's box is made by the same steps as a session's fresh box (``sessions/boxes.py``: the
repo's mirror, its secrets in the environment, ``setup.sh`` and ``start.sh``), on the repo's
default branch, and has no ``sandboxes`` row: its token belongs to no session, so the git proxy
refuses it, and its egress is its repo's allow-list (:meth:`WarmPool.repo_of`). A session
that needs a box and has no snapshot to restore claims one (``claim``: synchronous, so two
sessions never get one box) and binds it (``sessions/sandbox.py``); the pool then makes its
replacement at once.

Limits: pooled boxes are made through the provider, so they count against ``sandbox.max_live``.
At the cap the pool does not grow, and a session whose box is refused for it takes a pooled
box's place (``make_room``). A pooled box that dies is forgotten and replaced, its end logged; a
repo whose boxes fail to boot is retried after a pause that doubles (up to
:data:`FAILURE_PAUSE_MAX_S`). Every pooled box is destroyed when the server stops, and when its
repo's pool shrinks or the repo is deleted (the next pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from openinspect.domain.ids import new_id
from openinspect.errors import SandboxAtCapacity, SnapshotCorrupt
from openinspect.images.choice import FRESH, repo_image
from openinspect.sandboxes.local import remove_workspace
from openinspect.sandboxes.wrappers import ConcurrencyLimit, concurrency_limit
from openinspect.sessions.boxes import Box, BoxMaker
from openinspect.store.pools import PoolTarget

log = logging.getLogger(__name__)
POOL_WORKSPACES_DIRNAME = ".pool"
"""Under the workspaces directory: where pooled boxes' workspaces are until claimed."""
MAX_CONCURRENT_MAKES = 2
"""Pooled boxes booting at once on one replica (a boot is a clone plus ``setup.sh``)."""
ROOM_HOLD_S = 10.0
"""After a session's box took a pooled box's place, the pool waits this long before it grows
(the session's box starts meanwhile)."""
FAILURE_PAUSE_MIN_S = 5.0
FAILURE_PAUSE_MAX_S = 300.0


@dataclass
class _Repo:
    target: PoolTarget
    ready: list[Box] = field(default_factory=list)
    making: set[asyncio.Task[None]] = field(default_factory=set)
    failures: int = 0
    paused_until: float = 0.0


class WarmPool:
    def __init__(self, maker: BoxMaker) -> None:
        self._maker = maker
        self._limit: ConcurrencyLimit | None = concurrency_limit(maker.provider)
        self._repos: dict[str, _Repo] = {}
        self._owner: dict[str, str] = {}  # sandbox id → repo id, of every box the pool holds
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._makes = asyncio.Semaphore(MAX_CONCURRENT_MAKES)
        self._wake = asyncio.Event()
        self._filling = asyncio.Lock()  # the service's pass and an admin's change, one at a time
        self._closed = False
        self._held_until = 0.0  # no new box before this: a session took a pooled box's place

    @property
    def enabled(self) -> bool:
        """Whether this server pools boxes at all (a non-zero ``sandbox.pool.max_per_repo``)."""
        return self._maker.settings.sandbox.pool.max_per_repo > 0 and not self._closed

    def ready(self, repo_id: str) -> list[str]:
        """The ids of the repo's ready boxes here, oldest first."""
        repo = self._repos.get(repo_id)
        return [box.sandbox_id for box in repo.ready] if repo else []

    def booting(self, repo_id: str) -> int:
        repo = self._repos.get(repo_id)
        return len(repo.making) if repo else 0

    def repo_of(self, sandbox_id: str) -> str | None:
        """The repo of an unclaimed box this pool holds (its egress scope), else None."""
        return self._owner.get(sandbox_id)

    def claim(self, repo_id: str | None, base_branch: str) -> Box | None:
        """Take a ready box of the repo on ``base_branch``, or None. Synchronous: no other
        claim runs between looking and taking. The caller owns the box from here on (it binds
        it, or ``discard``\\s it); the pool makes its replacement."""
        repo = self._repos.get(repo_id) if repo_id is not None else None
        if repo is None or self._closed:
            return None
        for box in repo.ready:
            if box.base_branch == base_branch and box.conn.status == "ready":
                repo.ready.remove(box)
                self._owner.pop(box.sandbox_id, None)
                watcher = self._watchers.pop(box.sandbox_id, None)
                if watcher is not None:
                    watcher.cancel()
                self._wake.set()
                log.info("pool %s: box %s claimed", repo.target.repo.name, box.sandbox_id)
                return box
        return None

    async def discard(self, box: Box) -> None:
        """Destroy a claimed box that was not used after all, with its workspace."""
        await self._maker.destroy(box)
        await asyncio.to_thread(remove_workspace, box.workspace_dir)

    async def make_room(self) -> bool:
        """Destroy one pooled box (ready first, from the fullest pool; else one booting) so a
        session's box can start at the cap; whether one was freed."""
        # The place is the session's: the pool does not grow into it meanwhile.
        self._held_until = time.monotonic() + ROOM_HOLD_S
        candidates = [r for r in self._repos.values() if r.ready]
        if candidates:
            repo = max(candidates, key=lambda r: len(r.ready))
            box = repo.ready.pop(0)
            log.info(
                "pool %s: box %s stopped for a session's box", repo.target.repo.name, box.sandbox_id
            )
            await self._forget_and_destroy(box)
            return True
        for repo in self._repos.values():
            for task in list(repo.making):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                return True
        return False

    async def wait_for_work(self, timeout_s: float) -> None:
        """Wait until a box is claimed or dies (or ``timeout_s``): the refill's cue."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._wake.wait()
        self._wake.clear()

    async def fill(self) -> None:
        """One pass: read the pool sizes, destroy what is over them (or of repos without a
        pool), and start making what is missing, room allowing."""
        async with self._filling:
            await self._fill()

    async def _fill(self) -> None:
        if self._closed:
            return
        targets = {t.repo.id: t for t in await self._maker.store.pools.targets()}
        if not self.enabled:
            targets = {}
        cap = self._maker.settings.sandbox.pool.max_per_repo
        for repo_id in list(self._repos):
            if repo_id not in targets:
                await self._shrink(self._repos[repo_id], 0)
                if not self._repos[repo_id].ready and not self._repos[repo_id].making:
                    del self._repos[repo_id]
        for repo_id, target in targets.items():
            repo = self._repos.setdefault(repo_id, _Repo(target))
            if repo.target.repo.default_branch != target.repo.default_branch:
                await self._shrink(repo, 0)  # boxes of the old base branch
            repo.target = target
            for box in [b for b in repo.ready if b.conn.status != "ready"]:
                log.warning(
                    "pool %s: box %s went silent (%s); it is replaced",
                    target.repo.name,
                    box.sandbox_id,
                    box.conn.lost_reason or box.conn.status,
                )
                await self._forget_and_destroy(box)
            size = min(target.size, cap)
            await self._shrink(repo, size)
            missing = size - len(repo.ready) - len(repo.making)
            if missing <= 0 or time.monotonic() < repo.paused_until:
                continue
            for _ in range(missing):
                if not self._room():
                    break
                self._start_make(repo)

    def _room(self) -> bool:
        limit = self._limit
        if limit is None:
            return True
        if time.monotonic() < self._held_until:
            return False
        booting = sum(len(r.making) for r in self._repos.values())
        return limit.live + booting < limit.max_live

    def _start_make(self, repo: _Repo) -> None:
        task = asyncio.create_task(self._make(repo), name=f"pool {repo.target.repo.name}")
        repo.making.add(task)
        task.add_done_callback(repo.making.discard)

    async def _start(self, box: Box) -> None:
        """Start ``box`` from its repo's newest image when there is one (a damaged image is
        the next session's to find and mark: this box starts fresh), else a fresh clone."""
        maker = self._maker
        source = await repo_image(maker.store, maker.provider, box.repo_id, box.base_branch)
        if source is not None:
            try:
                await maker.start(box, source)
                return
            except SnapshotCorrupt as exc:
                log.warning("pool: image of repo %s unusable (%s); fresh box", box.repo_id, exc)
        await maker.start(box, FRESH)

    async def _make(self, repo: _Repo) -> None:
        target = repo.target.repo
        async with self._makes:
            sandbox_id = new_id("sbx")
            workspaces = self._maker.settings.workspaces_dir / POOL_WORKSPACES_DIRNAME
            box: Box | None = None
            started = time.monotonic()
            try:
                box = await self._maker.prepare(
                    repo_url=target.url,
                    repo_id=target.id,
                    base_branch=target.default_branch,
                    workspace_dir=workspaces / sandbox_id,
                    session_id=None,
                    sandbox_id=sandbox_id,
                )
                self._owner[sandbox_id] = target.id
                await self._start(box)
                self._watchers[sandbox_id] = asyncio.create_task(
                    self._watch(repo, box), name=f"pool watch {sandbox_id}"
                )
                await self._maker.wait_ready(box)
            except asyncio.CancelledError:
                if box is not None:
                    await self._forget_and_destroy(box)
                raise
            except SandboxAtCapacity:
                log.info("pool %s: no room for another box (sandbox.max_live)", target.name)
                if box is not None:
                    await self._forget_and_destroy(box)
                return
            except Exception as exc:  # any failure: logged, paused, retried; never the loop's end
                repo.failures += 1
                pause = min(FAILURE_PAUSE_MAX_S, FAILURE_PAUSE_MIN_S * 2 ** (repo.failures - 1))
                repo.paused_until = time.monotonic() + pause
                log.warning(
                    "pool %s: a box could not be made (%s); retried in %g s",
                    target.name,
                    exc,
                    pause,
                )
                if box is not None:
                    await self._forget_and_destroy(box)
                return
            if self._closed:
                await self._forget_and_destroy(box)
                return
            repo.failures = 0
            repo.ready.append(box)
            log.info(
                "pool %s: box %s ready in %d ms (%d ready)",
                target.name,
                sandbox_id,
                (time.monotonic() - started) * 1000,
                len(repo.ready),
            )

    async def _watch(self, repo: _Repo, box: Box) -> None:
        """A pooled box whose process ends on its own is forgotten (and so replaced)."""
        assert box.handle is not None
        ended = await self._maker.provider.wait(box.handle)
        self._watchers.pop(box.sandbox_id, None)
        if self._owner.pop(box.sandbox_id, None) is None:
            return  # claimed or destroyed meanwhile
        box.conn.mark_lost(f"the sandbox process exited with status {ended.status}")
        if box in repo.ready:
            repo.ready.remove(box)
        why = f": {ended.reason}" if ended.reason else ""
        log.warning(
            "pool %s: box %s exited (%d)%s; it is replaced",
            repo.target.repo.name,
            box.sandbox_id,
            ended.status,
            why,
        )
        box.handle = None
        self._maker.hub.unregister(box.sandbox_id)
        self._wake.set()

    async def _shrink(self, repo: _Repo, size: int) -> None:
        while len(repo.ready) + len(repo.making) > size:
            if repo.making:  # the newest work first: a box still booting
                task = next(iter(repo.making))
                repo.making.discard(task)
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            else:
                await self._forget_and_destroy(repo.ready.pop(0))

    async def _forget_and_destroy(self, box: Box) -> None:
        self._owner.pop(box.sandbox_id, None)
        watcher = self._watchers.pop(box.sandbox_id, None)
        if watcher is not None:
            watcher.cancel()
        for repo in self._repos.values():
            if box in repo.ready:
                repo.ready.remove(box)
        await self._maker.destroy(box)
        await asyncio.to_thread(remove_workspace, box.workspace_dir)

    async def close(self) -> None:
        """Destroy every pooled box (the server stops); no box is made after this."""
        self._closed = True
        making = [t for r in self._repos.values() for t in r.making]
        for task in making:
            task.cancel()
        await asyncio.gather(*making, return_exceptions=True)
        boxes = [box for r in self._repos.values() for box in r.ready]
        await asyncio.gather(*(self._forget_and_destroy(b) for b in boxes), return_exceptions=True)
        self._repos.clear()
