"""A registered repo's image: whether its boxes start from one, and the history of its builds.

Every signed-in user may read them (a build's log is the box's own output, which names no
server path, with the repo's secrets redacted); admins turn images on and off and ask for a
build. The builds themselves run in the ``image_builds`` service (``services/images.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, StrictBool

from openinspect.api.deps import AdminUser, CurrentUser, State
from openinspect.api.errors import documented
from openinspect.api.routes.repos import registered_repo
from openinspect.domain.models import Repo
from openinspect.errors import ConflictError, ImageBuildNotFound
from openinspect.images.builder import require_images
from openinspect.sandboxes.base import SnapshotCapable
from openinspect.store.images import ImageBuild

PAGE_DEFAULT = 20
PAGE_MAX = 100
ID_MAX_CHARS = 40
BUILD_ID = r"^img_[0-9a-f]{1,32}$"

router = APIRouter(prefix="/api/repos", tags=["repos"], responses=documented(401))


class RepoImageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool


class ImageBuildOut(BaseModel):
    id: str
    base_branch: str
    commit_sha: str | None
    status: str
    """``queued``, ``running``, ``succeeded``, ``failed``, or ``bad`` (its archive failed its
    check when a box was to start from it)."""
    trigger: str
    """``first`` (the repo had no image), ``moved`` (its base branch moved) or ``manual``."""
    requested_by: str | None
    good: bool
    """New boxes may start from it (succeeded, not bad, not yet dropped for newer ones)."""
    size_bytes: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, build: ImageBuild) -> ImageBuildOut:
        return cls(
            id=build.id,
            base_branch=build.base_branch,
            commit_sha=build.commit_sha,
            status=build.status,
            trigger=build.trigger,
            requested_by=build.requested_by,
            good=build.good,
            size_bytes=build.data.size_bytes if build.data else None,
            error=build.error,
            created_at=build.created_at,
            started_at=build.started_at,
            finished_at=build.finished_at,
        )


class ImageBuildDetail(ImageBuildOut):
    log: str
    """The end of the build's boot log (its last 64 KiB)."""


class RepoImageView(BaseModel):
    repo: str
    enabled: StrictBool
    supported: bool
    """Whether this server's sandbox backend can keep images at all."""
    base_branch: str
    rebuild_interval_s: float
    """Least time between two builds started because the base branch moved."""
    current: ImageBuildOut | None
    """The image new boxes start from now."""
    pending: ImageBuildOut | None
    """A build queued or running."""


class ImageBuildList(BaseModel):
    builds: list[ImageBuildOut]
    """Newest first."""
    next_before: str | None
    """Pass as ``before`` for the older page; null on the last one."""


async def _view(state: State, repo: Repo) -> RepoImageView:
    images = state.store.images
    own = await images.get_settings(repo.id)
    current = await images.newest_good(repo.id, repo.default_branch)
    recent = await images.of_repo(repo.id, limit=1)
    pending = recent[0] if recent and recent[0].status in ("queued", "running") else None
    return RepoImageView(
        repo=repo.name,
        enabled=own is not None and own.enabled,
        supported=isinstance(state.session_deps.provider, SnapshotCapable),
        base_branch=repo.default_branch,
        rebuild_interval_s=state.settings.sandbox.images.rebuild_interval_s,
        current=ImageBuildOut.of(current) if current else None,
        pending=ImageBuildOut.of(pending) if pending else None,
    )


@router.get("/{repo:path}/image", responses=documented(404))
async def get_repo_image(repo: str, user: CurrentUser, state: State) -> RepoImageView:
    """Whether a registered repo's new boxes start from an image, and which."""
    return await _view(state, await registered_repo(state, repo))


@router.put("/{repo:path}/image", responses=documented(403, 404, 409, 413, 422))
async def put_repo_image(
    repo: str, body: RepoImageBody, user: AdminUser, state: State
) -> RepoImageView:
    """Turn a registered repo's image on or off (admins). Turned on, its first build starts
    within ``sandbox.images.check_interval_s``; turned off, new boxes start from a clone."""
    found = await registered_repo(state, repo)
    if body.enabled:
        require_images(state.session_deps.provider)
    await state.store.images.put_settings(found.id, enabled=body.enabled, updated_by=user.id)
    return await _view(state, found)


@router.post(
    "/{repo:path}/image/builds",
    status_code=status.HTTP_202_ACCEPTED,
    responses=documented(403, 404, 409),
)
async def queue_image_build(repo: str, user: AdminUser, state: State) -> ImageBuildOut:
    """Build the repo's image now, whatever the rebuild interval (admins); answers the build
    queued, or the one already queued or running."""
    found = await registered_repo(state, repo)
    require_images(state.session_deps.provider)
    if not await state.store.images.is_enabled(found.id):
        raise ConflictError(
            f"Repo images are off for {found.name}",
            hint="Turn the repo's image on first",
        )
    build, _ = await state.store.images.queue(
        found.id, found.default_branch, trigger="manual", requested_by=user.id
    )
    return ImageBuildOut.of(build)


@router.get("/{repo:path}/image/builds", responses=documented(404))
async def list_image_builds(
    repo: str,
    user: CurrentUser,
    state: State,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    before: Annotated[str | None, Query(max_length=ID_MAX_CHARS)] = None,
) -> ImageBuildList:
    """The repo's image builds, newest first."""
    found = await registered_repo(state, repo)
    builds = await state.store.images.of_repo(found.id, limit=limit, before=before)
    return ImageBuildList(
        builds=[ImageBuildOut.of(b) for b in builds],
        next_before=builds[-1].id if len(builds) == limit else None,
    )


@router.get("/{repo:path}/image/builds/{build_id}", responses=documented(404))
async def get_image_build(
    repo: str,
    build_id: Annotated[str, Path(max_length=ID_MAX_CHARS, pattern=BUILD_ID)],
    user: CurrentUser,
    state: State,
) -> ImageBuildDetail:
    """One build of the repo's image, with the end of its boot log."""
    found = await registered_repo(state, repo)
    build = await state.store.images.get(found.id, build_id)
    if build is None:
        raise ImageBuildNotFound(
            "The repo has no image build with that id",
            hint="List the repo's builds with GET /api/repos/{repo}/image/builds",
        )
    return ImageBuildDetail(**ImageBuildOut.of(build).model_dump(), log=build.log or "")
