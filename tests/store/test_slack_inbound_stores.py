"""The inbound side's Slack stores on SQLite and Postgres: the inbox (a retry or a message's
second event writes nothing; a claim is taken once; stale rows), picks used once, link codes
hashed and used once, links and preferences."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from openinspect.domain.events import utcnow
from openinspect.errors import SlackLinkExpired, SlackLinkNotFound, SlackLinkUsed
from openinspect.store import Store
from openinspect.store.tables import slack_inbox, slack_link_codes
from openinspect.store.users import hash_token
from tests.store.conftest import store  # noqa: F401 - the fixture


async def test_the_inbox_keeps_one_row_per_delivery_and_per_message(
    store: Store,  # noqa: F811
) -> None:
    inbox = store.slack_inbox
    first = await inbox.accept(key="event:T:Ev1", msg_key="msg:T:C:1", kind="event", payload="{}")
    assert first is not None and first.status == "pending"
    assert await inbox.accept(key="event:T:Ev1", msg_key=None, kind="event", payload="{}") is None
    assert (
        await inbox.accept(key="event:T:Ev2", msg_key="msg:T:C:1", kind="event", payload="{}")
        is None
    )
    other = await inbox.accept(key="event:T:Ev3", msg_key=None, kind="event", payload='{"a": 1}')
    assert other is not None and other.payload == {"a": 1}
    with pytest.raises(ValueError):
        await inbox.accept(key="x" * 201, msg_key=None, kind="event", payload="{}")

    claims = await asyncio.gather(inbox.claim(first), inbox.claim(first))
    assert sorted(claims) == [False, True]  # one handler at a time
    assert await inbox.stale(timedelta(minutes=1)) == []
    async with store.engine.begin() as conn:
        await conn.execute(
            slack_inbox.update().values(
                received_at=utcnow() - timedelta(minutes=5),
                handled_at=sa.case(
                    (slack_inbox.c.handled_at.is_(None), None),
                    else_=utcnow() - timedelta(minutes=2),
                ),
            )
        )
    stale = await inbox.stale(timedelta(minutes=1))
    assert sorted(r.key for r in stale) == ["event:T:Ev1", "event:T:Ev3"]
    await inbox.finish(first.id, "done")
    assert [r.key for r in await inbox.stale(timedelta(minutes=1))] == ["event:T:Ev3"]
    done = await inbox.by_key("event:T:Ev1")
    assert done is not None and (done.status, done.attempts) == ("done", 1)


async def test_a_pick_is_used_once(store: Store) -> None:  # noqa: F811
    inbox = store.slack_inbox
    pick = await inbox.create_pick(
        team_id="T",
        channel_id="C",
        thread_ts="1.0",
        message_ts="1.0",
        channel_type="channel",
        slack_user_id="U1",
        text="fix",
        candidates=["a", "b"],
        ttl_s=60,
    )
    used = await asyncio.gather(inbox.use_pick(pick.id), inbox.use_pick(pick.id))
    assert sorted(used) == [False, True]
    await inbox.set_pick_session(pick.id, "ses_x")
    found = await inbox.pick(pick.id)
    assert found is not None and found.candidates == ["a", "b"] and found.session_id == "ses_x"


async def test_link_codes_are_hashed_used_once_and_expire(store: Store) -> None:  # noqa: F811
    people = store.slack_people
    user = await store.users.create(name="Bo", email="Bo@Example.com", role="member")
    code = await people.mint_code("T", "U1", 60)
    async with store.engine.connect() as conn:
        stored = (await conn.execute(sa.select(slack_link_codes.c.code_hash))).scalars().all()
    assert stored == [hash_token(code)] and code not in stored
    assert (await people.peek_code(code)).slack_user_id == "U1"
    with pytest.raises(SlackLinkNotFound):
        await people.peek_code("nope")
    results = await asyncio.gather(
        people.redeem_code(code, user.id), people.redeem_code(code, user.id), return_exceptions=True
    )
    assert sum(isinstance(r, SlackLinkUsed) for r in results) == 1
    linked = await people.get("T", "U1")
    assert linked is not None and (linked.user_id, linked.linked_by) == (user.id, "link")
    late = await people.mint_code("T", "U2", 60)
    async with store.engine.begin() as conn:
        await conn.execute(
            slack_link_codes.update()
            .where(slack_link_codes.c.code_hash == hash_token(late))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(SlackLinkExpired):
        await people.redeem_code(late, user.id)
    assert [u.id for u in await store.users.with_email("bo@example.COM")] == [user.id]


async def test_preferences_and_a_new_model_clears_the_effort(store: Store) -> None:  # noqa: F811
    people = store.slack_people
    await people.set_preference("T", "U1", "model", "scripted:demo-tour")
    await people.set_preference("T", "U1", "effort", "high")
    await people.set_preference("T", "U1", "default_repo", "calc")
    prefs = await people.get("T", "U1")
    assert prefs is not None
    assert (prefs.model, prefs.effort, prefs.default_repo) == ("scripted:demo-tour", "high", "calc")
    assert prefs.user_id is None  # preferences do not link
    await people.set_preference("T", "U1", "model", "scripted:demo-fix-add")
    prefs = await people.get("T", "U1")
    assert prefs is not None and prefs.effort is None
