"""The stored conversation on SQLite and Postgres: rows in order, a write from a position drops
what was after it, a session's delete takes its conversation along."""

from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa

from openinspect.errors import StoreError
from openinspect.store import Store
from openinspect.store.tables import conversation_messages
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import session_record


async def _session(store: Store) -> str:
    user = await store.users.create(name="Ada", email=f"{secrets.token_hex(3)}@e", role="admin")
    record = session_record(f"ses_{secrets.token_hex(8)}", user.id)
    await store.sessions.create(record)
    return record.id


async def test_conversation_rows_append_and_load_in_order(store: Store) -> None:
    sid, other = await _session(store), await _session(store)
    assert await store.sessions.load_conversation(sid) == []
    rows = [f'{{"n":{i}}}' for i in range(12)]
    for start in range(0, 12, 3):  # appended a step at a time, as the agent saves
        await store.sessions.save_conversation(sid, start, rows[start : start + 3])
    await store.sessions.save_conversation(other, 0, ['{"other":true}'])
    assert await store.sessions.load_conversation(sid) == rows
    # Ordered by position, not by text or insertion: position 10 sorts after 9.
    assert (await store.sessions.load_conversation(sid))[9:11] == ['{"n":9}', '{"n":10}']
    assert await store.sessions.load_conversation(other) == ['{"other":true}']


async def test_a_write_from_a_position_replaces_everything_after_it(store: Store) -> None:
    sid = await _session(store)
    await store.sessions.save_conversation(sid, 0, ["a", "b", "c", "d"])
    await store.sessions.save_conversation(sid, 2, ["C"])
    assert await store.sessions.load_conversation(sid) == ["a", "b", "C"]
    await store.sessions.save_conversation(sid, 1, [])
    assert await store.sessions.load_conversation(sid) == ["a"]


async def test_a_failed_write_leaves_the_stored_conversation_as_it_was(store: Store) -> None:
    """The delete and the insert are one transaction: a write that cannot insert (here a row
    the database refuses) keeps the old rows."""
    sid = await _session(store)
    await store.sessions.save_conversation(sid, 0, ["a", "b"])
    with pytest.raises(StoreError):
        await store.sessions.save_conversation(sid, 1, ["B", None])  # type: ignore[list-item]
    assert await store.sessions.load_conversation(sid) == ["a", "b"]


async def test_deleting_a_session_deletes_its_conversation(store: Store) -> None:
    sid = await _session(store)
    await store.sessions.save_conversation(sid, 0, ["a", "b"])
    async with store.engine.begin() as conn:  # foreign keys are on, SQLite too (store.db)
        await conn.execute(sa.text("DELETE FROM participants WHERE session_id = :s"), {"s": sid})
        await conn.execute(sa.text("DELETE FROM sessions WHERE id = :s"), {"s": sid})
    async with store.engine.connect() as conn:
        left = await conn.execute(
            sa.select(sa.func.count()).where(conversation_messages.c.session_id == sid)
        )
        assert left.scalar_one() == 0
