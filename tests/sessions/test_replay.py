"""Replay to a joining client is bounded by size as well as count, on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.domain.events import SandboxLog
from openinspect.sessions.replay import join_replay, newest_window
from openinspect.store import Store
from tests.store.records import session_record

LINE_CHARS = 10_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    yield opened
    await opened.close()


async def _log_of(store: Store, count: int) -> str:
    user = await store.users.create(name="Ada", email="ada@example.com", role="member")
    session = session_record("ses_1", user.id)
    await store.sessions.create(session)
    events = [
        SandboxLog(session_id=session.id, seq=i, source="setup", line=f"{i}:" + "x" * LINE_CHARS)
        for i in range(1, count + 1)
    ]
    await store.events.append_many(session.id, events)
    return session.id


async def test_a_fresh_join_gets_the_newest_events_that_fit(store: Store) -> None:
    sid = await _log_of(store, 50)
    replay = await join_replay(store.events, sid, None, max_events=500, max_chars=55_000)
    assert [e.seq for e in replay.events] == [46, 47, 48, 49, 50]  # ~10.2 kB each
    assert replay.has_more and replay.reset
    by_count = await join_replay(store.events, sid, None, max_events=3, max_chars=10**9)
    assert [e.seq for e in by_count.events] == [48, 49, 50] and by_count.has_more


async def test_the_newest_event_comes_even_if_it_alone_is_too_big(store: Store) -> None:
    sid = await _log_of(store, 2)
    events, has_more = await newest_window(store.events, sid, max_events=10, max_chars=10)
    assert [e.seq for e in events] == [2] and has_more


async def test_a_resume_that_fits_gets_everything_after_it(store: Store) -> None:
    sid = await _log_of(store, 20)
    replay = await join_replay(store.events, sid, 17, max_events=500, max_chars=10**6)
    assert [e.seq for e in replay.events] == [18, 19, 20]
    assert not replay.reset and not replay.has_more
    # Too far behind by size: start over from the newest window.
    behind = await join_replay(store.events, sid, 0, max_events=500, max_chars=35_000)
    assert behind.reset and [e.seq for e in behind.events] == [18, 19, 20]


async def test_history_pages_are_bounded_by_size(store: Store) -> None:
    sid = await _log_of(store, 30)
    events, has_more = await newest_window(
        store.events, sid, before_seq=21, max_events=200, max_chars=25_000
    )
    assert [e.seq for e in events] == [19, 20] and has_more
