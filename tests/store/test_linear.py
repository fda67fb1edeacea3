"""The Linear agent's rows on SQLite and Postgres: installs keep their tokens sealed (the table
holds no token in clear, a row copied to another workspace does not open), a second install
replaces the tokens, agent sessions are written once and tied to one session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from openinspect.domain.events import utcnow
from openinspect.errors import ConfigError
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.tables import linear_installs
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import session_record

ACCESS = "lin_oauth_SECRET-access-1"
REFRESH = "lin_refresh_SECRET-refresh-1"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:  # noqa: F811 - the fixture
    opened = await Store.open(store_url, sealer=Sealer(os.urandom(32)))
    try:
        yield opened
    finally:
        await opened.close()


async def _install(store: Store, org: str = "org-1", access: str = ACCESS) -> None:
    await store.linear.save_install(
        org_id=org,
        org_name="Acme",
        app_user_id="app-1",
        access_token=access,
        refresh_token=REFRESH,
        expires_at=utcnow() + timedelta(hours=1),
        scopes="read write",
        installed_by=None,
    )


async def test_tokens_are_sealed_and_bound_to_their_workspace(store: Store) -> None:
    await _install(store)
    found = await store.linear.install("org-1")
    assert found is not None
    assert (found.access_token, found.refresh_token) == (ACCESS, REFRESH)
    assert ACCESS not in repr(found) and found.info.org_name == "Acme"
    async with store.engine.connect() as conn:
        raw = (await conn.execute(sa.select(linear_installs))).one()._mapping
    assert ACCESS not in str(dict(raw)) and REFRESH not in str(dict(raw))
    # A sealed token copied into another workspace's row does not open there.
    await _install(store, "org-2", "lin_oauth_other")
    async with store.engine.begin() as conn:
        await conn.execute(
            linear_installs.update()
            .where(linear_installs.c.org_id == "org-2")
            .values(access_token=raw["access_token"])
        )
    with pytest.raises(ConfigError):
        await store.linear.install("org-2")


async def test_installing_again_replaces_the_tokens(store: Store) -> None:
    await _install(store)
    await _install(store, access="lin_oauth_new")
    found = await store.linear.install("org-1")
    assert found is not None and found.access_token == "lin_oauth_new"
    assert [i.org_id for i in await store.linear.installs()] == ["org-1"]
    await store.linear.update_tokens(
        "org-1", access_token="lin_oauth_3", refresh_token=None, expires_at=None
    )
    again = await store.linear.install("org-1")
    assert again is not None and again.access_token == "lin_oauth_3"
    assert again.refresh_token is None and again.info.expires_at is None
    assert await store.linear.install("nope") is None


async def test_an_agent_session_is_written_once_and_tied_to_one_session(store: Store) -> None:
    admin = await store.users.add(name="ada", email="ada@example.com", role="admin")
    async with store.engine.begin() as conn:
        made = await store.linear.create_session(
            conn,
            agent_session_id="as-1",
            org_id="org-1",
            issue_id="i-1",
            issue_identifier="ENG-1",
            issue_url="https://linear.app/x/issue/ENG-1",
            linear_user_id="u-1",
        )
        again = await store.linear.create_session(
            conn,
            agent_session_id="as-1",
            org_id="org-1",
            issue_id=None,
            issue_identifier=None,
            issue_url=None,
            linear_user_id=None,
        )
    assert made and not again
    await store.linear.await_repo("as-1", {"inbox_id": "inb_1", "asked": 1})
    waiting = await store.linear.session("as-1")
    assert waiting is not None and waiting.status == "awaiting_repo"
    assert waiting.state == {"pending": {"inbox_id": "inb_1", "asked": 1}}
    assert waiting.issue_identifier == "ENG-1"
    first, second = "ses_00000001aaaa", "ses_00000002bbbb"
    for session_id in (first, second):
        await store.sessions.create(session_record(session_id, admin.id))
    assert await store.linear.link("as-1", first)
    assert await store.linear.link("as-1", first)  # again: the same session
    assert not await store.linear.link("as-1", second)
    tied = await store.linear.by_session(first)
    assert tied is not None and tied.status == "active" and tied.state == {}
    async with store.engine.begin() as conn:
        await store.linear.save_state(conn, "as-1", {"prompt_id": "p1"})
    await store.linear.set_status("as-1", "stopped")
    found = await store.linear.session("as-1")
    assert found is not None and found.state == {"prompt_id": "p1"} and found.status == "stopped"
