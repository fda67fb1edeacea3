"""The global event feed: positions commit in order, reads see everything once, cursors claim."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import sqlalchemy as sa

from openinspect.domain.events import AgentText, Event, WarningEvent
from openinspect.store import Store
from openinspect.store import feed as feed_module
from openinspect.store.tables import events
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import session_record

SESSIONS = 8
EVENTS_PER_SESSION = 40


async def new_sessions(store: Store, count: int) -> list[str]:
    user = await store.users.create(name="Ada", email=f"{secrets.token_hex(3)}@e", role="admin")
    ids = []
    for _ in range(count):
        record = session_record(f"ses_{secrets.token_hex(8)}", user.id)
        await store.sessions.create(record)
        ids.append(record.id)
    return ids


def text(session_id: str, seq: int) -> Event:
    return AgentText(session_id=session_id, seq=seq, part_id="p", text=f"{session_id} {seq}")


async def test_an_append_waits_for_the_one_before_it_to_commit(store: Store) -> None:
    """The property a reader relies on: while one append's transaction is open, a later append
    cannot commit a higher position, so a reader never sees N+1 before N. (With a database
    sequence, B would commit 2 while A still held 1.)"""
    first, second = await new_sessions(store, 2)
    async with store.engine.connect() as conn:
        transaction = await conn.begin()
        pos_a = await feed_module.reserve(conn)
        await conn.execute(
            events.insert().values(
                session_id=first, seq=1, type="agent-text", prompt_id=None,
                ts=text(first, 1).ts, data=text(first, 1).model_dump_json(), pos=pos_a,
            )
        )  # fmt: skip
        later = asyncio.create_task(store.events.append(text(second, 1)))
        await asyncio.sleep(0.5)
        assert not later.done()  # held behind A's open transaction
        assert await store.feed.read(0, 10) == []
        await transaction.commit()
    pos_b = (await asyncio.wait_for(later, 15)).pos
    assert pos_b == pos_a + 1
    assert [(e.pos, e.event.session_id) for e in await store.feed.read(0, 10)] == [
        (pos_a, first),
        (pos_b, second),
    ]


async def test_a_tailing_reader_sees_every_concurrent_append_once_in_order(store: Store) -> None:
    """Many sessions append at once while a reader tails the feed the way a consumer does
    (read after the last position seen): it ends with every event exactly once, positions
    rising, and each session's events in seq order."""
    ids = await new_sessions(store, SESSIONS)
    seen: list[feed_module.FeedEntry] = []
    done = asyncio.Event()

    async def writer(session_id: str) -> None:
        for seq in range(1, EVENTS_PER_SESSION + 1):
            await store.events.append(text(session_id, seq))

    async def reader() -> None:
        after = 0
        while True:
            finished = done.is_set()
            batch = await store.feed.read(after, 25)
            seen.extend(batch)
            after = batch[-1].pos if batch else after
            if finished and not batch:
                return
            await asyncio.sleep(0)

    tail = asyncio.create_task(reader())
    await asyncio.gather(*(writer(s) for s in ids))
    done.set()
    await asyncio.wait_for(tail, 60)

    positions = [e.pos for e in seen]
    assert positions == sorted(set(positions))
    assert len(seen) == SESSIONS * EVENTS_PER_SESSION
    for session_id in ids:
        seqs = [e.event.seq for e in seen if e.event.session_id == session_id]
        assert seqs == list(range(1, EVENTS_PER_SESSION + 1))
    assert await store.feed.head() == positions[-1]


async def test_types_filter_and_limits(store: Store) -> None:
    (session_id,) = await new_sessions(store, 1)
    await store.events.append(text(session_id, 1))
    await store.events.append(
        WarningEvent(session_id=session_id, seq=2, code="c", message="careful")
    )
    await store.events.append(text(session_id, 3))
    warnings = await store.feed.read(0, 10, types=["warning"])
    assert [e.event.seq for e in warnings] == [2]
    assert [e.event.seq for e in await store.feed.read(0, 2)] == [1, 2]
    with pytest.raises(ValueError, match="unknown or ephemeral"):
        await store.feed.read(0, 10, types=["agent-text-delta"])
    with pytest.raises(ValueError, match="unknown or ephemeral"):
        await store.feed.read(0, 10, types=["no-such-type"])
    with pytest.raises(ValueError, match="limit"):
        await store.feed.read(0, feed_module.READ_LIMIT_MAX + 1)


async def test_a_filtered_claim_moves_past_events_it_does_not_want(store: Store) -> None:
    """A consumer of warnings only is not stuck re-reading text events forever: its cursor
    moves to the committed horizon."""
    (session_id,) = await new_sessions(store, 1)
    await store.feed.cursor("warnings", start="beginning")
    for seq in range(1, 4):
        await store.events.append(text(session_id, seq))
    async with store.feed.claim("warnings") as claim:
        assert claim is not None
        batch = await claim.read(10, types=["warning"])
        assert batch.entries == []
        claim.advance(batch.upto)
    assert await store.feed.cursor("warnings") == await store.feed.head() == 3


async def test_cursors_start_at_the_end_or_the_beginning_and_validate_names(store: Store) -> None:
    (session_id,) = await new_sessions(store, 1)
    await store.events.append(text(session_id, 1))
    await store.events.append(text(session_id, 2))
    assert await store.feed.cursor("late") == 2
    assert await store.feed.cursor("history", start="beginning") == 0
    assert await store.feed.cursor("late", start="beginning") == 2  # an existing cursor stays
    assert await store.feed.commit("late", 1, expected=0) is False
    assert await store.feed.commit("late", 3, expected=2) is True
    assert await store.feed.cursor("late") == 3
    for bad in ["", "Slack", "a b", "x" * 101, "../etc", "-lead"]:
        with pytest.raises(ValueError, match="invalid feed consumer name"):
            await store.feed.cursor(bad)


async def test_a_failed_claim_keeps_the_cursor_and_the_effects_out(store: Store) -> None:
    (session_id,) = await new_sessions(store, 1)
    await store.feed.cursor("c", start="beginning")
    await store.events.append(text(session_id, 1))
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE effects (pos BIGINT PRIMARY KEY)"))

    async def failing_handler() -> None:
        async with store.feed.claim("c") as claim:
            assert claim is not None
            batch = await claim.read(10)
            await claim.conn.execute(sa.text("INSERT INTO effects VALUES (:p)"), {"p": 1})
            claim.advance(batch.upto)
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await failing_handler()
    assert await store.feed.cursor("c") == 0
    async with store.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT COUNT(*) FROM effects"))).scalar_one() == 0


async def test_positions_are_never_reused_after_a_session_is_deleted(store: Store) -> None:
    first, second = await new_sessions(store, 2)
    await store.events.append(text(first, 1))
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM sessions WHERE id = :id"), {"id": first})
    assert (await store.events.append(text(second, 1))).pos == 2


@pytest.mark.postgres
async def test_a_second_claim_on_postgres_sees_the_cursor_busy(pg_url: str) -> None:  # noqa: F811
    """Two stores (two pools, like two replicas): while one holds the claim, the other gets
    None at once instead of waiting, and gets the claim once the first commits."""
    one, two = await Store.open(pg_url), await Store.open(pg_url, run_migrations=False)
    try:
        await one.feed.cursor("c")
        async with one.feed.claim("c") as held:
            assert held is not None
            held.advance(5)
            async with two.feed.claim("c") as other:
                assert other is None
        async with two.feed.claim("c") as after:
            assert after is not None and after.pos == 5
    finally:
        await one.close()
        await two.close()
