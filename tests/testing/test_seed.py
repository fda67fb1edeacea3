"""Seeded users and histories are real rows that the API reads like any other."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from openinspect.domain.events import (
    Event,
    SessionCreated,
    ToolCall,
    ToolResult,
    dump_event,
)
from openinspect.domain.models import Author
from openinspect.store import Store
from openinspect.testing.seed import add_user, seed_history, synthetic_history
from tests.store.records import session_record


async def test_history_is_gap_free_and_appended_after_the_existing_log(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    store = await Store.open(url)
    user, token = await add_user(url, "Grace Hopper")
    session = session_record("ses_seeded", user.id, "/tmp/x")
    try:
        await store.sessions.create(session)
        created = SessionCreated(
            session_id=session.id,
            seq=1,
            title="t",
            repo_url="/tmp/x",
            base_branch="main",
            branch=session.branch,
            model="m",
            effort=None,
            creator=Author.of(user),
        )
        await store.events.append(created)
        assert await store.users.authenticate(token) == user

        last = await seed_history(url, session.id, 2500)

        assert last == 2501
        events = await store.events.after(session.id, 0, 10_000)
        assert [e.seq for e in events] == list(range(1, 2502))
        stored = await store.sessions.get(session.id)
        assert stored is not None and stored.last_seq == 2501
        kinds = Counter(e.type for e in events[1:])
        assert kinds["tool-call"] == kinds["tool-result"] > 500
        assert kinds["prompt-queued"] >= kinds["prompt-finished"] > 150
        assert all(e.prompt_id for e in events[1:])
        assert [e.ts for e in events[1:]] == sorted(e.ts for e in events[1:])
    finally:
        await store.close()


def test_synthetic_history_is_deterministic_apart_from_time() -> None:
    author = Author(id="usr_1", name="A", email="a@e")
    one, two = (synthetic_history("ses_1", author, 5, 40) for _ in range(2))

    def strip(events: list[Event]) -> list[dict[str, object]]:
        return [{k: v for k, v in dump_event(e).items() if k != "ts"} for e in events]

    assert strip(one) == strip(two)
    assert [e.seq for e in one] == list(range(5, 45))


@pytest.mark.parametrize("count", [5, 6, 7, 14, 18, 19, 20, 21, 4999])
def test_synthetic_history_ends_with_a_finished_prompt(count: int) -> None:
    events = synthetic_history("ses_1", Author(id="usr_1", name="A", email="a@e"), 1, count)
    assert len(events) == count
    assert events[-1].type == "prompt-finished"
    assert events[-1].prompt_id == events[-2].prompt_id
    calls = {e.call_id for e in events if isinstance(e, ToolCall)}
    results = {e.call_id for e in events if isinstance(e, ToolResult)}
    assert calls == results


async def test_a_batch_belongs_to_one_session(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    author = Author(id="usr_1", name="A", email="a@e")
    mixed = synthetic_history("ses_1", author, 1, 2) + synthetic_history("ses_2", author, 3, 1)
    try:
        with pytest.raises(ValueError, match="one session"):
            await store.events.append_many("ses_1", mixed)
    finally:
        await store.close()
