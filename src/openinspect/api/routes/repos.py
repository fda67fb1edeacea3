"""Repo registration."""

from __future__ import annotations

from fastapi import APIRouter, status

from openinspect.api.deps import AdminUser, CurrentUser, State
from openinspect.api.errors import documented
from openinspect.api.schemas import RepoCreate, RepoList, repo_shown_to
from openinspect.domain.models import Repo
from openinspect.sessions.git import normalize_origin
from openinspect.sessions.manager import validate_branch

router = APIRouter(prefix="/api/repos", tags=["repos"], responses=documented(401))


@router.post("", status_code=status.HTTP_201_CREATED, responses=documented(403, 409, 413, 422))
async def register_repo(body: RepoCreate, user: AdminUser, state: State) -> Repo:
    return await state.store.repos.create(
        name=body.name,
        url=normalize_origin(body.url),
        default_branch=validate_branch(body.default_branch),
        created_by=user.id,
    )


@router.get("")
async def list_repos(user: CurrentUser, state: State) -> RepoList:
    """The registered repos; members see local ones by name, without the server's path."""
    return RepoList(repos=[repo_shown_to(user, r) for r in await state.store.repos.list()])
