"""The egress proxy's side of the API: a repo's own allow-list, and a session's request log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from openinspect.api.deps import AdminUser, CurrentUser, State, visible_session
from openinspect.api.errors import documented
from openinspect.api.routes.repos import registered_repo
from openinspect.egress.allowlist import MAX_ENTRIES, MAX_ENTRY_CHARS, BadEntry, parse_entries
from openinspect.errors import InvalidInput

LOG_PAGE_DEFAULT = 100
LOG_PAGE_MAX = 500
ID_MAX_CHARS = 40

repos_router = APIRouter(prefix="/api/repos", tags=["repos"], responses=documented(401))
sessions_router = APIRouter(
    prefix="/api/sessions",
    tags=["sessions"],
    responses=documented(401, 404, 422),
    dependencies=[Depends(visible_session)],
)


class RepoEgressBody(BaseModel):
    """A repo's own allow-list entries (they replace the ones it had)."""

    model_config = ConfigDict(extra="forbid")

    allow: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=MAX_ENTRY_CHARS)]],
        Field(max_length=MAX_ENTRIES),
    ]


class RepoEgressView(BaseModel):
    repo: str
    allow: list[str]
    """The repo's own entries."""
    server: list[str]
    """The server's entries (``sandbox.egress.allow``), which every repo has too."""
    enabled: bool
    """Whether boxes have egress at all on this server (``sandbox.egress.enabled``)."""


async def _view(state: State, repo: str) -> RepoEgressView:
    found = await registered_repo(state, repo)
    egress = state.settings.sandbox.egress
    return RepoEgressView(
        repo=found.name,
        allow=await state.store.egress.repo_entries(found.id),
        server=list(egress.allow),
        enabled=egress.enabled,
    )


@repos_router.get("/{repo:path}/egress", responses=documented(404))
async def get_repo_egress(repo: str, user: CurrentUser, state: State) -> RepoEgressView:
    """The hosts a registered repo's boxes may reach: its own entries and the server's."""
    return await _view(state, repo)


@repos_router.put("/{repo:path}/egress", responses=documented(403, 404, 413, 422))
async def put_repo_egress(
    repo: str, body: RepoEgressBody, user: AdminUser, state: State
) -> RepoEgressView:
    """Replace a registered repo's own allow-list (admins). Boxes use it from their next
    request on."""
    found = await registered_repo(state, repo)
    try:
        entries = [str(entry) for entry in parse_entries(body.allow)]
    except BadEntry as exc:
        raise InvalidInput(
            f"Not an allow-list entry: {exc}",
            hint="Entries are host, *.domain, host:port or an IP address with its port",
        ) from None
    await state.store.egress.set_repo_entries(found.id, entries, updated_by=user.id)
    return await _view(state, repo)


class EgressRequestOut(BaseModel):
    id: str
    sandbox_id: str
    method: str
    host: str
    port: int
    allowed: bool
    code: str
    """``allowed``, or why it was refused (``host_not_allowed``, ``port_not_allowed``,
    ``private_address``, ``too_many_connections``, ``unresolved``, ``unreachable``, …)."""
    status: int
    message: str | None
    bytes_up: int
    bytes_down: int
    duration_ms: int | None
    created_at: datetime


class EgressLog(BaseModel):
    requests: list[EgressRequestOut]
    """Newest first."""
    next_before: str | None
    """Pass as ``before`` for the older page; null on the last one."""


@sessions_router.get("/{session_id}/egress")
async def session_egress(
    session_id: str,
    user: CurrentUser,
    state: State,
    limit: Annotated[int, Query(ge=1, le=LOG_PAGE_MAX)] = LOG_PAGE_DEFAULT,
    before: Annotated[str | None, Query(max_length=ID_MAX_CHARS)] = None,
) -> EgressLog:
    """Every request the session's boxes made through the egress proxy, allowed or refused."""
    records = await state.store.egress.of_session(session_id, limit=limit, before=before)
    return EgressLog(
        requests=[EgressRequestOut.model_validate(r, from_attributes=True) for r in records],
        next_before=records[-1].id if len(records) == limit else None,
    )
