"""A registered repo's warm pool: its size (admins set it) and this replica's boxes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openinspect.api.deps import AdminUser, CurrentUser, State
from openinspect.api.errors import documented
from openinspect.api.routes.repos import registered_repo
from openinspect.errors import InvalidInput

POOL_SIZE_LIMIT = 1000
"""The schema's bound; the server's own (``sandbox.pool.max_per_repo``) is checked after."""

router = APIRouter(prefix="/api/repos", tags=["repos"], responses=documented(401))


class RepoPoolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(ge=0, le=POOL_SIZE_LIMIT, strict=True)
    """Ready boxes each replica keeps for the repo; 0 turns the pool off."""

    @field_validator("size", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        """A JSON number with no fraction (``2.0``) is an integer; a string or a boolean is
        not (strict), so ``"2"`` and ``true`` are refused."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class RepoPoolView(BaseModel):
    repo: str
    size: int
    """Ready boxes each replica keeps for the repo (0: no pool)."""
    max_size: int
    """The largest size this server allows (``sandbox.pool.max_per_repo``)."""
    base_branch: str
    """The branch pooled boxes check out (the repo's default branch)."""
    ready: int
    """Ready boxes on the replica that answered."""
    booting: int
    """Boxes being made on the replica that answered."""


async def _view(state: State, repo: str) -> RepoPoolView:
    found = await registered_repo(state, repo)
    pool = state.session_deps.pool
    return RepoPoolView(
        repo=found.name,
        size=await state.store.pools.size(found.id),
        max_size=state.settings.sandbox.pool.max_per_repo,
        base_branch=found.default_branch,
        ready=len(pool.ready(found.id)) if pool is not None else 0,
        booting=pool.booting(found.id) if pool is not None else 0,
    )


@router.get("/{repo:path}/pool", responses=documented(404))
async def get_repo_pool(repo: str, user: CurrentUser, state: State) -> RepoPoolView:
    """A registered repo's warm pool: its size, and the boxes of the replica that answers."""
    return await _view(state, repo)


@router.put("/{repo:path}/pool", responses=documented(403, 404, 413, 422))
async def put_repo_pool(
    repo: str, body: RepoPoolBody, user: AdminUser, state: State
) -> RepoPoolView:
    """Set a registered repo's pool size (admins); every replica makes or stops boxes to match
    within ``sandbox.pool.refill_interval_s``."""
    found = await registered_repo(state, repo)
    most = state.settings.sandbox.pool.max_per_repo
    if body.size > most:
        raise InvalidInput(
            f"A pool of {body.size} is more than this server allows ({most})",
            hint="Ask for fewer, or raise OPENINSPECT_SANDBOX__POOL__MAX_PER_REPO",
            max_size=most,
        )
    await state.store.pools.set_size(found.id, body.size, updated_by=user.id)
    if state.session_deps.pool is not None:
        await state.session_deps.pool.fill()  # this replica at once; the others on their clock
    return await _view(state, repo)
