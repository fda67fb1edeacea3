"""Repo registration."""

from __future__ import annotations

from fastapi import APIRouter, status

from openinspect.api.deps import AdminUser, CurrentUser, State
from openinspect.api.errors import ErrorEnvelope
from openinspect.api.schemas import RepoCreate, RepoList
from openinspect.domain.models import Repo
from openinspect.sessions.git import normalize_origin
from openinspect.sessions.manager import validate_branch

_errors = {code: {"model": ErrorEnvelope} for code in (401, 403, 409, 422)}
router = APIRouter(prefix="/api/repos", tags=["repos"], responses=_errors)  # type: ignore[arg-type]


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_repo(body: RepoCreate, user: AdminUser, state: State) -> Repo:
    return await state.store.repos.create(
        name=body.name,
        url=normalize_origin(body.url),
        default_branch=validate_branch(body.default_branch),
        created_by=user.id,
    )


@router.get("")
async def list_repos(user: CurrentUser, state: State) -> RepoList:
    return RepoList(repos=await state.store.repos.list())
