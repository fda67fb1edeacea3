"""The outbox's Linear sender against the fake Linear, through the real delivery loop: an
activity whose answer was lost is adopted, not posted twice; a rate limit or an outage pauses
and retries; a refused token is refreshed once; a refusal that will not change fails the row
with a stable code; links replace the session's links."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from openinspect.domain.events import utcnow
from openinspect.integrations.linear import activities
from openinspect.integrations.linear.client import LinearClient
from openinspect.integrations.linear.sender import LinearSender
from openinspect.integrations.linear.tokens import LinearTokens
from openinspect.integrations.outbox import OutboxDelivery
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.outbox import OutboxRow
from openinspect.testing.linear import FakeLinear
from tests.integrations.linear.conftest import linear_settings


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLinear]:
    with FakeLinear() as opened:
        yield opened


@pytest.fixture
async def store(tmp_path: Path, fake: FakeLinear) -> AsyncIterator[Store]:
    opened = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path}/oi.db", sealer=Sealer(os.urandom(32))
    )
    fake.token()
    minted = fake.tokens()[-1]
    await opened.linear.save_install(
        org_id=fake.org.id,
        org_name=fake.org.name,
        app_user_id=fake.app_user_id,
        access_token=minted.access_token,
        refresh_token=minted.refresh_token,
        expires_at=utcnow() + timedelta(hours=1),
        scopes="read write",
        installed_by=None,
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def delivery(fake: FakeLinear, store: Store) -> AsyncIterator[OutboxDelivery]:
    client = LinearClient(linear_settings(fake))
    sender = LinearSender(client, LinearTokens(store, client))
    yield OutboxDelivery(store.outbox, {"linear": sender})
    await client.aclose()


def agent_session(fake: FakeLinear) -> str:
    if not fake.team_states("ENG"):
        fake.add_team("ENG", "Engineering")
    user = fake.add_user("Pat", f"pat{len(fake.sessions())}@example.com")
    return fake.delegate(fake.add_issue("ENG", "Something").id, user.id)


async def decide(store: Store, fake: FakeLinear, agent: str, key: str, body: str) -> OutboxRow:
    async with store.engine.begin() as conn:
        await activities.post_activity(
            store,
            conn,
            key=key,
            org_id=fake.org.id,
            agent_session_id=agent,
            content=activities.message("thought", body),
        )
    found = await store.outbox.get(key)
    assert found is not None
    return found


async def settle(store: Store, delivery: OutboxDelivery, key: str) -> OutboxRow:
    for _ in range(20):
        await delivery.deliver()
        found = await store.outbox.get(key)
        assert found is not None
        if found.posted_at is not None or found.failed:
            return found
        async with store.engine.begin() as conn:  # skip the pause: due now
            from openinspect.store.tables import outbox

            await conn.execute(outbox.update().values(next_attempt_at=utcnow()))
        delivery._paused.clear()
    raise AssertionError("the row was neither posted nor failed")


async def test_a_post_whose_answer_was_lost_is_adopted_not_repeated(
    fake: FakeLinear, store: Store, delivery: OutboxDelivery
) -> None:
    agent = agent_session(fake)
    row = await decide(store, fake, agent, f"thought:{agent}", "On it")
    fake.fail_next("agentActivityCreate", status=502, apply=True)  # made, answer lost
    await delivery.deliver()
    assert len(fake.session(agent).of_type("thought")) == 1
    done = await settle(store, delivery, row.key)
    assert done.posted_at is not None and done.attempts == 2
    assert done.result == {"id": activities.activity_id(row.key)}
    assert len(fake.session(agent).of_type("thought")) == 1
    assert fake.session(agent).of_type("thought")[0].id == activities.activity_id(row.key)


async def test_rate_limits_and_outages_pause_then_post(
    fake: FakeLinear, store: Store, delivery: OutboxDelivery
) -> None:
    agent = agent_session(fake)
    row = await decide(store, fake, agent, f"act:{agent}:1", "Working")
    fake.fail_next("agentActivityCreate", status=429)
    await delivery.deliver()
    paused = await store.outbox.get(row.key)
    assert paused is not None and paused.error_code == "linear_rate_limited"
    assert paused.posted_at is None and not paused.failed
    fake.fail_next("agentActivityCreate", status=503)
    done = await settle(store, delivery, row.key)
    assert done.posted_at is not None
    assert [a.body for a in fake.session(agent).of_type("thought")] == ["Working"]


async def test_a_refused_token_is_refreshed_once(
    fake: FakeLinear, store: Store, delivery: OutboxDelivery
) -> None:
    agent = agent_session(fake)
    before = await store.linear.install(fake.org.id)
    assert before is not None
    fake.expire_token(before.access_token)
    row = await decide(store, fake, agent, f"thought:{agent}", "Refreshed")
    done = await settle(store, delivery, row.key)
    assert done.posted_at is not None and done.attempts == 1
    after = await store.linear.install(fake.org.id)
    assert after is not None and after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token  # rotated and kept


async def test_refusals_fail_the_row_and_links_replace(
    fake: FakeLinear, store: Store, delivery: OutboxDelivery
) -> None:
    row = await decide(store, fake, "00000000-0000-4000-8000-00000000dead", "thought:gone", "x")
    done = await settle(store, delivery, row.key)
    assert done.failed and done.error_code == "linear_input_error"
    agent = agent_session(fake)
    async with store.engine.begin() as conn:
        for n, urls in enumerate(
            (["https://a.example/1"], ["https://a.example/1", "https://b.example/2"])
        ):
            await activities.set_links(
                store,
                conn,
                key=f"urls:{agent}:{n}",
                org_id=fake.org.id,
                agent_session_id=agent,
                links=[{"label": f"L{i}", "url": u} for i, u in enumerate(urls)],
            )
    await settle(store, delivery, f"urls:{agent}:1")
    assert [link.url for link in fake.session(agent).external_links] == [
        "https://a.example/1",
        "https://b.example/2",
    ]
