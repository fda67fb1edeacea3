"""MCP servers (``mcp_servers``): where the agent's MCP tools come from, global or of one repo.

An ``http`` server (streamable HTTP) is called by the control plane: its ``headers`` (the
credential, e.g. ``Authorization: Bearer …``) are sealed with ``store.crypto.Sealer`` under the
purpose ``mcp:<scope>:<name>`` and opened only by :meth:`McpServerStore.for_repo`, for the prompt
that calls it; every other read has the header names alone. A ``stdio`` server's ``command``
runs inside the box, so it has no headers and gets no credential. The rules here
(:func:`check_server`) are checked on every write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.errors import ConfigError, McpServerInvalid, McpServerLimitReached
from openinspect.secrets.rules import GLOBAL, SecretScope
from openinspect.store.crypto import Sealer, required
from openinspect.store.db import insert_once
from openinspect.store.tables import mcp_servers as table

Transport = Literal["http", "stdio"]
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
"""A server's name: the prefix of its tools' names (``<server>__<tool>``), so no ``_``."""
NAME_HINT = "A name is 1 to 32 lowercase letters, digits and '-', starting with a letter"
URL_MAX_CHARS = 2000
HEADERS_MAX = 8
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
HEADER_VALUE_MAX_CHARS = 4096
COMMAND_MAX_ARGS = 32
ARG_MAX_CHARS = 1000
TOOLS_MAX = 100
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SERVERS_PER_SCOPE = 20
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "content-type", "accept", "connection"})
"""Headers the HTTP client sets itself."""


def purpose(scope: SecretScope, name: str) -> str:
    """What a server's headers are sealed for: its scope and name."""
    return f"mcp:{scope.key}:{name}"


@dataclass(frozen=True)
class McpServer:
    """A configured MCP server. ``headers`` is empty except from ``for_repo`` (opened)."""

    id: str
    name: str
    repo_id: str | None
    transport: Transport
    url: str | None
    header_names: tuple[str, ...]
    command: tuple[str, ...] | None
    tools: tuple[str, ...] | None
    """The tools the agent gets (None: every tool the server lists)."""
    enabled: bool
    created_at: datetime
    updated_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def scope(self) -> Literal["global", "repo"]:
        return "global" if self.repo_id is None else "repo"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an http server's address, or None."""
    if len(url) > URL_MAX_CHARS:
        return f"the URL has more than {URL_MAX_CHARS} characters"
    if any(ord(c) < 33 for c in url):
        return "the URL has spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "the URL cannot be parsed"
    if parts.scheme not in ("http", "https"):
        return "the URL's scheme must be http or https"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL has a user or password in it: put the credential in a header"
    return None


def check_server(
    name: str,
    transport: str,
    *,
    url: str | None,
    headers: Mapping[str, str] | None,
    command: Sequence[str] | None,
    tools: Sequence[str] | None,
) -> None:
    """Raise ``McpServerInvalid`` for a server the rules refuse (never quoting a header value)."""

    def bad(why: str, hint: str | None = None) -> McpServerInvalid:
        return McpServerInvalid(why, hint=hint)

    if not NAME_RE.match(name):
        raise bad("That is not a valid MCP server name", NAME_HINT)
    if transport == "http":
        if url is None:
            raise bad("An http MCP server needs a url")
        if command is not None:
            raise bad("An http MCP server has no command (that is for stdio servers)")
        why = url_problem(url)
        if why is not None:
            raise bad(why[:1].upper() + why[1:], "Give the server's http:// or https:// URL")
        for header, value in (headers or {}).items():
            if not HEADER_NAME_RE.match(header) or header.lower() in FORBIDDEN_HEADERS:
                raise bad("A header name is not one that can be set", "e.g. Authorization")
            if len(value) > HEADER_VALUE_MAX_CHARS or any(c in value for c in "\r\n\0"):
                raise bad(
                    f"The value of the header {header} is too long or has a line break",
                    f"At most {HEADER_VALUE_MAX_CHARS} characters on one line",
                )
        if len(headers or {}) > HEADERS_MAX:
            raise bad(f"An MCP server has at most {HEADERS_MAX} headers")
    elif transport == "stdio":
        if url is not None or headers:
            raise bad(
                "A stdio MCP server has no url and no headers: it runs inside the box, which "
                "gets no credential",
                "Use an http server for a service that needs a credential",
            )
        if not command:
            raise bad("A stdio MCP server needs a command")
        if len(command) > COMMAND_MAX_ARGS:
            raise bad(f"A command has at most {COMMAND_MAX_ARGS} arguments")
        if any(not arg or len(arg) > ARG_MAX_CHARS or "\0" in arg for arg in command):
            raise bad(f"Each argument of the command is 1 to {ARG_MAX_CHARS} characters, no NUL")
    else:
        raise bad("The transport must be http or stdio")
    if tools is not None:
        if len(tools) > TOOLS_MAX:
            raise bad(f"A tool list has at most {TOOLS_MAX} names")
        if any(not TOOL_NAME_RE.match(t) for t in tools):
            raise bad("A tool name is letters, digits, '_', '.' and '-' (1 to 64)")


