"""Managed skills over REST: instruction files the team keeps, global or of a registered repo.

Members list the skills (name, description) their sessions' agents see; admins read bodies and
write. The scope is the ``repo`` query parameter (a registered repo's name or id), absent for the
global skills. A change reaches the prompts started after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from openinspect.api.deps import AdminUser, CurrentUser, State
from openinspect.api.errors import documented
from openinspect.api.routes.repos import registered_repo
from openinspect.api.schemas import NAME_MAX
from openinspect.errors import SkillNotFound
from openinspect.store.skills import BODY_MAX_CHARS, DESCRIPTION_MAX_CHARS, NAME_MAX_CHARS, Skill

router = APIRouter(prefix="/api/skills", tags=["skills"], responses=documented(401))

RepoParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAME_MAX,
        description="A registered repo's name or id: its skills (and the global ones it does "
        "not hide, in a listing). Absent: the global skills.",
    ),
]
NameParam = Annotated[
    str,
    Path(
        min_length=1,
        max_length=NAME_MAX_CHARS,
        description="Lower-case letters, digits, '.', '_' and '-'.",
    ),
]


class SkillView(BaseModel):
    name: str
    description: str
    scope: Literal["global", "repo"]
    repo: str | None
    updated_at: datetime


class SkillWithBody(SkillView):
    body: str


class SkillList(BaseModel):
    skills: list[SkillView]


class SkillSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX_CHARS)
    """One line the agent reads to decide whether to load the skill."""
    body: str = Field(min_length=1, max_length=BODY_MAX_CHARS)
    """The instructions (Markdown) the agent gets from ``load_skill``."""


async def _repo_id(state: State, repo: str | None) -> str | None:
    return None if repo is None else (await registered_repo(state, repo)).id


def _view(skill: Skill, names: dict[str, str]) -> SkillView:
    return SkillView(
        name=skill.name,
        description=skill.description,
        scope="global" if skill.repo_id is None else "repo",
        repo=names.get(skill.repo_id) if skill.repo_id else None,
        updated_at=skill.updated_at,
    )


async def _names(state: State) -> dict[str, str]:
    return {r.id: r.name for r in await state.store.repos.list()}


def _not_found() -> SkillNotFound:
    return SkillNotFound(
        "No skill of that name in that scope", hint="List them with GET /api/skills"
    )


@router.get("", responses=documented(404))
async def list_skills(user: CurrentUser, state: State, repo: RepoParam = None) -> SkillList:
    """The skills an agent sees: the global ones, or with ``repo`` that repo's and the global
    ones it does not hide."""
    listed = await state.store.skills.listed(await _repo_id(state, repo))
    names = await _names(state)
    return SkillList(skills=[_view(s, names) for s in listed])


@router.get("/{name}", responses=documented(403, 404))
async def get_skill(
    name: NameParam, user: AdminUser, state: State, repo: RepoParam = None
) -> SkillWithBody:
    """One skill of the scope, with its body (admins)."""
    repo_id = await _repo_id(state, repo)
    for skill in await state.store.skills.listed(repo_id, with_global=False):
        if skill.name == name:
            view = _view(skill, await _names(state))
            return SkillWithBody(**view.model_dump(), body=skill.body)
    raise _not_found()


@router.put("/{name}", responses=documented(403, 404, 422))
async def set_skill(
    name: NameParam, body: SkillSet, user: AdminUser, state: State, repo: RepoParam = None
) -> SkillView:
    """Create or replace a skill (admins)."""
    repo_id = await _repo_id(state, repo)
    skill = await state.store.skills.put(repo_id, name, body.description, body.body, by=user.id)
    return _view(skill, await _names(state))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=documented(403, 404))
async def delete_skill(
    name: NameParam, user: AdminUser, state: State, repo: RepoParam = None
) -> Response:
    """Delete a skill (admins)."""
    if not await state.store.skills.delete(await _repo_id(state, repo), name):
        raise _not_found()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
