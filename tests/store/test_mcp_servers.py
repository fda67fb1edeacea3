"""MCP servers on SQLite and Postgres: an http server's headers are sealed (the table holds
none in clear) and bound to their scope and name; a prompt on a repo gets the enabled global
servers and the repo's, the repo's winning by name; listings carry no header value; replacing a
server without headers keeps them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from openinspect.errors import ConfigError
from openinspect.secrets.rules import GLOBAL, SecretScope
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.tables import mcp_servers
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures

TOKEN = "Bearer mcp-CRED-store-0123456789"
URL = "https://tools.example.com/mcp"


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


async def test_headers_are_sealed_and_a_repo_gets_global_and_its_own(store: Store) -> None:
    calc = await _repo(store)
    auth = {"Authorization": TOKEN}
    await store.mcp_servers.put(GLOBAL, "tracker", transport="http", url=URL, headers=auth, by=None)
    await store.mcp_servers.put(GLOBAL, "docs", transport="http", url=URL, by=None)
    await store.mcp_servers.put(
        calc, "docs", transport="stdio", command=["python3", "docs.py"], by="usr_a"
    )
    await store.mcp_servers.put(GLOBAL, "off", transport="http", url=URL, enabled=False, by=None)

    assert [(s.name, s.transport) for s in await store.mcp_servers.for_repo(None)] == [
        ("docs", "http"),
        ("tracker", "http"),
    ]
    got = {s.name: s for s in await store.mcp_servers.for_repo(calc.repo_id)}
    assert set(got) == {"docs", "tracker"}
    assert got["docs"].transport == "stdio" and got["docs"].command == ("python3", "docs.py")
    assert got["tracker"].headers == auth

    async with store.engine.connect() as conn:
        raw = (await conn.execute(sa.select(mcp_servers))).all()
    assert TOKEN not in repr(raw) and "CRED-store" not in repr(raw)
    listed = await store.mcp_servers.listed()
    assert all(not s.headers for s in listed)
    assert [s.header_names for s in listed if s.name == "tracker"] == [("Authorization",)]

    # Replacing without headers keeps them; {} removes them.
    await store.mcp_servers.put(GLOBAL, "tracker", transport="http", url=URL, tools=["a"], by=None)
    [kept] = [s for s in await store.mcp_servers.for_repo(None) if s.name == "tracker"]
    assert kept.headers == auth and kept.tools == ("a",)
    await store.mcp_servers.put(GLOBAL, "tracker", transport="http", url=URL, headers={}, by=None)
    [gone] = [s for s in await store.mcp_servers.for_repo(None) if s.name == "tracker"]
    assert gone.headers == {} and gone.header_names == ()

    assert await store.mcp_servers.delete(calc, "docs")
    assert not await store.mcp_servers.delete(calc, "docs")


async def test_headers_moved_to_another_row_do_not_open(store: Store) -> None:
    auth = {"Authorization": TOKEN}
    await store.mcp_servers.put(GLOBAL, "a", transport="http", url=URL, headers=auth, by=None)
    await store.mcp_servers.put(GLOBAL, "b", transport="http", url=URL, headers={"X": "y"}, by=None)
    async with store.engine.begin() as conn:
        sealed = (
            await conn.execute(sa.select(mcp_servers.c.headers).where(mcp_servers.c.name == "a"))
        ).scalar_one()
        await conn.execute(
            mcp_servers.update().where(mcp_servers.c.name == "b").values(headers=sealed)
        )
    with pytest.raises(ConfigError) as caught:
        await store.mcp_servers.for_repo(None)
    assert "MCP server b" in caught.value.message and TOKEN not in caught.value.message
