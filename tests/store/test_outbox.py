"""The outbox, the inbox and the repo review-settings stores, on SQLite and Postgres: a
decision written once, due rows in order, the delivery's bookkeeping (attempts, retries,
failures, results); a delivery accepted once, claimed by one handler, found again when a crash
left it; a repo's own review settings over the server's defaults."""

from __future__ import annotations

from datetime import timedelta

from openinspect.domain.events import utcnow
from openinspect.store import Store
from tests.store.conftest import store  # noqa: F401 - the fixture


async def test_a_post_is_decided_once_and_delivered_in_order(store: Store) -> None:  # noqa: F811
    box = store.outbox
    async with store.engine.begin() as conn:
        for key in ("a", "b"):
            assert await box.enqueue(
                conn,
                source="github",
                key=key,
                kind="review",
                target={"repo": "o/r", "number": 1},
                body={"text": key},
                session_id="ses_1",
            )
        assert not await box.enqueue(
            conn, source="github", key="a", kind="review", target={}, body={}
        )
    first, second = await box.due()
    assert (first.key, second.key) == ("a", "b")
    assert first.target == {"repo": "o/r", "number": 1} and first.body == {"text": "a"}
    assert await box.due(sources=["linear"]) == []

    assert await box.begin_attempt(first.id) == 0
    later = utcnow() + timedelta(seconds=30)
    await box.record_retry(first.id, later, "rate_limited")
    assert [r.key for r in await box.due()] == ["b"]
    assert [r.key for r in await box.waiting(utcnow())] == ["a"]
    assert [r.key for r in await box.due(later + timedelta(seconds=1))] == ["a", "b"]
    due_at = await box.next_due_at()
    assert due_at is not None and abs((due_at - later).total_seconds()) < 1

    await box.record_posted(second.id, {"id": 7, "url": "https://x/7"})
    await box.record_failed(first.id, "not_found")
    assert await box.due(later + timedelta(seconds=1)) == []
    failed, posted = await box.get("a"), await box.get("b")
    assert failed is not None and failed.failed and failed.error_code == "not_found"
    assert failed.attempts == 1
    assert posted is not None and posted.result == {"id": 7, "url": "https://x/7"}
    assert not posted.failed and posted.posted_at is not None
    assert [r.key for r in await box.for_session("ses_1", "github")] == ["a", "b"]


async def test_a_delivery_is_accepted_once_and_claimed_by_one_handler(
    store: Store,  # noqa: F811
) -> None:
    inbox = store.inbox
    item = await inbox.accept(source="linear", key="linear:d1", kind="agent", payload='{"a": 1}')
    assert item is not None and item.payload == {"a": 1} and item.status == "pending"
    assert await inbox.accept(source="linear", key="linear:d1", kind="agent", payload="{}") is None
    async with store.engine.begin() as conn:  # in the caller's transaction
        assert await inbox.accept(
            source="linear", key="linear:d2", kind="agent", payload="{}", conn=conn
        )
    assert await inbox.claim(item)
    assert not await inbox.claim(item)  # read before the first claim: someone else has it
    assert await inbox.stale("linear", timedelta(0)) != []
    assert await inbox.stale("github", timedelta(0)) == []
    await inbox.finish(item.id, "done")
    found = await inbox.by_key("linear:d1")
    assert found is not None and found.status == "done" and found.attempts == 1
    assert [i.key for i in await inbox.stale("linear", timedelta(0))] == ["linear:d2"]
    assert await inbox.stale("linear", timedelta(hours=1)) == []


async def test_a_repos_review_settings_override_the_servers_defaults(
    store: Store,  # noqa: F811
) -> None:
    from openinspect.settings import GitHubBotSettings
    from openinspect.store.review_settings import effective

    admin = await store.users.create(name="Ada", email="ada@example.com", role="admin")
    repo = await store.repos.create(
        name="widgets",
        url="https://github.com/o/widgets.git",
        default_branch="main",
        created_by=admin.id,
    )
    defaults = GitHubBotSettings(auto_review=True, model="m-default")
    assert await store.review_settings.get(repo.id) is None
    assert effective(None, defaults).auto_review is True
    own = await store.review_settings.put(
        repo.id, auto_review=False, instructions="Be brief", model=None, updated_by=None
    )
    assert (own.auto_review, own.instructions) == (False, "Be brief")
    seen = effective(await store.review_settings.get(repo.id), defaults)
    assert (seen.auto_review, seen.instructions, seen.model) == (False, "Be brief", "m-default")
    again = await store.review_settings.put(
        repo.id, auto_review=None, instructions=None, model="m-repo", updated_by=None
    )
    assert effective(again, defaults).auto_review is True and again.model == "m-repo"
