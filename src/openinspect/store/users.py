"""Users and their API tokens. Tokens are stored as SHA-256 hashes only."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.domain.models import Role, User
from openinspect.store.tables import api_tokens, users

TOKEN_PREFIX = "oi_"  # noqa: S105 - a prefix, not a secret
_TOKEN_BYTES = 32


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

    async def get(self, user_id: str) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(users.select().where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
            )

    async def create_token(self, user_id: str, name: str) -> str:
        """Mint an API token for a user. Returns the token; only its hash is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        async with self._engine.begin() as conn:
            await conn.execute(
                api_tokens.insert().values(
                    id=new_id("tok"),
                    user_id=user_id,
                    name=name,
                    token_hash=hash_token(token),
                    prefix=token[:8],
                    created_at=utcnow(),
                )
            )
        return token

    async def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None if it is unknown or revoked."""
        digest = hash_token(token)
        query = (
            sa.select(users, api_tokens.c.token_hash)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        # The lookup is by hash; compare again in constant time so that no code path
        # ever decides on a token with an early-exit comparison.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        data = dict(row._mapping)
        data.pop("token_hash")
        return User.model_validate(data)
