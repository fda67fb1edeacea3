"""The outbound side of the Slack thread store, on SQLite and Postgres: the state's version, the
status post decided once per thread, the outbox's delivery bookkeeping."""

from __future__ import annotations

import secrets

from openinspect.store import Store
from tests.store.conftest import store  # noqa: F401 - the fixture
from tests.store.records import session_record


async def _thread(store: Store) -> str:  # noqa: F811
    user = await store.users.create(name="Ada", email=f"{secrets.token_hex(3)}@e", role="admin")
    record = session_record(f"ses_{secrets.token_hex(8)}", user.id, repo_url="https://x/a/b")
    await store.sessions.create(record)
    async with store.engine.begin() as conn:
        assert await store.slack_threads.create(
            conn,
            session_id=record.id,
            team_id="T1",
            channel_id="C1",
            thread_ts="1700000000.000100",
            channel_type="channel",
            slack_user_id="U1",
        )
    return record.id


async def test_state_versions_and_delivery_bookkeeping(store: Store) -> None:  # noqa: F811
    threads = store.slack_threads
    session_id = await _thread(store)
    async with store.engine.begin() as conn:
        assert await threads.save_state(conn, session_id, {"step": "Thinking"}) == 1
        assert await threads.save_state(conn, "ses_missing", {}) == 0
        facts = await threads.session_facts(conn, session_id)
    assert facts is not None and facts.repo_url == "https://x/a/b"
    [waiting] = await threads.without_status()
    assert waiting.session_id == session_id and waiting.state == {"step": "Thinking"}
    assert await threads.stale() == []  # no status message yet

    async with store.engine.begin() as conn:
        assert await threads.enqueue_post(
            conn,
            key=f"status:{session_id}",
            team_id="T1",
            channel_id="C1",
            thread_ts=waiting.thread_ts,
            kind="status",
            body={"text": "Thinking", "version": 1},
            session_id=session_id,
        )
    assert await threads.without_status() == []  # decided once
    [post] = await threads.unposted()
    assert await threads.begin_attempt(post.id) == 0
    assert await threads.begin_attempt(post.id) == 1
    await threads.record_posted(post, "1700000001.000200")
    assert await threads.unposted() == []
    thread = await threads.by_session(session_id)
    assert thread is not None
    assert (thread.status_ts, thread.version, thread.delivered_version) == (
        "1700000001.000200",
        1,
        1,
    )
    async with store.engine.begin() as conn:
        assert await threads.save_state(conn, session_id, {"step": "Done"}) == 2
    [stale] = await threads.stale()
    await threads.mark_delivered(session_id, 2)
    await threads.mark_delivered(session_id, 1)  # never moves back
    assert await threads.stale() == []
    thread = await threads.by_session(session_id)
    assert thread is not None and thread.delivered_version == 2 and stale.version == 2


async def test_a_failed_post_is_never_offered_again(store: Store) -> None:  # noqa: F811
    threads = store.slack_threads
    async with store.engine.begin() as conn:
        await threads.enqueue_post(
            conn, key="notice:x", team_id="T1", channel_id="C9", kind="notice", body={"text": "x"}
        )
    [post] = await threads.unposted()
    await threads.record_failed(post.id, "channel_not_found" + "x" * 100)
    assert await threads.unposted() == []
    failed = await threads.post("notice:x")
    assert failed is not None and failed.error_code is not None and len(failed.error_code) == 64
