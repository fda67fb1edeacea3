"""Users and their API tokens. Tokens are stored as SHA-256 hashes only.

A token has a ``kind``: ``api`` (made by a person for scripts), ``web`` (minted at browser
sign-in, expiring after ``auth.web_token_ttl_s``), ``cli`` (minted by ``openinspect login``) or
``link`` (the code of a one-time sign-in link an admin minted for someone: it authenticates
nobody itself, it is only exchanged once for a ``web`` token; using it sets ``revoked_at``).
Expired and revoked tokens authenticate nobody. ``last_used_at`` is written at most once per
``LAST_USED_RESOLUTION_S`` per token, so that authenticating is a read, not a write, per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.domain.models import Role, User
from openinspect.errors import (
    ConflictError,
    LoginLinkExpired,
    LoginLinkInvalid,
    LoginLinkUsed,
    NotFoundError,
)
from openinspect.store.tables import api_tokens, users

TOKEN_PREFIX = "oi_"  # noqa: S105 - a prefix, not a secret
_TOKEN_BYTES = 32
_PREFIX_CHARS = 8
LAST_USED_RESOLUTION_S = 60
TokenKind = Literal["api", "web", "cli", "link"]
BearerKind = Literal["api", "web", "cli"]
"""The kinds that authenticate requests (a ``link`` code does not)."""
LINK_PREFIX = "oil_"
_BEARER_KINDS: tuple[BearerKind, ...] = ("api", "web", "cli")
TokenState = Literal["expired", "revoked"]
_LINK_HINT = "Ask an admin of this server for a new sign-in link"


class ApiToken(BaseModel):
    """What is known about a token besides its secret (which is never stored)."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    name: str
    kind: TokenKind
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Authenticated:
    """A valid bearer token: whose it is and which token it was."""

    user: User
    token_id: str
    kind: BearerKind


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    return User.model_validate(row._mapping)


class UserStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        *,
        name: str,
        email: str,
        role: Role,
        git_name: str | None = None,
        git_email: str | None = None,
    ) -> User:
        user = User(
            id=new_id("usr"),
            name=name,
            email=email,
            git_name=git_name or name,
            git_email=git_email or email,
            role=role,
            created_at=utcnow(),
        )
        async with self._engine.begin() as conn:
            await conn.execute(users.insert().values(**user.model_dump()))
        return user

    async def add(self, *, name: str, email: str, role: Role) -> User:
        """A new user, refused (``ConflictError``) when one with this email (in any case)
        exists already."""
        async with self._engine.begin() as conn:
            taken = (
                await conn.execute(
                    sa.select(users.c.id).where(sa.func.lower(users.c.email) == email.lower())
                )
            ).first()
            if taken is not None:
                raise ConflictError(
                    f"A user with the email {email!r} exists already ({taken.id})",
                    hint="Mint a sign-in link for that user instead",
                )
            user = User(
                id=new_id("usr"),
                name=name,
                email=email,
                git_name=name,
                git_email=email,
                role=role,
                created_at=utcnow(),
            )
            await conn.execute(users.insert().values(**user.model_dump()))
        return user

    async def get(self, user_id: str) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(users.select().where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def with_email(self, email: str, limit: int = 2) -> list[User]:
        """Users whose email is ``email``, in any case (at most ``limit``)."""
        query = sa.select(users).where(sa.func.lower(users.c.email) == email.lower()).limit(limit)
        async with self._engine.connect() as conn:
            return [_user(row) for row in (await conn.execute(query)).all()]

    async def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        wanted = set(user_ids)
        if not wanted:
            return {}
        async with self._engine.connect() as conn:
            rows = (await conn.execute(users.select().where(users.c.id.in_(wanted)))).all()
        return {row.id: _user(row) for row in rows}

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
            )

    async def list_all(self) -> list[User]:
        """Every user, oldest first."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(users.select().order_by(users.c.created_at))).all()
        return [_user(r) for r in rows]

    async def set_role(self, user_id: str, role: Role) -> User:
        """Change a user's role. Refuses to demote the last admin (nobody could undo it)."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(users.select().where(users.c.id == user_id))).first()
            if row is None:
                raise NotFoundError(f"No user {user_id!r}", hint="List users with GET /api/users")
            if row.role == "admin" and role != "admin":
                admins = (
                    await conn.execute(
                        sa.select(sa.func.count()).select_from(users).where(users.c.role == "admin")
                    )
                ).scalar_one()
                if admins <= 1:
                    raise ConflictError(
                        "This is the only admin; demoting them would leave nobody able to "
                        "manage the install",
                        hint="Make another user admin first",
                    )
            await conn.execute(users.update().where(users.c.id == user_id).values(role=role))
            row = (await conn.execute(users.select().where(users.c.id == user_id))).one()
        return _user(row)

    async def update_git_identity(
        self, user_id: str, *, git_name: str | None = None, git_email: str | None = None
    ) -> User:
        """Set the name and email written into the commits of this user's prompts."""
        values: dict[str, Any] = {}
        if git_name is not None:
            values["git_name"] = git_name
        if git_email is not None:
            values["git_email"] = git_email
        async with self._engine.begin() as conn:
            if values:
                await conn.execute(users.update().where(users.c.id == user_id).values(**values))
            row = (await conn.execute(users.select().where(users.c.id == user_id))).first()
        if row is None:
            raise NotFoundError(f"No user {user_id!r}")
        return _user(row)

    async def create_token(
        self,
        user_id: str,
        name: str,
        *,
        kind: TokenKind = "api",
        expires_at: datetime | None = None,
    ) -> str:
        """Mint an API token for a user. Returns the token; only its hash is kept."""
        token, _ = await self.mint_token(user_id, name, kind=kind, expires_at=expires_at)
        return token

    async def mint_token(
        self,
        user_id: str,
        name: str,
        *,
        kind: TokenKind = "api",
        expires_at: datetime | None = None,
    ) -> tuple[str, ApiToken]:
        """Mint a token: the secret (shown once) and its record."""
        async with self._engine.begin() as conn:
            return await _insert_token(conn, user_id, name, kind=kind, expires_at=expires_at)

    async def tokens(self, user_id: str) -> list[ApiToken]:
        """A user's tokens that are not revoked (expired ones included), newest first; sign-in
        link codes are not tokens to their owner and are left out."""
        query = (
            sa.select(*_TOKEN_COLUMNS)
            .where(
                api_tokens.c.user_id == user_id,
                api_tokens.c.revoked_at.is_(None),
                api_tokens.c.kind.in_(_BEARER_KINDS),
            )
            .order_by(api_tokens.c.created_at.desc())
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ApiToken.model_validate(r._mapping) for r in rows]

    async def mint_login_link(
        self, user_id: str, name: str, expires_at: datetime
    ) -> tuple[str, ApiToken]:
        """A one-time sign-in code for a user (only its hash is kept). Older unused codes of
        the user stop working: only the newest link an admin handed out signs anyone in."""
        async with self._engine.begin() as conn:
            await conn.execute(
                api_tokens.update()
                .where(
                    api_tokens.c.user_id == user_id,
                    api_tokens.c.kind == "link",
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            return await _insert_token(
                conn, user_id, name, kind="link", expires_at=expires_at, prefix=LINK_PREFIX
            )

    async def redeem_login_link(
        self, code: str, name: str, expires_at: datetime
    ) -> tuple[str, ApiToken, User]:
        """Use a sign-in code once: mark it used and mint a ``web`` token (expiring at
        ``expires_at``) of its user, in one transaction. Of concurrent redemptions exactly one
        wins (one ``UPDATE … WHERE revoked_at IS NULL`` changes the row; on Postgres the others
        wait for it and then match nothing). Raises ``LoginLinkInvalid`` (unknown),
        ``LoginLinkUsed`` or ``LoginLinkExpired``."""
        digest = hash_token(code)
        now = utcnow()
        mine = (api_tokens.c.token_hash == digest, api_tokens.c.kind == "link")
        async with self._engine.begin() as conn:
            # The write comes first: on SQLite a transaction that read before writing cannot
            # take the write lock after a concurrent commit (it fails instead of waiting).
            won = await conn.execute(
                api_tokens.update()
                .where(*mine, api_tokens.c.revoked_at.is_(None), api_tokens.c.expires_at > now)
                .values(revoked_at=now, last_used_at=now)
            )
            row = (
                await conn.execute(sa.select(*_TOKEN_COLUMNS, api_tokens.c.token_hash).where(*mine))
            ).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                raise LoginLinkInvalid("This sign-in link is not valid", hint=_LINK_HINT)
            if won.rowcount != 1:
                _check_link(row.revoked_at, row.last_used_at, row.expires_at, now)
                raise LoginLinkUsed("This sign-in link was used already", hint=_LINK_HINT)
            owner = (await conn.execute(users.select().where(users.c.id == row.user_id))).one()
            token, record = await _insert_token(
                conn, row.user_id, name, kind="web", expires_at=expires_at
            )
        return token, record, _user(owner)

    async def token_state(self, token: str) -> TokenState | None:
        """Why a bearer token that does not authenticate fails: ``expired``, ``revoked``, or
        None when this server does not know it. Only its holder can ask (by hash), so the
        answer tells nobody anything they did not have."""
        query = sa.select(
            api_tokens.c.token_hash, api_tokens.c.revoked_at, api_tokens.c.expires_at
        ).where(api_tokens.c.token_hash == hash_token(token), api_tokens.c.kind.in_(_BEARER_KINDS))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or not hmac.compare_digest(row.token_hash, hash_token(token)):
            return None
        if row.revoked_at is not None:
            return "revoked"
        if row.expires_at is not None and row.expires_at <= utcnow():
            return "expired"
        return None

    async def get_token(self, token_id: str) -> ApiToken | None:
        query = sa.select(*_TOKEN_COLUMNS).where(api_tokens.c.id == token_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return ApiToken.model_validate(row._mapping) if row else None

    async def revoke_token(self, token_id: str) -> bool:
        """Revoke a token; False if it does not exist or was already revoked."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return result.rowcount > 0

    async def live_token_user(self, token_id: str) -> User | None:
        """The user of a token that is neither revoked nor expired (and whose user still
        exists), read fresh from the database; None otherwise. WebSockets call it on connect,
        on every command and periodically, so a revocation reaches every replica."""
        query = (
            sa.select(users)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(
                api_tokens.c.id == token_id,
                api_tokens.c.kind.in_(_BEARER_KINDS),
                api_tokens.c.revoked_at.is_(None),
                sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > utcnow()),
            )
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _user(row) if row else None

    async def delete_expired_tokens(self, user_id: str) -> int:
        """Forget a user's tokens that expired (they authenticate nobody anyway)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_tokens.delete().where(
                    api_tokens.c.user_id == user_id, api_tokens.c.expires_at < utcnow()
                )
            )
        return result.rowcount

    async def lookup(self, token: str) -> Authenticated | None:
        """The user and token record of a bearer token; None if it is unknown, revoked or
        expired."""
        digest = hash_token(token)
        now = utcnow()
        query = (
            sa.select(
                users,
                api_tokens.c.token_hash,
                api_tokens.c.id.label("token_id"),
                api_tokens.c.kind.label("token_kind"),
                api_tokens.c.last_used_at.label("token_last_used_at"),
            )
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(
                api_tokens.c.token_hash == digest,
                api_tokens.c.kind.in_(_BEARER_KINDS),
                api_tokens.c.revoked_at.is_(None),
                sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
            )
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        # The lookup is by hash; compare again in constant time so that no code path
        # ever decides on a token with an early-exit comparison.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        data = dict(row._mapping)
        token_id, kind = data.pop("token_id"), data.pop("token_kind")
        last_used = data.pop("token_last_used_at")
        data.pop("token_hash")
        if last_used is None or now - last_used >= timedelta(seconds=LAST_USED_RESOLUTION_S):
            await self._touch(token_id, now)
        return Authenticated(User.model_validate(data), token_id, kind)

    async def _touch(self, token_id: str, now: datetime) -> None:
        stale = now - timedelta(seconds=LAST_USED_RESOLUTION_S)
        async with self._engine.begin() as conn:
            await conn.execute(
                api_tokens.update()
                .where(
                    api_tokens.c.id == token_id,
                    sa.or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at < stale),
                )
                .values(last_used_at=now)
            )

    async def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None if it is unknown, revoked or expired."""
        found = await self.lookup(token)
        return found.user if found else None


def _check_link(
    revoked_at: datetime | None, last_used_at: datetime | None, expires_at: datetime, now: datetime
) -> None:
    """Why a link's code was not redeemed; raises the matching ``LoginLinkInvalid``."""
    if revoked_at is not None and last_used_at is not None:
        raise LoginLinkUsed("This sign-in link was used already", hint=_LINK_HINT)
    if revoked_at is not None:
        raise LoginLinkExpired("This sign-in link was replaced by a newer one", hint=_LINK_HINT)
    if expires_at <= now:
        raise LoginLinkExpired("This sign-in link has expired", hint=_LINK_HINT)


async def _insert_token(
    conn: AsyncConnection,
    user_id: str,
    name: str,
    *,
    kind: TokenKind,
    expires_at: datetime | None,
    prefix: str = TOKEN_PREFIX,
) -> tuple[str, ApiToken]:
    token = prefix + secrets.token_urlsafe(_TOKEN_BYTES)
    record = ApiToken(
        id=new_id("tok"),
        user_id=user_id,
        name=name,
        kind=kind,
        prefix=token[:_PREFIX_CHARS],
        created_at=utcnow(),
        last_used_at=None,
        expires_at=expires_at,
        revoked_at=None,
    )
    await conn.execute(
        api_tokens.insert().values(**record.model_dump(), token_hash=hash_token(token))
    )
    return token, record


_TOKEN_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.user_id,
    api_tokens.c.name,
    api_tokens.c.kind,
    api_tokens.c.prefix,
    api_tokens.c.created_at,
    api_tokens.c.last_used_at,
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
)
