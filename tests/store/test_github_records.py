"""Session branches, pull requests and webhook deliveries in the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from openinspect.domain.events import utcnow
from openinspect.domain.models import Author, Prompt, PullRequestRecord
from openinspect.store import Store
from tests.store.records import session_record


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    yield opened
    await opened.close()


async def _session(store: Store) -> str:
    user = await store.users.create(name="Ada", email="ada@example.com", role="member")
    session = session_record("ses_1", user.id, "https://github.com/o/r.git")
    await store.sessions.create(session)
    return session.id


async def test_branches_are_recorded_per_session(store: Store) -> None:
    sid = await _session(store)
    assert await store.branches.names(sid) == frozenset()
    await store.branches.record(sid, "openinspect/1", "a" * 40)
    await store.branches.record(sid, "openinspect/1-docs", "b" * 40)
    await store.branches.record(sid, "openinspect/1", "c" * 40)
    assert await store.branches.names(sid) == {"openinspect/1", "openinspect/1-docs"}


async def _save(store: Store, sid: str, title: str) -> PullRequestRecord:
    return await store.pulls.save(
        session_id=sid,
        repo="o/r",
        number=7,
        url="https://github.com/o/r/pull/7",
        branch="openinspect/1",
        base="main",
        title=title,
        state="open",
        draft=False,
        opened_as="user",
        author_login="ada",
    )


async def test_one_pull_request_per_branch_and_state_from_webhooks(store: Store) -> None:
    sid = await _session(store)
    first = await _save(store, sid, "First")
    second = await _save(store, sid, "Second")
    assert first.id == second.id
    assert second.title == "Second"
    assert [p.id for p in await store.pulls.for_session(sid)] == [first.id]
    merged = await store.pulls.set_state("O/R", 7, "merged")
    assert merged is not None
    assert merged.state == "merged"
    assert await store.pulls.set_state("o/r", 8, "closed") is None


async def test_a_delivery_is_claimed_once(store: Store) -> None:
    assert await store.webhooks.claim("github", "d-1", "pull_request")
    assert not await store.webhooks.claim("github", "d-1", "pull_request")
    assert await store.webhooks.claim("github", "d-2", "pull_request")
    await store.webhooks.release("github", "d-1")
    assert await store.webhooks.claim("github", "d-1", "pull_request")
    assert await store.webhooks.prune(timedelta(days=14)) == 0


async def test_a_session_list_knows_creators_and_how_the_newest_prompt_ended(
    store: Store,
) -> None:
    sid = await _session(store)
    session = await store.sessions.get(sid)
    assert session is not None
    author = Author.of((await store.users.get_many([session.creator_id]))[session.creator_id])
    for minute, status in ((1, "success"), (2, "error")):
        prompt = Prompt(
            id=f"prm_{minute}",
            session_id=sid,
            author=author,
            content="x",
            model=None,
            effort=None,
            client_request_id=None,
            status=status,
            error_code="model_failed" if status == "error" else None,
            error_message=None,
            created_at=utcnow() + timedelta(minutes=minute),
            started_at=None,
            finished_at=None,
        )
        await store.prompts.create(prompt, f"fp{minute}")
    assert await store.prompts.last_outcomes([sid, "ses_none"]) == {
        sid: ("error", "model_failed", None)
    }
    assert await store.prompts.last_outcomes([]) == {}
    assert await store.users.get_many([]) == {}
