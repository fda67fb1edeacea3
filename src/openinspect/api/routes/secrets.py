"""Repo secrets over REST: environment variables of boxes, global or of one registered repo.

Values go in and never come out: every answer (a listing, a change, an error) names secrets by
name, scope and time, never by value. Only admins reach these routes (a member gets 403
before anything is read): whoever can set a secret decides what every box of a repo holds.

The scope is the ``repo`` query parameter (a registered repo's name or id), absent for the
global secrets, so that no value and no repo name is ever part of a path. A box of a repo gets
the global secrets and the repo's, the repo's winning; a change reaches the boxes started after
it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from openinspect.api.deps import AdminUser, State
from openinspect.api.errors import documented
from openinspect.api.schemas import NAME_MAX
from openinspect.domain.models import Repo
from openinspect.errors import RepoNotFound, SecretNotFound
from openinspect.secrets.dotenv import parse_env
from openinspect.secrets.rules import (
    GLOBAL,
    IMPORT_MAX_CHARS,
    NAME_MAX_CHARS,
    VALUE_MAX_BYTES,
    SecretScope,
)
from openinspect.store.secrets import SecretInfo, check_secret

router = APIRouter(prefix="/api/secrets", tags=["secrets"], responses=documented(401, 403))

RepoParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAME_MAX,
        description="A registered repo's name or id: its own secrets. Absent: the global ones.",
    ),
]
NameParam = Annotated[
    str,
    Path(
        min_length=1,
        max_length=NAME_MAX_CHARS,
        description="An environment variable name: letters, digits and _, not starting with a "
        "digit, and none the box uses itself (PATH, HOME, OPENINSPECT_…, GIT_…, LD_…).",
    ),
]


class SecretView(BaseModel):
    """A secret as the API shows it: never its value."""

    name: str
    scope: Literal["global", "repo"]
    repo: str | None
    """The repo's name, for a repo secret."""
    created_at: datetime
    updated_at: datetime
    shadowed: bool = False
    """A global secret that the repo asked for has a secret of its own of the same name over
    (only in a listing with ``repo``)."""


class SecretList(BaseModel):
    secrets: list[SecretView]


class SecretSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(
        min_length=1,
        max_length=VALUE_MAX_BYTES,
        description="The value (write-only: it is never shown again).",
    )


class SecretImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=IMPORT_MAX_CHARS,
        description="The text of a .env file: KEY=value lines, export, quotes and # comments.",
    )


class SecretImported(BaseModel):
    imported: list[SecretView]
    """The secrets the text set, in its order."""


async def _scope(state: State, repo: str | None) -> tuple[SecretScope, Repo | None]:
    if repo is None:
        return GLOBAL, None
    found = await state.store.repos.find(repo)
    if found is None:
        raise RepoNotFound(
            "No registered repo has that name or id",
            hint="Secrets belong to registered repos, or are global (no repo)",
        )
    return SecretScope(found.id), found


def _view(info: SecretInfo, repos: dict[str, str], shadowed: bool = False) -> SecretView:
    return SecretView(
        name=info.name,
        scope=info.scope,
        repo=repos.get(info.repo_id, info.repo_id) if info.repo_id else None,
        created_at=info.created_at,
        updated_at=info.updated_at,
        shadowed=shadowed,
    )


async def _repo_names(state: State) -> dict[str, str]:
    return {r.id: r.name for r in await state.store.repos.list()}


@router.get("", responses=documented(404))
async def list_secrets(user: AdminUser, state: State, repo: RepoParam = None) -> SecretList:
    """Every secret (global and every repo's), or with ``repo`` what a box of that repo gets:
    the global secrets and the repo's, a global one the repo overrides marked ``shadowed``."""
    scope, found = await _scope(state, repo)
    names = await _repo_names(state)
    if found is None:
        return SecretList(secrets=[_view(s, names) for s in await state.store.secrets.listed()])
    listed = await state.store.secrets.listed([GLOBAL, scope])
    own = {s.name for s in listed if s.repo_id is not None}
    return SecretList(
        secrets=[_view(s, names, s.repo_id is None and s.name in own) for s in listed]
    )


@router.put("/{name}", responses=documented(404, 409))
async def set_secret(
    name: NameParam, body: SecretSet, user: AdminUser, state: State, repo: RepoParam = None
) -> SecretView:
    """Create or replace a secret (global, or the repo's)."""
    scope, _ = await _scope(state, repo)
    check_secret(name, body.value)
    [written] = await state.store.secrets.put(scope, {name: body.value}, by=user.id)
    state.redaction.changed()
    return _view(written, await _repo_names(state))


@router.post("/import", responses=documented(404, 409))
async def import_secrets(
    body: SecretImport, user: AdminUser, state: State, repo: RepoParam = None
) -> SecretImported:
    """Set every secret a pasted ``.env`` text sets, all or none: a bad line (its number is
    named, its value never) or a full scope refuses the whole text."""
    scope, _ = await _scope(state, repo)
    parsed = parse_env(body.text)
    written = await state.store.secrets.put(scope, parsed.values, by=user.id)
    state.redaction.changed()
    names = await _repo_names(state)
    return SecretImported(imported=[_view(s, names) for s in written])


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=documented(404))
async def delete_secret(
    name: NameParam, user: AdminUser, state: State, repo: RepoParam = None
) -> Response:
    """Delete a secret; boxes already running keep it until they stop."""
    scope, _ = await _scope(state, repo)
    if not await state.store.secrets.delete(scope, name):
        where = "global secret" if repo is None else "secret of that repo"
        raise SecretNotFound(
            f"There is no {where} named {name}",
            hint="List the secrets to see their names and scopes",
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
