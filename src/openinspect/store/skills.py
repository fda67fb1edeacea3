"""Managed skills: instruction files the team keeps, for every session (scope ``global``) or a
registered repo's (scope ``repo:<repo id>``, deleted with the repo).

The agent sees each skill's name and description in its instructions and loads a body with the
``load_skill`` tool; a repo's skill hides a global one of the same name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.errors import InvalidInput
from openinspect.store.db import insert_once
from openinspect.store.tables import skills as table

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAME_MAX_CHARS = 64
DESCRIPTION_MAX_CHARS = 500
BODY_MAX_CHARS = 64 * 1024
"""A skill's body, as stored (the agent gets at most ``agent.skill_chars`` of it)."""
SKILLS_PER_SCOPE_MAX = 100
"""Skills one scope holds: each is listed in every request's instructions."""
NAME_HINT = "Lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    body: str
    repo_id: str | None
    updated_by: str | None
    updated_at: datetime


def scope_key(repo_id: str | None) -> str:
    return "global" if repo_id is None else f"repo:{repo_id}"


def check_skill(name: str, description: str, body: str) -> None:
    """Raise ``InvalidInput`` for a name, description or body the rules refuse (the message
    quotes none of the content)."""
    if not NAME_PATTERN.match(name):
        raise InvalidInput("Not a skill name", hint=NAME_HINT)
    if not description.strip() or len(description) > DESCRIPTION_MAX_CHARS:
        raise InvalidInput(
            f"A skill's description is 1 to {DESCRIPTION_MAX_CHARS} characters",
            hint="Say in one line when the agent should load it",
        )
    if not body.strip() or len(body) > BODY_MAX_CHARS:
        raise InvalidInput(
            f"A skill's body is 1 to {BODY_MAX_CHARS:,} characters",
            hint="Split a longer one into several skills",
        )
    if "\x00" in name + description + body:
        raise InvalidInput("A skill may not contain NUL characters")


def _skill(row: sa.Row[tuple[object, ...]]) -> Skill:
    m = row._mapping
    return Skill(
        m["name"], m["description"], m["body"], m["repo_id"], m["updated_by"], m["updated_at"]
    )


class SkillStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(
        self, repo_id: str | None, name: str, description: str, body: str, *, by: str | None
    ) -> Skill:
        """Create or replace a skill. Raises ``InvalidInput`` for bad content or a full scope."""
        check_skill(name, description, body)
        key, now = scope_key(repo_id), utcnow()
        values = {"description": description, "body": body, "updated_by": by, "updated_at": now}
        async with self._engine.begin() as conn:
            where = (table.c.scope == key) & (table.c.name == name)
            count = (
                await conn.execute(
                    sa.select(sa.func.count()).where(table.c.scope == key, table.c.name != name)
                )
            ).scalar_one()
            if count >= SKILLS_PER_SCOPE_MAX:
                raise InvalidInput(
                    f"This scope has {SKILLS_PER_SCOPE_MAX} skills already, the most it holds",
                    hint="Delete skills that are no longer used",
                )
            fresh = {"id": new_id("skl"), "scope": key, "repo_id": repo_id, "name": name}
            if not await insert_once(conn, table, {**fresh, **values}):
                await conn.execute(table.update().where(where).values(**values))
            row = (await conn.execute(sa.select(table).where(where))).one()
        return _skill(row)

    async def delete(self, repo_id: str | None, name: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                table.delete().where(table.c.scope == scope_key(repo_id), table.c.name == name)
            )
        return bool(result.rowcount)

    async def listed(self, repo_id: str | None, *, with_global: bool = True) -> list[Skill]:
        """The skills of ``repo_id`` (None: the global ones), with the global ones it does not
        hide when ``with_global``, by name."""
        keys = [scope_key(repo_id)]
        if with_global and repo_id is not None:
            keys.append(scope_key(None))
        query = sa.select(table).where(table.c.scope.in_(keys)).order_by(table.c.name)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, Skill] = {}
        for skill in map(_skill, rows):
            if skill.name not in found or skill.repo_id is not None:
                found[skill.name] = skill
        return sorted(found.values(), key=lambda s: s.name)

    async def entries(self, repo_id: str | None) -> list[tuple[str, str]]:
        """``listed`` as (name, description), without reading the bodies: what every prompt's
        instructions list."""
        keys = [scope_key(repo_id)] + ([scope_key(None)] if repo_id is not None else [])
        query = (
            sa.select(table.c.name, table.c.description, table.c.repo_id)
            .where(table.c.scope.in_(keys))
            .order_by(table.c.name)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, tuple[str, str]] = {}
        for name, description, owner in rows:
            if name not in found or owner is not None:
                found[name] = (name, description)
        return sorted(found.values())

    async def get(self, repo_id: str | None, name: str) -> Skill | None:
        """The skill the agent of a session on ``repo_id`` gets for ``name``: the repo's, else
        the global one."""
        for skill in await self.listed(repo_id):
            if skill.name == name:
                return skill
        return None
