"""The GitHub feedback ledger, on SQLite and Postgres: each object decided once, the cap counted
in the deciding transaction (also when many decide at once), the cap's one comment queued with
the decision."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.store import Store
from openinspect.store.github_feedback import ATTEMPT_LIMIT, PROMPTED, feedback_key
from tests.store.conftest import store  # noqa: F401 - the fixture

REPO = "Acme/Widgets"


async def _cap_comment(store: Store, conn: AsyncConnection) -> None:  # noqa: F811
    await store.outbox.enqueue(
        conn,
        source="github",
        key="comment:acme/widgets#7:attempt_limit",
        kind="comment",
        target={"repo": REPO, "number": 7},
        body={"text": "cap"},
    )


async def test_each_review_is_decided_once_and_the_cap_holds(store: Store) -> None:  # noqa: F811
    ledger = store.github_feedback

    async def limit(conn: AsyncConnection) -> None:
        await _cap_comment(store, conn)

    async def decide(review_id: int) -> str:
        decided = await ledger.decide_feedback(
            key=feedback_key("review", REPO, review_id),
            repo=REPO,
            number=7,
            session_id="ses_1",
            cap=3,
            on_limit=limit,
        )
        return decided.feedback.outcome if decided.fresh else "duplicate"

    assert [await decide(i) for i in (1, 2, 1, 3)] == [PROMPTED, PROMPTED, "duplicate", PROMPTED]
    assert [await decide(i) for i in (4, 5, 4)] == [ATTEMPT_LIMIT, ATTEMPT_LIMIT, "duplicate"]
    assert await ledger.count("acme/widgets", 7) == 3
    assert await ledger.count(REPO, 7, ATTEMPT_LIMIT) == 2
    assert [r.key for r in await store.outbox.due()] == ["comment:acme/widgets#7:attempt_limit"]
    assert await ledger.count(REPO, 8) == 0  # per pull request

    key = feedback_key("review", REPO, 1)
    await ledger.set_prompt(key, session_id="ses_1", prompt_id="prm_1")
    async with store.engine.connect() as conn:
        (found,) = await ledger.by_prompt(conn, ["prm_1", "prm_other"])
    assert (found.key, found.session_id, found.outcome) == (key, "ses_1", PROMPTED)


async def test_the_cap_holds_when_many_decide_at_once(store: Store) -> None:  # noqa: F811
    ledger = store.github_feedback

    async def decide(review_id: int) -> str:
        for _ in range(20):  # SQLite's writers may be told to come back: a handler retries
            try:
                decided = await ledger.decide_feedback(
                    key=feedback_key("review", REPO, review_id),
                    repo=REPO,
                    number=9,
                    session_id="ses_1",
                    cap=3,
                )
                return decided.feedback.outcome
            except Exception:
                await asyncio.sleep(0.05)
        raise AssertionError("never decided")

    outcomes = await asyncio.gather(*(decide(i) for i in range(10)))
    assert sorted(outcomes).count(PROMPTED) == 3
    assert await ledger.count(REPO, 9) == 3


async def test_a_fix_request_is_recorded_once(store: Store) -> None:  # noqa: F811
    ledger = store.github_feedback
    key = feedback_key("comment", REPO, 55)
    first = await ledger.record(key=key, repo=REPO, number=7, outcome="fix_branch")
    again = await ledger.record(key=key, repo=REPO, number=7, outcome="unlinked")
    assert first.fresh and not again.fresh
    assert again.feedback.outcome == "fix_branch"
    assert await ledger.count(REPO, 7) == 0  # fixes do not count against the feedback cap
