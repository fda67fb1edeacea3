"""The repo image builder (``image_builds``, one server at a time, every
``sandbox.images.check_interval_s``).

Each pass, for every repo that opted in (``openinspect repos image enable``), on its default
branch:

- a build is queued when the repo has no good image, or when its mirror's branch tip is not the
  newest image's commit, and the last build of it started at least
  ``sandbox.images.rebuild_interval_s`` ago (none started yet: at once). The mirror is fetched
  only when a build could start, so a repo whose interval runs fetches nothing;
- then every queued build runs, oldest first, one at a time: those queued here and those asked
  for through the API (``POST /api/repos/{repo}/image/builds``), which do not wait for the
  interval.

A build left ``running`` by a server that stopped or lost the lease is failed at the start of
the next pass (a pass runs one build at a time, so no build of this pass is running then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from openinspect.domain.events import utcnow
from openinspect.errors import OpenInspectError
from openinspect.images.builder import ImageBuilder
from openinspect.sandboxes.base import SnapshotCapable
from openinspect.services.registry import ServiceContext
from openinspect.sessions.git import commit_of
from openinspect.sessions.origins import Origins
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.images import ImageBuild, ImageRepo

log = logging.getLogger(__name__)
INTERRUPTED = "the server running the build stopped before it ended"


class ImageBuilds:
    """The image builder as a service: one server at a time."""

    name = "image_builds"
    one_replica = True

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        origins: Origins,
        builder: ImageBuilder,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._store = store
        self._origins = origins
        self._builder = builder
        self._now = now
        self.interval_s = settings.sandbox.images.check_interval_s

    async def run_once(self) -> None:
        await self._store.images.interrupt_running(INTERRUPTED)
        repos = {repo.repo_id: repo for repo in await self._store.images.enabled_repos()}
        for repo in repos.values():
            try:
                await self.consider(repo)
            except OpenInspectError as exc:  # one repo's mirror does not hold up the others
                log.warning("image of %s: cannot tell whether to build: %s", repo.name, exc)
        for build in await self._store.images.queued():
            found = repos.get(build.repo_id)
            if found is None:  # the repo opted out since it was queued
                await self._store.images.finish(
                    build.id, data=None, error="the repo no longer uses images", log="", keep=1
                )
                continue
            await self._builder.build(build, found)

    async def consider(self, repo: ImageRepo) -> ImageBuild | None:
        """Queue a build of ``repo``'s image if it is due (see the module docstring); returns
        the build queued, if any."""
        images, branch = self._store.images, repo.default_branch
        last = await images.last_started(repo.repo_id, branch)
        interval = timedelta(seconds=self._settings.sandbox.images.rebuild_interval_s)
        started = last.started_at if last is not None else None
        if started is not None and self._now() - started < interval:
            return None
        good = await images.newest_good(repo.repo_id, branch)
        if good is not None:
            mirror = await self._origins.mirror(self._settings.mirrors_dir, repo.url)
            tip = await commit_of(mirror, f"refs/heads/{branch}")
            if tip is None or tip == good.commit_sha:
                return None
        build, made = await images.queue(
            repo.repo_id, branch, trigger="first" if good is None else "moved"
        )
        if made:
            log.info("image of %s: build %s queued (%s)", repo.name, build.id, build.trigger)
        return build if made else None


def image_builds(context: ServiceContext) -> ImageBuilds | None:
    settings = context.settings
    deps = context.manager.deps
    if not settings.services.image_builds_enabled or not isinstance(deps.provider, SnapshotCapable):
        return None
    builder = ImageBuilder(
        settings=settings,
        store=context.store,
        origins=deps.origins,
        hub=deps.hub,
        provider=deps.provider,
    )
    return ImageBuilds(
        settings=settings, store=context.store, origins=deps.origins, builder=builder
    )
