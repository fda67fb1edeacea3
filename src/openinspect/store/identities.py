"""External identities of users (a GitHub account today) and their OAuth tokens, sealed at rest.

One row per (user, provider); ``(provider, subject)`` is unique, the subject being the provider's
stable account id (GitHub's numeric user id, not the login, which can be renamed). The tokens are
sealed with ``store.crypto.Sealer`` under a purpose naming the row and column, so a ciphertext
copied elsewhere does not open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.domain.models import Role, User
from openinspect.errors import StoreConflict
from openinspect.store.crypto import Sealer, required
from openinspect.store.tables import identities, users


@dataclass(frozen=True)
class Identity:
    """A user's account at a provider, without its secrets."""

    user_id: str
    provider: str
    subject: str
    login: str
    avatar_url: str | None
    scopes: str | None
    has_token: bool
    access_token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class UserOAuthTokens:
    """A user's OAuth tokens in clear (in memory only)."""

    access_token: str
    expires_at: datetime | None = None
    refresh_token: str | None = None
    scopes: str | None = None


@dataclass(frozen=True)
class NewUser:
    """The user to create when an identity signs in for the first time."""

    name: str
    email: str
    git_name: str
    git_email: str
    role: Role


@dataclass(frozen=True)
class SignedIn:
    user: User
    identity: Identity
    created: bool


def _purpose(user_id: str, provider: str, column: str) -> str:
    return f"identity:{user_id}:{provider}:{column}"


def _identity(row: sa.Row[Any]) -> Identity:
    m = row._mapping
    return Identity(
        user_id=m["user_id"],
        provider=m["provider"],
        subject=m["subject"],
        login=m["login"],
        avatar_url=m["avatar_url"],
        scopes=m["scopes"],
        has_token=m["access_token_enc"] is not None,
        access_token_expires_at=m["access_token_expires_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class IdentityStore:
    def __init__(self, engine: AsyncEngine, sealer: Sealer | None) -> None:
        self._engine = engine
        self._sealer = sealer

    @property
    def sealer(self) -> Sealer:
        return required(self._sealer, "OAuth tokens")

    async def get(self, user_id: str, provider: str) -> Identity | None:
        query = identities.select().where(
            identities.c.user_id == user_id, identities.c.provider == provider
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _identity(row) if row else None

    async def find(self, provider: str, subject: str) -> Identity | None:
        query = identities.select().where(
            identities.c.provider == provider, identities.c.subject == subject
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _identity(row) if row else None

    async def of_provider(self, provider: str) -> dict[str, Identity]:
        """Every identity at ``provider``, by user id."""
        query = identities.select().where(identities.c.provider == provider)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {r.user_id: _identity(r) for r in rows}

    async def sign_in(
        self,
        *,
        provider: str,
        subject: str,
        login: str,
        avatar_url: str | None,
        tokens: UserOAuthTokens | None,
        new_user: NewUser,
        make_admin: bool,
    ) -> SignedIn:
        """Create or update the user of an identity, in one transaction: a first sign-in
        creates the user from ``new_user``; a later one refreshes the login, avatar and tokens
        and keeps the user's role and git identity (``make_admin`` promotes them)."""
        try:
            return await self._sign_in(
                provider, subject, login, avatar_url, tokens, new_user, make_admin
            )
        except StoreConflict:
            # Two first sign-ins of one account raced; the other created the row. Update it.
            return await self._sign_in(
                provider, subject, login, avatar_url, tokens, new_user, make_admin
            )

    async def _sign_in(
        self,
        provider: str,
        subject: str,
        login: str,
        avatar_url: str | None,
        tokens: UserOAuthTokens | None,
        new_user: NewUser,
        make_admin: bool,
    ) -> SignedIn:
        now = utcnow()
        async with self._engine.begin() as conn:
            existing = (
                await conn.execute(
                    sa.select(identities.c.user_id).where(
                        identities.c.provider == provider, identities.c.subject == subject
                    )
                )
            ).first()
            created = existing is None
            if existing is None:
                user_id = new_id("usr")
                await conn.execute(
                    users.insert().values(
                        id=user_id,
                        name=new_user.name,
                        email=new_user.email,
                        git_name=new_user.git_name,
                        git_email=new_user.git_email,
                        role="admin" if make_admin else new_user.role,
                        created_at=now,
                    )
                )
                await conn.execute(
                    identities.insert().values(
                        user_id=user_id,
                        provider=provider,
                        subject=subject,
                        login=login,
                        avatar_url=avatar_url,
                        created_at=now,
                        updated_at=now,
                        **self._token_values(user_id, provider, tokens),
                    )
                )
            else:
                user_id = existing.user_id
                values = {"login": login, "avatar_url": avatar_url, "updated_at": now}
                if tokens is not None:
                    values |= self._token_values(user_id, provider, tokens)
                await conn.execute(
                    identities.update()
                    .where(identities.c.user_id == user_id, identities.c.provider == provider)
                    .values(**values)
                )
                if make_admin:
                    await conn.execute(
                        users.update().where(users.c.id == user_id).values(role="admin")
                    )
            user, identity = await _load(conn, user_id, provider)
        return SignedIn(user, identity, created)

    def _token_values(
        self, user_id: str, provider: str, tokens: UserOAuthTokens | None
    ) -> dict[str, Any]:
        if tokens is None:
            return {
                "access_token_enc": None,
                "access_token_expires_at": None,
                "refresh_token_enc": None,
                "scopes": None,
            }
        sealer = self.sealer
        refresh = tokens.refresh_token
        return {
            "access_token_enc": sealer.seal(
                tokens.access_token, _purpose(user_id, provider, "access")
            ),
            "access_token_expires_at": tokens.expires_at,
            "refresh_token_enc": (
                sealer.seal(refresh, _purpose(user_id, provider, "refresh")) if refresh else None
            ),
            "scopes": tokens.scopes,
        }

    async def tokens(self, user_id: str, provider: str) -> UserOAuthTokens | None:
        """The user's OAuth tokens in clear; None if there are none. Raises ``ConfigError``
        when they cannot be decrypted (the key changed, or the row was tampered with)."""
        query = sa.select(
            identities.c.access_token_enc,
            identities.c.access_token_expires_at,
            identities.c.refresh_token_enc,
            identities.c.scopes,
        ).where(identities.c.user_id == user_id, identities.c.provider == provider)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.access_token_enc is None:
            return None
        sealer = self.sealer
        return UserOAuthTokens(
            access_token=sealer.open(row.access_token_enc, _purpose(user_id, provider, "access")),
            expires_at=row.access_token_expires_at,
            refresh_token=(
                sealer.open(row.refresh_token_enc, _purpose(user_id, provider, "refresh"))
                if row.refresh_token_enc
                else None
            ),
            scopes=row.scopes,
        )

    async def set_tokens(self, user_id: str, provider: str, tokens: UserOAuthTokens | None) -> None:
        """Replace the user's tokens (after a refresh), or forget them (``None``)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                identities.update()
                .where(identities.c.user_id == user_id, identities.c.provider == provider)
                .values(updated_at=utcnow(), **self._token_values(user_id, provider, tokens))
            )


async def _load(conn: AsyncConnection, user_id: str, provider: str) -> tuple[User, Identity]:
    user_row = (await conn.execute(users.select().where(users.c.id == user_id))).one()
    identity_row = (
        await conn.execute(
            identities.select().where(
                identities.c.user_id == user_id, identities.c.provider == provider
            )
        )
    ).one()
    return User.model_validate(user_row._mapping), _identity(identity_row)
