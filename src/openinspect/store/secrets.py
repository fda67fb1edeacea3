"""Repo secrets (``secrets``): environment variables for boxes, global or of one repo.

Each value is sealed with ``store.crypto.Sealer`` under the purpose ``secret:<scope>:<name>``
(``scope`` is ``global`` or ``repo:<repo id>``), so a ciphertext copied into another row, of
another name or scope, does not open. Values are opened only by :meth:`SecretStore.values_for`
and :meth:`SecretStore.values_for_session`, for a box's environment and for redaction; every
other read returns :class:`SecretInfo`, which has no value. The rules of ``secrets.rules`` are
checked again on every write, and names they refuse are skipped on every read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.errors import ConfigError, SecretInvalid, SecretLimitReached
from openinspect.secrets.rules import (
    GLOBAL,
    Scope,
    SecretScope,
    merged,
    name_problem,
    scope_problem,
    secret_bytes,
    value_problem,
)
from openinspect.store.crypto import NONCE_BYTES, Sealer, required
from openinspect.store.db import insert_once
from openinspect.store.tables import secrets as table
from openinspect.store.tables import sessions

log = logging.getLogger(__name__)
_TAG_BYTES = 16
NAME_HINT = "A name is an environment variable name the box does not use itself, like API_TOKEN"


@dataclass(frozen=True)
class SecretInfo:
    """A secret without its value: what the API lists."""

    id: str
    name: str
    repo_id: str | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None

    @property
    def scope(self) -> Scope:
        return "global" if self.repo_id is None else "repo"


def purpose(scope: SecretScope, name: str) -> str:
    """What a secret's value is sealed for: its scope and name."""
    return f"secret:{scope.key}:{name}"


