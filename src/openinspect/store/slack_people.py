"""Slack users and the openinspect users they act as, their App Home preferences, and the
one-time codes that link the two.

A ``slack_users`` row exists for every Slack user the app has heard from that has a link or a
preference; ``user_id`` is null until the user is linked (by email, or through a link code). A
link code is stored as its sha256 only; the code itself is only in the link sent to the Slack
user, used once, and expires.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.errors import SlackLinkExpired, SlackLinkNotFound, SlackLinkUsed
from openinspect.store.db import insert_once
from openinspect.store.tables import slack_link_codes, slack_users
from openinspect.store.users import hash_token

LinkedBy = Literal["email", "link"]
Preference = Literal["default_repo", "model", "effort"]
LINK_CODE_BYTES = 24
LINK_CODE_MAX = 100
"""Longer is no code of ours: refused before it is hashed."""


@dataclass(frozen=True)
class SlackUser:
    team_id: str
    slack_user_id: str
    user_id: str | None
    linked_by: str | None
    email: str | None
    default_repo: str | None
    model: str | None
    effort: str | None


@dataclass(frozen=True)
class LinkCode:
    """What a link code would link (the Slack side), while it is usable."""

    team_id: str
    slack_user_id: str
    expires_at: datetime


def _slack_user(row: sa.Row[Any]) -> SlackUser:
    m = row._mapping
    return SlackUser(
        team_id=m["team_id"],
        slack_user_id=m["slack_user_id"],
        user_id=m["user_id"],
        linked_by=m["linked_by"],
        email=m["email"],
        default_repo=m["default_repo"],
        model=m["model"],
        effort=m["effort"],
    )


class SlackPeopleStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, team_id: str, slack_user_id: str) -> SlackUser | None:
        query = sa.select(slack_users).where(
            slack_users.c.team_id == team_id, slack_users.c.slack_user_id == slack_user_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _slack_user(row) if row is not None else None

    async def _set(
        self, conn: AsyncConnection, team_id: str, slack_user_id: str, values: dict[str, Any]
    ) -> None:
        """Set ``values`` on the Slack user's row, making the row first if there is none."""
        now = utcnow()
        await insert_once(
            conn,
            slack_users,
            {
                "team_id": team_id,
                "slack_user_id": slack_user_id,
                "created_at": now,
                "updated_at": now,
            },
        )
        await conn.execute(
            slack_users.update()
            .where(
                slack_users.c.team_id == team_id,
                slack_users.c.slack_user_id == slack_user_id,
            )
            .values(**values, updated_at=now)
        )

    async def link(
        self,
        team_id: str,
        slack_user_id: str,
        user_id: str,
        *,
        linked_by: LinkedBy,
        email: str | None = None,
    ) -> None:
        """Make the Slack user act as ``user_id`` from now on (replacing an earlier link)."""
        async with self._engine.begin() as conn:
            await self._set(
                conn,
                team_id,
                slack_user_id,
                {"user_id": user_id, "linked_by": linked_by, "email": email},
            )

    async def set_preference(
        self, team_id: str, slack_user_id: str, name: Preference, value: str | None
    ) -> None:
        """Set one App Home preference (None clears it); a new model clears the effort, which
        belongs to the model."""
        values: dict[str, Any] = {name: value}
        if name == "model":
            values["effort"] = None
        async with self._engine.begin() as conn:
            await self._set(conn, team_id, slack_user_id, values)

    async def mint_code(self, team_id: str, slack_user_id: str, ttl_s: float) -> str:
        """A new one-time link code for the Slack user (only its hash is kept)."""
        code = secrets.token_urlsafe(LINK_CODE_BYTES)
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(
                slack_link_codes.insert().values(
                    code_hash=hash_token(code),
                    team_id=team_id,
                    slack_user_id=slack_user_id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                )
            )
        return code

    async def peek_code(self, code: str) -> LinkCode:
        """What ``code`` would link; raises ``SlackLinkNotFound`` / ``SlackLinkUsed`` /
        ``SlackLinkExpired``."""
        async with self._engine.connect() as conn:
            row = await self._code_row(conn, code)
        return _usable(row)

    async def redeem_code(self, code: str, user_id: str) -> LinkCode:
        """Use ``code`` (once) to link its Slack user to ``user_id``, in one transaction."""
        async with self._engine.begin() as conn:
            found = _usable(await self._code_row(conn, code))
            used = await conn.execute(
                slack_link_codes.update()
                .where(
                    slack_link_codes.c.code_hash == hash_token(code),
                    slack_link_codes.c.used_at.is_(None),
                )
                .values(used_at=utcnow(), used_by=user_id)
            )
            if not used.rowcount:  # another request used it between the read and here
                raise _used()
            await self._set(
                conn, found.team_id, found.slack_user_id, {"user_id": user_id, "linked_by": "link"}
            )
        return found

    async def _code_row(self, conn: AsyncConnection, code: str) -> sa.Row[Any] | None:
        if not code or len(code) > LINK_CODE_MAX:
            return None
        query = sa.select(slack_link_codes).where(slack_link_codes.c.code_hash == hash_token(code))
        row: sa.Row[Any] | None = (await conn.execute(query)).first()
        return row


def _used() -> SlackLinkUsed:
    return SlackLinkUsed(
        "This Slack link was used already", hint="Ask the app in Slack again for a new link"
    )


def _usable(row: sa.Row[Any] | None) -> LinkCode:
    if row is None:
        raise SlackLinkNotFound(
            "No such Slack link", hint="Open the link the app sent you in Slack, as it is"
        )
    m = row._mapping
    if m["used_at"] is not None:
        raise _used()
    if m["expires_at"] <= utcnow():
        raise SlackLinkExpired(
            "This Slack link has expired", hint="Ask the app in Slack again for a new link"
        )
    return LinkCode(m["team_id"], m["slack_user_id"], m["expires_at"])
