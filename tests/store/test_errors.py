"""Store errors arrive as the exception tree, never as SQLAlchemy or driver errors: an unreachable
or stopped Postgres and a statement timeout are ``StoreUnavailable``, a SQLite file locked past
the busy timeout too, a violated key ``StoreConflict``, a statement the database refuses
``StoreError``. No message names SQL, parameters, hosts or paths; the cause is kept for the
server log."""

from __future__ import annotations

import sqlite3
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.errors import StoreConflict, StoreError, StoreUnavailable
from openinspect.store import Store
from openinspect.store.db import create_engine, migrate
from openinspect.store.users import UserStore
from tests.store.databases import pg_url, store_url
from tests.store.outage import relayed
from tests.store.records import session_record

__all__ = ["pg_url", "store_url"]
SID = "ses_0123456789abcdef"


def _says_nothing_internal(exc: StoreError, *secrets: str) -> None:
    text = f"{exc.message} {exc.hint}"
    for word in ("SELECT", "INSERT", "UPDATE", "sqlite", "asyncpg", "127.0.0.1", *secrets):
        assert word.lower() not in text.lower(), (word, text)
    assert exc.__cause__ is not None  # the driver's error, for the server log


async def test_a_postgres_nobody_listens_on_is_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql+asyncpg://openinspect:pw@127.0.0.1:1/openinspect"  # refused at once
    with pytest.raises(StoreUnavailable) as caught:
        await Store.open(url)
    assert caught.value.status == 503 and caught.value.retryable
    _says_nothing_internal(caught.value, ":1/", "openinspect:pw")
    assert isinstance(caught.value.__cause__, OSError)
    # The operator starting the server is told where and why, without the password.
    (said,) = [r.getMessage() for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert "127.0.0.1:1/openinspect" in said and "Connect call failed" in said
    assert ":pw@" not in said


@pytest.mark.postgres
async def test_a_postgres_that_stops_is_unavailable_and_back_when_it_is(pg_url: str) -> None:
    async with relayed(pg_url) as relay:
        store = await Store.open(relay.url)
        try:
            ada = await store.users.create(name="Ada", email="ada@example.com", role="admin")
            await relay.cut()  # the server stops: open connections drop, new ones are refused
            with pytest.raises(StoreUnavailable) as caught:
                await store.users.get(ada.id)
            _says_nothing_internal(caught.value, str(relay.port))
            await relay.start()  # and comes back: the next call works, nothing to restart
            assert await store.users.get(ada.id) == ada
        finally:
            await store.close()


@pytest.mark.postgres
async def test_a_statement_past_its_timeout_is_unavailable(pg_url: str) -> None:
    store = await Store.open(pg_url)
    try:
        async with store.engine.connect() as conn:
            await conn.execute(sa.text("SET statement_timeout = 50"))
            with pytest.raises(StoreUnavailable) as caught:
                await conn.execute(sa.text("SELECT pg_sleep(2)"))
        _says_nothing_internal(caught.value, "pg_sleep", "statement_timeout")
    finally:
        await store.close()


async def test_a_sqlite_file_locked_past_the_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "oi.db"
    url = f"sqlite+aiosqlite:///{path}"
    await (await Store.open(url)).close()  # the schema
    engine = create_engine(url, sqlite_busy_timeout_ms=100)
    users = UserStore(engine)
    holder = sqlite3.connect(path)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process writing, and not letting go
        with pytest.raises(StoreUnavailable) as caught:
            await users.create(name="Ada", email="ada@example.com", role="admin")
        _says_nothing_internal(caught.value, str(tmp_path), "locked")
        holder.rollback()
        assert (await users.create(name="Ada", email="ada@example.com", role="admin")).name
    finally:
        holder.close()
        await engine.dispose()


async def test_a_violated_key_is_a_conflict(store: Store) -> None:
    ada = await store.users.create(name="Ada", email="ada@example.com", role="admin")
    await store.sessions.create(session_record(SID, ada.id))
    with pytest.raises(StoreConflict) as twice:
        await store.sessions.create(session_record(SID, ada.id))  # the same id again
    assert twice.value.status == 409 and not twice.value.retryable
    _says_nothing_internal(twice.value, SID, "sessions")
    with pytest.raises(StoreConflict) as nobody:
        await store.sessions.create(session_record("ses_fedcba9876543210", "usr_nobody"))
    _says_nothing_internal(nobody.value, "usr_nobody", "foreign")
    # A conflict the store expects is still handled where it is expected.
    assert await store.webhooks.claim("github", "delivery-1", "push")
    assert not await store.webhooks.claim("github", "delivery-1", "push")


async def test_a_statement_the_database_refuses_is_a_store_error(store: Store) -> None:
    async with store.engine.connect() as conn:
        with pytest.raises(StoreError) as caught:
            await conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert type(caught.value) is StoreError and caught.value.status == 500
    _says_nothing_internal(caught.value, "no_such_table")


@pytest.mark.postgres
async def test_no_free_connection_in_time_is_unavailable(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_timeout_s=0.2)
    try:
        await migrate(engine)
        async with AsyncExitStack() as held:
            pool = engine.sync_engine.pool
            busy = pool.size() + engine.sync_engine.pool._max_overflow  # type: ignore[attr-defined]
            for _ in range(busy):  # every connection the pool may open, in use
                await held.enter_async_context(engine.connect())
            with pytest.raises(StoreUnavailable) as caught:
                await UserStore(engine).get("usr_nobody")
            _says_nothing_internal(caught.value, "QueuePool", "overflow")
        assert await UserStore(engine).get("usr_nobody") is None  # free again
    finally:
        await engine.dispose()