def _server(row: sa.Row[Any], headers: Mapping[str, str] | None = None) -> McpServer:
    m = row._mapping
    return McpServer(
        id=m["id"],
        name=m["name"],
        repo_id=m["repo_id"],
        transport=m["transport"],
        url=m["url"],
        header_names=tuple(m["header_names"] or ()),
        command=tuple(m["command"]) if m["command"] is not None else None,
        tools=tuple(m["tools"]) if m["tools"] is not None else None,
        enabled=bool(m["enabled"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        headers=dict(headers or {}),
    )


_LISTED = [c for c in table.c if c.name != "headers"]


class McpServerStore:
    def __init__(self, engine: AsyncEngine, sealer: Sealer | None) -> None:
        self._engine = engine
        self._sealer = sealer

    async def listed(self, scopes: Sequence[SecretScope] | None = None) -> list[McpServer]:
        """The servers of ``scopes`` (every scope when None), without their headers' values:
        global ones first, then by repo and name."""
        query = sa.select(*_LISTED)
        if scopes is not None:
            query = query.where(table.c.scope.in_([s.key for s in scopes]))
        query = query.order_by(table.c.repo_id.is_not(None), table.c.repo_id, table.c.name)
        async with self._engine.connect() as conn:
            return [_server(r) for r in (await conn.execute(query)).all()]

    async def put(
        self,
        scope: SecretScope,
        name: str,
        *,
        transport: Transport,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        tools: Sequence[str] | None = None,
        enabled: bool = True,
        by: str | None,
    ) -> McpServer:
        """Create or replace a server. ``headers`` None keeps an http server's stored headers
        (to change its URL or tools without sending the credential again); ``{}`` removes them.
        Raises ``McpServerInvalid`` and ``McpServerLimitReached``."""
        check_server(name, transport, url=url, headers=headers, command=command, tools=tools)
        now = utcnow()
        values: dict[str, Any] = {
            "transport": transport,
            "url": url,
            "command": list(command) if command is not None else None,
            "tools": list(tools) if tools is not None else None,
            "enabled": enabled,
            "updated_by": by,
            "updated_at": now,
        }
        if headers is not None or transport == "stdio":
            opened = dict(headers or {})
            values["header_names"] = sorted(opened)
            values["headers"] = (
                required(self._sealer, "MCP server credentials").seal(
                    json.dumps(opened), purpose(scope, name)
                )
                if opened
                else None
            )
        async with self._engine.begin() as conn:
            existing = (
                await conn.execute(
                    sa.select(table.c.transport).where(
                        table.c.scope == scope.key, table.c.name == name
                    )
                )
            ).first()
            if existing is not None and existing.transport != transport:
                values.setdefault("header_names", [])
                values.setdefault("headers", None)
            if existing is None:
                count = (
                    await conn.execute(sa.select(sa.func.count()).where(table.c.scope == scope.key))
                ).scalar_one()
                if count >= SERVERS_PER_SCOPE:
                    raise McpServerLimitReached(
                        f"This scope already has {SERVERS_PER_SCOPE} MCP servers",
                        hint="Remove one that is no longer used",
                    )
                fresh = {
                    "id": new_id("mcp"),
                    "scope": scope.key,
                    "repo_id": scope.repo_id,
                    "name": name,
                    "created_by": by,
                    "created_at": now,
                    "header_names": [],
                    "headers": None,
                    **values,
                }
                await insert_once(conn, table, fresh)
            else:
                await conn.execute(
                    table.update()
                    .where(table.c.scope == scope.key, table.c.name == name)
                    .values(**values)
                )
            row = (
                await conn.execute(
                    sa.select(*_LISTED).where(table.c.scope == scope.key, table.c.name == name)
                )
            ).one()
        return _server(row)

    async def delete(self, scope: SecretScope, name: str) -> bool:
        """Delete a server; False when there was none of that name in ``scope``."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                table.delete().where(table.c.scope == scope.key, table.c.name == name)
            )
        return bool(result.rowcount)

    async def for_repo(self, repo_id: str | None) -> list[McpServer]:
        """The enabled servers a prompt on ``repo_id`` gets (None: a repo not registered): the
        global ones and the repo's, the repo's winning by name; http headers opened. Raises
        ``ConfigError`` when headers do not open (another key, or moved from another row)."""
        scopes = [GLOBAL] if repo_id is None else [GLOBAL, SecretScope(repo_id)]
        query = sa.select(table).where(
            table.c.scope.in_([s.key for s in scopes]), table.c.enabled.is_(True)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        by_name: dict[str, McpServer] = {}
        for row in sorted(rows, key=lambda r: (r.repo_id is not None, r.name)):
            headers: dict[str, str] = {}
            if row.headers:
                scope = SecretScope(row.repo_id)
                try:
                    headers = json.loads(
                        required(self._sealer, "MCP server credentials").open(
                            row.headers, purpose(scope, row.name)
                        )
                    )
                except ConfigError as exc:
                    raise ConfigError(
                        f"The headers of the MCP server {row.name} cannot be opened "
                        f"({exc.message})",
                        hint="An admin sets them again: they were sealed with another key",
                    ) from None
            by_name[row.name] = _server(row, headers)
        return sorted(by_name.values(), key=lambda s: s.name)
