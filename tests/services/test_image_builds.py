"""When the image builder queues a build: at once for a repo without an image, then (a failed
build, or a moved branch) no sooner than the interval after the last start; a queued build of
a repo that opted out since is failed, not run; a running build of a stopped server is failed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from openinspect.controlplane import ControlPlane
from openinspect.images.builder import ImageBuilder
from openinspect.services.images import INTERRUPTED, ImageBuilds


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now().astimezone()

    def __call__(self) -> datetime:
        return self.now


def _service(plane: ControlPlane, clock: Clock) -> ImageBuilds:
    builder = ImageBuilder(
        settings=plane.settings,
        store=plane.store,
        origins=plane.origins,
        hub=plane.hub,
        provider=plane.session_deps.provider,
    )
    return ImageBuilds(
        settings=plane.settings,
        store=plane.store,
        origins=plane.origins,
        builder=builder,
        now=clock,
    )


async def test_a_failed_build_is_retried_no_sooner_than_the_interval(
    plane: ControlPlane, origin: Path
) -> None:
    user = plane.bootstrap.user
    assert user is not None
    repo = await plane.store.repos.create(
        name="acme/w", url=str(origin), default_branch="main", created_by=user.id
    )
    await plane.store.images.put_settings(repo.id, enabled=True, updated_by=None)
    [found] = await plane.store.images.enabled_repos()
    clock = Clock()
    service = _service(plane, clock)
    first = await service.consider(found)
    assert first is not None and first.trigger == "first"
    assert await service.consider(found) is None  # already pending
    assert await plane.store.images.start(first.id, sandbox_id="sbx_1", commit_sha="a" * 40)
    await plane.store.images.finish(first.id, data=None, error="setup.sh failed", log="", keep=2)
    ended = await plane.store.images.get(repo.id, first.id)
    assert ended is not None and ended.started_at is not None
    started = ended.started_at
    interval = plane.settings.sandbox.images.rebuild_interval_s
    clock.now = started + timedelta(seconds=interval - 1)
    assert await service.consider(found) is None
    clock.now = started + timedelta(seconds=interval)
    again = await service.consider(found)
    assert again is not None and again.trigger == "first" and again.id != first.id


async def test_builds_of_repos_that_opted_out_and_of_stopped_servers_are_failed(
    plane: ControlPlane, origin: Path
) -> None:
    user = plane.bootstrap.user
    assert user is not None
    repo = await plane.store.repos.create(
        name="acme/x", url=str(origin), default_branch="main", created_by=user.id
    )
    await plane.store.images.put_settings(repo.id, enabled=True, updated_by=None)
    stale, _ = await plane.store.images.queue(repo.id, "main", trigger="first")
    await plane.store.images.start(stale.id, sandbox_id="sbx_gone", commit_sha="b" * 40)
    await plane.store.images.put_settings(repo.id, enabled=False, updated_by=None)
    await _service(plane, Clock()).run_once()
    failed = await plane.store.images.get(repo.id, stale.id)
    assert failed is not None and (failed.status, failed.error) == ("failed", INTERRUPTED)
    manual, made = await plane.store.images.queue(repo.id, "main", trigger="manual")
    assert made
    await _service(plane, Clock()).run_once()
    dropped = await plane.store.images.get(repo.id, manual.id)
    assert dropped is not None and dropped.status == "failed"
    assert dropped.error == "the repo no longer uses images"
