"""The Linear agent's rows: the workspaces it is installed in (``linear_installs``, tokens
sealed) and the agent sessions it drives (``linear_sessions``).

Tokens are sealed with ``store.crypto.Sealer`` under a purpose naming the workspace and the
column (``linear:<org id>:access``), so a ciphertext copied into another row does not open; they
are opened only by :meth:`LinearStore.install` and never leave the control plane. A session row
is written once per agent session (the webhook's ``created``, in the inbox row's transaction);
its ``state`` is the outbound projection's (``integrations.linear.outbound``), written through
the feed cursor's connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.store.crypto import Sealer, required
from openinspect.store.db import insert_once
from openinspect.store.tables import linear_installs, linear_sessions

LinearStatus = Literal["active", "awaiting_repo", "stopped", "ended"]
ORG_NAME_MAX = 255
SCOPES_MAX = 255
ID_MAX = 64
IDENTIFIER_MAX = 32


@dataclass(frozen=True)
class InstallInfo:
    """A workspace the agent is installed in, without its tokens."""

    org_id: str
    org_name: str
    app_user_id: str | None
    scopes: str
    expires_at: datetime | None
    installed_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LinearInstall:
    """An install with its tokens in clear (in memory only; never logged or answered)."""

    info: InstallInfo
    access_token: str
    refresh_token: str | None

    def __repr__(self) -> str:  # a token must not reach a log through a repr
        return f"LinearInstall(org_id={self.info.org_id!r}, …)"


@dataclass(frozen=True)
class LinearSession:
    agent_session_id: str
    org_id: str
    session_id: str | None
    issue_id: str | None
    issue_identifier: str | None
    issue_url: str | None
    linear_user_id: str | None
    state: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime


def _purpose(org_id: str, column: str) -> str:
    return f"linear:{org_id}:{column}"


def _info(m: sa.RowMapping) -> InstallInfo:
    return InstallInfo(
        org_id=m["org_id"],
        org_name=m["org_name"],
        app_user_id=m["app_user_id"],
        scopes=m["scopes"],
        expires_at=m["expires_at"],
        installed_by=m["installed_by"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _session(row: sa.Row[Any]) -> LinearSession:
    m = row._mapping
    return LinearSession(
        agent_session_id=m["agent_session_id"],
        org_id=m["org_id"],
        session_id=m["session_id"],
        issue_id=m["issue_id"],
        issue_identifier=m["issue_identifier"],
        issue_url=m["issue_url"],
        linear_user_id=m["linear_user_id"],
        state=json.loads(m["state"] or "{}"),
        status=m["status"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _short(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else None


class LinearStore:
    def __init__(self, engine: AsyncEngine, sealer: Sealer | None) -> None:
        self._engine = engine
        self._sealer = sealer

    @property
    def sealer(self) -> Sealer:
        return required(self._sealer, "Linear tokens")

    # --- installs ---

    async def save_install(
        self,
        *,
        org_id: str,
        org_name: str,
        app_user_id: str | None,
        access_token: str,
        refresh_token: str | None,
        expires_at: datetime | None,
        scopes: str,
        installed_by: str | None,
    ) -> InstallInfo:
        """Keep (or replace: a second install of the same workspace) a workspace's tokens."""
        if not org_id or len(org_id) > ID_MAX:
            raise ValueError("a Linear organization id is 1 to 64 characters")
        sealer, now = self.sealer, utcnow()
        values = {
            "org_name": org_name[:ORG_NAME_MAX],
            "app_user_id": _short(app_user_id, ID_MAX),
            "access_token": sealer.seal(access_token, _purpose(org_id, "access")),
            "refresh_token": (
                sealer.seal(refresh_token, _purpose(org_id, "refresh")) if refresh_token else None
            ),
            "expires_at": expires_at,
            "scopes": scopes[:SCOPES_MAX],
            "installed_by": installed_by,
            "updated_at": now,
        }
        async with self._engine.begin() as conn:
            written = await insert_once(
                conn, linear_installs, {"org_id": org_id, "created_at": now, **values}
            )
            if not written:
                await conn.execute(
                    linear_installs.update()
                    .where(linear_installs.c.org_id == org_id)
                    .values(**values)
                )
        found = await self.install_info(org_id)
        assert found is not None
        return found

    async def install_info(self, org_id: str) -> InstallInfo | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(linear_installs).where(linear_installs.c.org_id == org_id)
                )
            ).first()
        return _info(row._mapping) if row is not None else None

    async def installs(self) -> list[InstallInfo]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(sa.select(linear_installs).order_by(linear_installs.c.org_id))
            ).all()
        return [_info(r._mapping) for r in rows]

    async def install(self, org_id: str) -> LinearInstall | None:
        """The workspace's install with its tokens opened, or None when it is not installed."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(linear_installs).where(linear_installs.c.org_id == org_id)
                )
            ).first()
        if row is None:
            return None
        m = row._mapping
        sealer = self.sealer
        refresh = m["refresh_token"]
        return LinearInstall(
            info=_info(m),
            access_token=sealer.open(m["access_token"], _purpose(org_id, "access")),
            refresh_token=sealer.open(refresh, _purpose(org_id, "refresh")) if refresh else None,
        )

    async def update_tokens(
        self,
        org_id: str,
        *,
        access_token: str,
        refresh_token: str | None,
        expires_at: datetime | None,
    ) -> None:
        """Keep a refreshed pair (a refresh rotates both)."""
        sealer = self.sealer
        async with self._engine.begin() as conn:
            await conn.execute(
                linear_installs.update()
                .where(linear_installs.c.org_id == org_id)
                .values(
                    access_token=sealer.seal(access_token, _purpose(org_id, "access")),
                    refresh_token=(
                        sealer.seal(refresh_token, _purpose(org_id, "refresh"))
                        if refresh_token
                        else None
                    ),
                    expires_at=expires_at,
                    updated_at=utcnow(),
                )
            )

    async def remove_install(self, org_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                linear_installs.delete().where(linear_installs.c.org_id == org_id)
            )
        return bool(result.rowcount)

    # --- agent sessions ---

    async def create_session(
        self,
        conn: AsyncConnection,
        *,
        agent_session_id: str,
        org_id: str,
        issue_id: str | None,
        issue_identifier: str | None,
        issue_url: str | None,
        linear_user_id: str | None,
    ) -> bool:
        """The row of a new agent session (``active``), in the caller's transaction; False when
        it exists."""
        now = utcnow()
        return await insert_once(
            conn,
            linear_sessions,
            {
                "agent_session_id": agent_session_id,
                "org_id": org_id,
                "issue_id": _short(issue_id, ID_MAX),
                "issue_identifier": _short(issue_identifier, IDENTIFIER_MAX),
                "issue_url": issue_url,
                "linear_user_id": _short(linear_user_id, ID_MAX),
                "state": "{}",
                "status": "active",
                "created_at": now,
                "updated_at": now,
            },
        )

    async def session(
        self, agent_session_id: str, *, conn: AsyncConnection | None = None
    ) -> LinearSession | None:
        query = sa.select(linear_sessions).where(
            linear_sessions.c.agent_session_id == agent_session_id
        )
        return await self._one(query, conn)

    async def by_session(
        self, session_id: str, *, conn: AsyncConnection | None = None
    ) -> LinearSession | None:
        """The agent session an openinspect session reports to."""
        query = sa.select(linear_sessions).where(linear_sessions.c.session_id == session_id)
        return await self._one(query, conn)

    async def _one(
        self, query: sa.Select[Any], conn: AsyncConnection | None
    ) -> LinearSession | None:
        if conn is not None:
            row = (await conn.execute(query)).first()
        else:
            async with self._engine.connect() as own:
                row = (await own.execute(query)).first()
        return _session(row) if row is not None else None

    async def link(self, agent_session_id: str, session_id: str) -> bool:
        """Tie the agent session to the session started for it, once (its ``state`` starts
        empty: the projection's from now on); False when it is tied to another session."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                linear_sessions.update()
                .where(
                    linear_sessions.c.agent_session_id == agent_session_id,
                    linear_sessions.c.session_id.is_(None),
                )
                .values(session_id=session_id, status="active", state="{}", updated_at=utcnow())
            )
            if result.rowcount:
                return True
            tied = (
                await conn.execute(
                    sa.select(linear_sessions.c.session_id).where(
                        linear_sessions.c.agent_session_id == agent_session_id
                    )
                )
            ).scalar_one_or_none()
        return tied == session_id

    async def await_repo(self, agent_session_id: str, pending: dict[str, Any]) -> None:
        """Mark the agent session as waiting for its person to name the repo; ``pending`` is
        what the start needs then (kept in ``state`` until the session is linked: the
        projection has nothing to say about a session that does not exist yet)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                linear_sessions.update()
                .where(
                    linear_sessions.c.agent_session_id == agent_session_id,
                    linear_sessions.c.session_id.is_(None),
                )
                .values(
                    status="awaiting_repo",
                    state=json.dumps({"pending": pending}),
                    updated_at=utcnow(),
                )
            )

    async def set_status(self, agent_session_id: str, status: LinearStatus) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                linear_sessions.update()
                .where(linear_sessions.c.agent_session_id == agent_session_id)
                .values(status=status, updated_at=utcnow())
            )

    async def save_state(
        self, conn: AsyncConnection, agent_session_id: str, state: dict[str, Any]
    ) -> None:
        """The projection's state, through the caller's (the feed cursor's) transaction."""
        await conn.execute(
            linear_sessions.update()
            .where(linear_sessions.c.agent_session_id == agent_session_id)
            .values(state=json.dumps(state), updated_at=utcnow())
        )
