"""Repo registration, and each registered repo's review-bot settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from openinspect.api.deps import AdminUser, CurrentUser, State
from openinspect.api.errors import documented
from openinspect.api.schemas import RepoCreate, RepoList, Trimmed, repo_shown_to
from openinspect.domain.models import Repo
from openinspect.errors import RepoNotFound
from openinspect.sessions.git import normalize_origin
from openinspect.sessions.manager import validate_branch
from openinspect.store.review_settings import (
    INSTRUCTIONS_MAX_CHARS,
    MODEL_MAX_CHARS,
    RepoReviewSettings,
    effective,
)

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


class ReviewSettingsBody(BaseModel):
    """A repo's own review-bot settings; null (or left out): the server's default."""

    model_config = ConfigDict(extra="forbid")

    auto_review: bool | None = None
    instructions: Annotated[str | None, Field(max_length=INSTRUCTIONS_MAX_CHARS), Trimmed] = None
    model: Annotated[str | None, Field(min_length=1, max_length=MODEL_MAX_CHARS), Trimmed] = None


class EffectiveReview(BaseModel):
    auto_review: bool
    instructions: str | None
    model: str | None


class ReviewSettingsView(BaseModel):
    repo: str
    auto_review: bool | None
    instructions: str | None
    model: str | None
    effective: EffectiveReview
    """What the bot does for this repo: its own settings over the server's defaults."""
    updated_at: datetime | None


async def registered_repo(state: State, key: str) -> Repo:
    found = await state.store.repos.find(key)
    if found is None:
        raise RepoNotFound(
            "No registered repo has that name or id",
            hint="List them with GET /api/repos; settings belong to registered repos",
        )
    return found


def _view(repo: Repo, own: RepoReviewSettings | None, state: State) -> ReviewSettingsView:
    seen = effective(own, state.settings.github.bot)
    return ReviewSettingsView(
        repo=repo.name,
        auto_review=own.auto_review if own else None,
        instructions=own.instructions if own else None,
        model=own.model if own else None,
        effective=EffectiveReview(
            auto_review=seen.auto_review, instructions=seen.instructions, model=seen.model
        ),
        updated_at=own.updated_at if own else None,
    )


@router.get("/{repo:path}/review-settings", responses=documented(404))
async def get_review_settings(repo: str, user: CurrentUser, state: State) -> ReviewSettingsView:
    """The review bot's settings for a registered repo (every signed-in user may read them)."""
    found = await registered_repo(state, repo)
    return _view(found, await state.store.review_settings.get(found.id), state)


@router.put("/{repo:path}/review-settings", responses=documented(403, 404, 413, 422))
async def put_review_settings(
    repo: str, body: ReviewSettingsBody, user: AdminUser, state: State
) -> ReviewSettingsView:
    """Replace a registered repo's review-bot settings (admins, who register repos)."""
    found = await registered_repo(state, repo)
    if body.model is not None:
        await state.models.check(body.model, None)
    own = await state.store.review_settings.put(
        found.id,
        auto_review=body.auto_review,
        instructions=body.instructions or None,
        model=body.model,
        updated_by=user.id,
    )
    return _view(found, own, state)