def _info(row: sa.Row[Any]) -> SecretInfo:
    m = row._mapping
    return SecretInfo(
        id=m["id"],
        name=m["name"],
        repo_id=m["repo_id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        created_by=m["created_by"],
        updated_by=m["updated_by"],
    )


def _stored_bytes(name: str, sealed: str) -> int:
    """What a stored secret counts toward its scope's size, from its ciphertext's length (AES-GCM
    adds a nonce and a tag and nothing else), without opening it."""
    raw = len(sealed) * 3 // 4 - sealed[-2:].count("=")
    return len(name) + max(0, raw - NONCE_BYTES - _TAG_BYTES)


class SecretStore:
    def __init__(self, engine: AsyncEngine, sealer: Sealer | None) -> None:
        self._engine = engine
        self._sealer = sealer

    @property
    def sealer(self) -> Sealer:
        return required(self._sealer, "repo secrets")

    async def listed(self, scopes: Sequence[SecretScope] | None = None) -> list[SecretInfo]:
        """The secrets of ``scopes`` (every scope when None): global ones first, then by repo
        and name."""
        query = sa.select(*(c for c in table.c if c.name != "value"))
        if scopes is not None:
            query = query.where(table.c.scope.in_([s.key for s in scopes]))
        query = query.order_by(table.c.repo_id.is_not(None), table.c.repo_id, table.c.name)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_info(r) for r in rows]

    async def put(
        self, scope: SecretScope, values: Mapping[str, str], *, by: str | None
    ) -> list[SecretInfo]:
        """Set (create or replace) the secrets ``values`` in ``scope``, all in one transaction.
        Raises ``SecretInvalid`` for a name or value the rules refuse and
        ``SecretLimitReached`` when the scope would hold too many or too much; then nothing is
        written. Returns the secrets written, in the order given."""
        for name, value in values.items():
            check_secret(name, value)
        sealer, now = self.sealer, utcnow()
        async with self._engine.begin() as conn:
            stored = {
                r.name: r.value
                for r in (
                    await conn.execute(
                        sa.select(table.c.name, table.c.value).where(table.c.scope == scope.key)
                    )
                ).all()
            }
            sizes = {name: _stored_bytes(name, sealed) for name, sealed in stored.items()}
            sizes.update({name: secret_bytes(name, value) for name, value in values.items()})
            why = scope_problem(len(sizes), sum(sizes.values()))
            if why is not None:
                where = "global secrets" if scope.repo_id is None else "this repo's secrets"
                raise SecretLimitReached(
                    f"Nothing was set: {why}", hint=f"Delete {where} that are no longer used"
                )
            for name, value in values.items():
                await self._write(
                    conn, scope, name, sealer.seal(value, purpose(scope, name)), by, now
                )
            rows = (
                await conn.execute(
                    sa.select(table).where(
                        table.c.scope == scope.key, table.c.name.in_(list(values))
                    )
                )
            ).all()
        by_name = {r._mapping["name"]: _info(r) for r in rows}
        return [by_name[name] for name in values]

    async def _write(
        self,
        conn: AsyncConnection,
        scope: SecretScope,
        name: str,
        sealed: str,
        by: str | None,
        now: datetime,
    ) -> None:
        values = {"value": sealed, "updated_by": by, "updated_at": now}
        fresh = {
            "id": new_id("sec"),
            "scope": scope.key,
            "repo_id": scope.repo_id,
            "name": name,
            "created_by": by,
            "created_at": now,
            **values,
        }
        if not await insert_once(conn, table, fresh):
            await conn.execute(
                table.update()
                .where(table.c.scope == scope.key, table.c.name == name)
                .values(**values)
            )

    async def delete(self, scope: SecretScope, name: str) -> bool:
        """Delete a secret; False when there was none of that name in ``scope``."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                table.delete().where(table.c.scope == scope.key, table.c.name == name)
            )
        return bool(result.rowcount)

    async def values_for(self, repo_id: str | None) -> dict[str, str]:
        """What a box of ``repo_id`` gets (None: a repo that is not registered): the global
        secrets, and the repo's over them, opened. Raises ``ConfigError`` when a value does not
        open (another key, or a ciphertext moved from another row)."""
        async with self._engine.connect() as conn:
            return await self._values(conn, repo_id)

    async def values_for_session(self, session_id: str) -> dict[str, str]:
        """``values_for`` the session's repo (the global secrets alone for a session that is not
        on a registered repo, or does not exist)."""
        async with self._engine.connect() as conn:
            repo_id = (
                await conn.execute(sa.select(sessions.c.repo_id).where(sessions.c.id == session_id))
            ).scalar_one_or_none()
            return await self._values(conn, repo_id)

    async def _values(self, conn: AsyncConnection, repo_id: str | None) -> dict[str, str]:
        scopes = {GLOBAL.key: GLOBAL}
        if repo_id is not None:
            scopes[SecretScope(repo_id).key] = SecretScope(repo_id)
        query = sa.select(table.c.scope, table.c.name, table.c.value).where(
            table.c.scope.in_(list(scopes))
        )
        rows = (await conn.execute(query)).all()
        opened: dict[str, dict[str, str]] = {key: {} for key in scopes}
        for row in rows:
            if name_problem(row.name) is not None:
                log.warning(
                    "secret %r of %s is not a name a box takes: skipped", row.name, row.scope
                )
                continue
            scope = scopes[row.scope]
            try:
                value = self.sealer.open(row.value, purpose(scope, row.name))
            except ConfigError as exc:
                kind = "global secret" if scope.repo_id is None else "repo secret"
                raise ConfigError(
                    f"The {kind} {row.name} cannot be opened ({exc.message})",
                    hint="An admin sets it again: it was sealed with another key, or in "
                    "another row",
                ) from None
            opened[row.scope][row.name] = value
        repo = opened[SecretScope(repo_id).key] if repo_id is not None else {}
        return merged(opened[GLOBAL.key], repo)


def check_secret(name: str, value: str) -> None:
    """Raise ``SecretInvalid`` when the rules refuse ``name`` or ``value`` (the message names
    the name, never the value)."""
    why = name_problem(name)
    if why is not None:
        raise SecretInvalid(why[:1].upper() + why[1:], hint=NAME_HINT)
    why = value_problem(value)
    if why is not None:
        raise SecretInvalid(f"{name}: {why}")
