"""MCP servers over REST: where the agent's MCP tools come from, global or of one repo.

Admins write; anyone signed in may list (the agent's tools are no secret). Header values (a
server's credential) go in and never come out: a listing names the headers, never their values.
The scope is the ``repo`` query parameter (a registered repo's name or id), absent for the
global servers, as for secrets. A change reaches the prompts started after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from openinspect.api.deps import AdminUser, CurrentUser, State
from openinspect.api.errors import documented
from openinspect.api.schemas import NAME_MAX
from openinspect.errors import McpServerNotFound, RepoNotFound
from openinspect.secrets.rules import GLOBAL, SecretScope
from openinspect.store.mcp_servers import (
    ARG_MAX_CHARS,
    COMMAND_MAX_ARGS,
    HEADER_VALUE_MAX_CHARS,
    HEADERS_MAX,
    TOOLS_MAX,
    URL_MAX_CHARS,
    McpServer,
)

router = APIRouter(prefix="/api/mcp-servers", tags=["mcp"], responses=documented(401, 403))

RepoParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAME_MAX,
        description="A registered repo's name or id: its own servers. Absent: the global ones.",
    ),
]
NameParam = Annotated[
    str,
    Path(
        min_length=1,
        max_length=32,
        description="The server's name: lowercase letters, digits and '-'; its tools reach the "
        "agent as <name>__<tool>.",
    ),
]


class McpServerView(BaseModel):
    """A server as the API shows it: its headers' names, never their values."""

    name: str
    scope: Literal["global", "repo"]
    repo: str | None
    transport: Literal["http", "stdio"]
    url: str | None
    header_names: list[str]
    command: list[str] | None
    tools: list[str] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    shadowed: bool = False
    """A global server that the repo overrides with one of its own of the same name."""


class McpServerList(BaseModel):
    servers: list[McpServerView]


class McpServerSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transport: Literal["http", "stdio"]
    url: str | None = Field(None, min_length=1, max_length=URL_MAX_CHARS)
    headers: (
        dict[
            Annotated[str, Field(min_length=1, max_length=64)],
            Annotated[str, Field(max_length=HEADER_VALUE_MAX_CHARS)],
        ]
        | None
    ) = Field(
        None,
        max_length=HEADERS_MAX,
        description="http only, write-only: sent by the control plane on every request to the "
        "server (e.g. Authorization). Absent keeps the stored ones; {} removes them.",
    )
    command: list[Annotated[str, Field(min_length=1, max_length=ARG_MAX_CHARS)]] | None = Field(
        None,
        min_length=1,
        max_length=COMMAND_MAX_ARGS,
        description="stdio only: the argv run inside the box, in the repo (no shell).",
    )
    tools: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=TOOLS_MAX, description="The tools the agent gets; absent: all."
    )
    enabled: bool = True


async def _scope(state: State, repo: str | None) -> SecretScope:
    if repo is None:
        return GLOBAL
    found = await state.store.repos.find(repo)
    if found is None:
        raise RepoNotFound(
            "No registered repo has that name or id",
            hint="MCP servers belong to registered repos, or are global (no repo)",
        )
    return SecretScope(found.id)


def _view(server: McpServer, repos: dict[str, str], shadowed: bool = False) -> McpServerView:
    return McpServerView(
        name=server.name,
        scope=server.scope,
        repo=repos.get(server.repo_id, server.repo_id) if server.repo_id else None,
        transport=server.transport,
        url=server.url,
        header_names=list(server.header_names),
        command=list(server.command) if server.command is not None else None,
        tools=list(server.tools) if server.tools is not None else None,
        enabled=server.enabled,
        created_at=server.created_at,
        updated_at=server.updated_at,
        shadowed=shadowed,
    )


async def _repo_names(state: State) -> dict[str, str]:
    return {r.id: r.name for r in await state.store.repos.list()}


@router.get("", responses=documented(404))
async def list_mcp_servers(
    user: CurrentUser, state: State, repo: RepoParam = None
) -> McpServerList:
    """Every server (global and every repo's), or with ``repo`` what a prompt on that repo
    gets: the global servers and the repo's, a global one the repo overrides ``shadowed``."""
    scope = await _scope(state, repo)
    names = await _repo_names(state)
    store = state.store.mcp_servers
    if repo is None:
        return McpServerList(servers=[_view(s, names) for s in await store.listed()])
    listed = await store.listed([GLOBAL, scope])
    own = {s.name for s in listed if s.repo_id is not None}
    return McpServerList(
        servers=[_view(s, names, s.repo_id is None and s.name in own) for s in listed]
    )


@router.put("/{name}", responses=documented(404, 409, 422))
async def set_mcp_server(
    name: NameParam, body: McpServerSet, user: AdminUser, state: State, repo: RepoParam = None
) -> McpServerView:
    """Create or replace a server (global, or the repo's)."""
    scope = await _scope(state, repo)
    server = await state.store.mcp_servers.put(
        scope,
        name,
        transport=body.transport,
        url=body.url,
        headers=body.headers,
        command=body.command,
        tools=body.tools,
        enabled=body.enabled,
        by=user.id,
    )
    state.redaction.changed()
    return _view(server, await _repo_names(state))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=documented(404))
async def delete_mcp_server(
    name: NameParam, user: AdminUser, state: State, repo: RepoParam = None
) -> Response:
    """Delete a server; a prompt already running keeps its tools until it ends."""
    scope = await _scope(state, repo)
    if not await state.store.mcp_servers.delete(scope, name):
        where = "global MCP server" if repo is None else "MCP server of that repo"
        raise McpServerNotFound(
            f"There is no {where} named {name}",
            hint="List the MCP servers to see their names and scopes",
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
