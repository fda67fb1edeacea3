"""Identities with sealed OAuth tokens, and the API tokens of users (kinds, expiry, revocation)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from openinspect.domain.events import utcnow
from openinspect.errors import ConfigError, ConflictError
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.identities import NewUser, SignedIn, UserOAuthTokens
from openinspect.store.tables import api_tokens, identities

ACCESS = "ghu_access-token-SECRET-1"
REFRESH = "ghr_refresh-token-SECRET-1"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", sealer=Sealer(os.urandom(32))
    )
    try:
        yield opened
    finally:
        await opened.close()


def _new(name: str = "Ada Lovelace") -> NewUser:
    return NewUser(
        name=name,
        email="ada@example.com",
        git_name=name,
        git_email="1+ada@users.noreply.github.com",
        role="member",
    )


async def _sign_in(store: Store, subject: str = "1", login: str = "ada", **kw: Any) -> SignedIn:
    args: dict[str, Any] = {
        "provider": "github",
        "subject": subject,
        "login": login,
        "avatar_url": None,
        "tokens": UserOAuthTokens(ACCESS, utcnow() + timedelta(hours=8), REFRESH, "repo"),
        "new_user": _new(),
        "make_admin": False,
    } | kw
    return await store.identities.sign_in(**args)


async def test_first_sign_in_creates_the_user_then_updates_it(store: Store) -> None:
    first = await _sign_in(store)
    assert first.created
    assert first.user.role == "member"
    assert first.user.git_email == "1+ada@users.noreply.github.com"
    assert first.identity.login == "ada" and first.identity.has_token
    # Renamed on GitHub: same subject, same user, new login; role and git identity kept.
    await store.users.update_git_identity(first.user.id, git_name="A. L.")
    again = await _sign_in(store, login="ada-l", new_user=_new("Someone Else"))
    assert not again.created
    assert again.user.id == first.user.id
    assert again.identity.login == "ada-l"
    assert again.user.git_name == "A. L."
    assert await store.users.count() == 1
    promoted = await _sign_in(store, make_admin=True)
    assert promoted.user.role == "admin"


async def test_tokens_are_sealed_in_the_database(store: Store) -> None:
    signed = await _sign_in(store)
    async with store.engine.connect() as conn:
        row = (await conn.execute(identities.select())).one()
    assert row.access_token_enc and ACCESS not in row.access_token_enc
    assert row.refresh_token_enc and REFRESH not in row.refresh_token_enc
    tokens = await store.identities.tokens(signed.user.id, "github")
    assert tokens is not None
    assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)


async def test_a_ciphertext_moved_to_another_row_does_not_open(store: Store) -> None:
    ada = await _sign_in(store)
    bob = await _sign_in(store, subject="2", login="bob")
    async with store.engine.begin() as conn:
        sealed = (
            await conn.execute(
                sa.select(identities.c.access_token_enc).where(identities.c.user_id == ada.user.id)
            )
        ).scalar_one()
        await conn.execute(
            identities.update()
            .where(identities.c.user_id == bob.user.id)
            .values(access_token_enc=sealed)
        )
    with pytest.raises(ConfigError, match="wrong row"):
        await store.identities.tokens(bob.user.id, "github")
    await store.identities.set_tokens(bob.user.id, "github", None)
    assert await store.identities.tokens(bob.user.id, "github") is None


async def test_a_store_without_a_key_refuses_to_keep_tokens(tmp_path: Path) -> None:
    keyless = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite'}")
    try:
        with pytest.raises(ConfigError, match="without an encryption key"):
            await _sign_in(keyless)
    finally:
        await keyless.close()


async def test_api_tokens_expire_revoke_and_record_use(store: Store) -> None:
    user = await store.users.create(name="Ada", email="a@example.com", role="member")
    token, record = await store.users.mint_token(user.id, "script", kind="api")
    assert record.prefix == token[:8] and record.last_used_at is None
    found = await store.users.lookup(token)
    assert found is not None and found.user == user and found.token_id == record.id
    used = await store.users.get_token(record.id)
    assert used is not None and used.last_used_at is not None
    # A second use within the minute does not write again.
    await store.users.lookup(token)
    again = await store.users.get_token(record.id)
    assert again is not None and again.last_used_at == used.last_used_at

    expired = await store.users.create_token(
        user.id, "old", kind="web", expires_at=utcnow() - timedelta(seconds=1)
    )
    assert await store.users.authenticate(expired) is None
    assert {t.name for t in await store.users.tokens(user.id)} == {"script", "old"}
    assert await store.users.delete_expired_tokens(user.id) == 1
    assert [t.name for t in await store.users.tokens(user.id)] == ["script"]

    assert await store.users.revoke_token(record.id)
    assert not await store.users.revoke_token(record.id)
    assert await store.users.authenticate(token) is None
    assert await store.users.tokens(user.id) == []
    async with store.engine.connect() as conn:
        hashes = (await conn.execute(sa.select(api_tokens.c.token_hash))).scalars().all()
    assert token not in hashes


async def test_the_last_admin_cannot_be_demoted(store: Store) -> None:
    admin = await store.users.create(name="Root", email="r@example.com", role="admin")
    with pytest.raises(ConflictError, match="only admin"):
        await store.users.set_role(admin.id, "member")
    other = await store.users.create(name="Bo", email="b@example.com", role="member")
    assert (await store.users.set_role(other.id, "admin")).role == "admin"
    assert (await store.users.set_role(admin.id, "member")).role == "member"
