"""Repo secrets on SQLite and Postgres: values are sealed (the table holds none in clear) and
bound to their scope and name (a ciphertext copied into another row does not open); a box of a
repo gets the global secrets and the repo's, the repo's winning; listings carry no value; the
rules and a scope's limits are checked on every write, with nothing written when they refuse."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from openinspect.errors import ConfigError, SecretInvalid, SecretLimitReached
from openinspect.secrets.rules import GLOBAL, MAX_PER_SCOPE, SCOPE_MAX_BYTES, SecretScope
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.tables import secrets
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import session_record

TOKEN = "sk-SECRET-global-0123"
REPO_TOKEN = "sk-SECRET-repo-4567"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:  # noqa: F811 - the fixture
    opened = await Store.open(store_url, sealer=Sealer(os.urandom(32)))
    try:
        yield opened
    finally:
        await opened.close()


async def _repo(store: Store, name: str = "calc") -> SecretScope:
    admin = await store.users.create(name="Ada", email=f"ada-{name}@example.com", role="admin")
    repo = await store.repos.create(
        name=name, url=f"/srv/{name}", default_branch="main", created_by=admin.id
    )
    return SecretScope(repo.id)


async def test_values_are_sealed_and_a_repos_box_gets_global_and_its_own(store: Store) -> None:
    calc = await _repo(store)
    await store.secrets.put(GLOBAL, {"API_TOKEN": TOKEN, "SHARED": "global-value"}, by=None)
    await store.secrets.put(calc, {"API_TOKEN": REPO_TOKEN, "ONLY_REPO": "repo-only"}, by="usr_a")

    assert await store.secrets.values_for(None) == {"API_TOKEN": TOKEN, "SHARED": "global-value"}
    assert await store.secrets.values_for(calc.repo_id) == {
        "API_TOKEN": REPO_TOKEN,  # the repo's wins
        "SHARED": "global-value",
        "ONLY_REPO": "repo-only",
    }
    async with store.engine.connect() as conn:
        stored = (await conn.execute(sa.select(secrets))).all()
    assert len(stored) == 4
    assert not any(TOKEN in str(row) or REPO_TOKEN in str(row) for row in stored)

    listed = await store.secrets.listed()
    assert [(s.scope, s.name) for s in listed] == [
        ("global", "API_TOKEN"),
        ("global", "SHARED"),
        ("repo", "API_TOKEN"),
        ("repo", "ONLY_REPO"),
    ]
    assert not any(TOKEN in repr(s) or REPO_TOKEN in repr(s) for s in listed)
    assert [s.name for s in await store.secrets.listed([calc])] == ["API_TOKEN", "ONLY_REPO"]


async def test_a_session_gets_the_secrets_of_its_repo(store: Store) -> None:
    calc = await _repo(store)
    await store.secrets.put(GLOBAL, {"API_TOKEN": TOKEN}, by=None)
    await store.secrets.put(calc, {"API_TOKEN": REPO_TOKEN}, by=None)
    user = await store.users.create(name="Bo", email="bo@example.com", role="member")
    on_repo = session_record("ses_00000000000000aa", user.id).model_copy(
        update={"repo_id": calc.repo_id}
    )
    elsewhere = session_record("ses_00000000000000bb", user.id)
    for session in (on_repo, elsewhere):
        await store.sessions.create(session)
    assert await store.secrets.values_for_session(on_repo.id) == {"API_TOKEN": REPO_TOKEN}
    assert await store.secrets.values_for_session(elsewhere.id) == {"API_TOKEN": TOKEN}
    assert await store.secrets.values_for_session("ses_missing") == {"API_TOKEN": TOKEN}


async def test_a_ciphertext_moved_to_another_row_does_not_open(store: Store) -> None:
    calc = await _repo(store)
    await store.secrets.put(GLOBAL, {"API_TOKEN": TOKEN, "OTHER": "other-value"}, by=None)
    await store.secrets.put(calc, {"API_TOKEN": REPO_TOKEN}, by=None)
    async with store.engine.begin() as conn:
        sealed = (
            await conn.execute(
                sa.select(secrets.c.value).where(
                    secrets.c.scope == GLOBAL.key, secrets.c.name == "API_TOKEN"
                )
            )
        ).scalar_one()
        # Into another name of the same scope, and into the same name of another scope.
        await conn.execute(secrets.update().where(secrets.c.name == "OTHER").values(value=sealed))
    with pytest.raises(ConfigError, match="global secret OTHER cannot be opened"):
        await store.secrets.values_for(None)
    async with store.engine.begin() as conn:
        await conn.execute(secrets.delete().where(secrets.c.name == "OTHER"))
        await conn.execute(secrets.update().where(secrets.c.scope == calc.key).values(value=sealed))
    with pytest.raises(ConfigError) as refused:
        await store.secrets.values_for(calc.repo_id)
    assert TOKEN not in str(refused.value)


async def test_setting_again_replaces_and_deleting_removes(store: Store) -> None:
    [first] = await store.secrets.put(GLOBAL, {"API_TOKEN": TOKEN}, by="usr_a")
    [again] = await store.secrets.put(GLOBAL, {"API_TOKEN": "sk-rotated-999"}, by="usr_b")
    assert (again.id, again.created_at, again.created_by) == (
        first.id,
        first.created_at,
        "usr_a",
    )
    assert again.updated_by == "usr_b" and again.updated_at >= first.updated_at
    assert await store.secrets.values_for(None) == {"API_TOKEN": "sk-rotated-999"}
    assert await store.secrets.delete(GLOBAL, "API_TOKEN")
    assert not await store.secrets.delete(GLOBAL, "API_TOKEN")
    assert await store.secrets.values_for(None) == {}


async def test_the_rules_and_limits_refuse_a_change_whole(store: Store) -> None:
    for bad in ({"PATH": "/evil/bin"}, {"GOOD": TOKEN, "SHORT": "abc"}, {"NUL": "ab\x00cdef"}):
        with pytest.raises(SecretInvalid) as refused:
            await store.secrets.put(GLOBAL, bad, by=None)
        assert all(v not in refused.value.message for v in bad.values())
    assert await store.secrets.listed() == []

    many = {f"KEY_{n}": f"value-{n:04}" for n in range(MAX_PER_SCOPE)}
    await store.secrets.put(GLOBAL, many, by=None)
    with pytest.raises(SecretLimitReached, match="at most 100 secrets"):
        await store.secrets.put(GLOBAL, {"ONE_MORE": "value-more"}, by=None)
    await store.secrets.put(GLOBAL, {"KEY_0": "replaced-0"}, by=None)  # no more secrets

    calc = await _repo(store)
    big = "x" * 16_000
    fits = {f"BIG_{n}": big for n in range(SCOPE_MAX_BYTES // 16_100)}
    await store.secrets.put(calc, fits, by=None)
    with pytest.raises(SecretLimitReached, match="131,072 bytes"):
        await store.secrets.put(calc, {"BIG_LAST": big}, by=None)
    assert len(await store.secrets.listed([calc])) == len(fits)
