"""The Linear client against the fake Linear (which checks every document against Linear's
SDL): each document of CONTRACT §3 runs, OAuth's two grants work, and every failure maps to a
stable code that names no token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from openinspect.errors import LinearAuthFailed, LinearError, LinearRateLimited, LinearUnavailable
from openinspect.integrations.linear.activities import activity_id
from openinspect.integrations.linear.client import LinearClient
from openinspect.settings import LinearSettings
from openinspect.testing.linear import FakeLinear


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLinear]:
    with FakeLinear() as opened:
        yield opened


@pytest.fixture
async def client(fake: FakeLinear) -> AsyncIterator[LinearClient]:
    opened = LinearClient(
        LinearSettings(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            webhook_secret="w",
            api_url=fake.api_url,
        )
    )
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_every_document_runs_against_linears_schema(
    fake: FakeLinear, client: LinearClient
) -> None:
    token = fake.token()
    viewer = await client.viewer(token)
    assert viewer.app_user_id == fake.app_user_id and viewer.org_id == fake.org.id
    team = fake.add_team("CLI", "Client")
    bob = fake.add_user("Bob", "bob@example.com")
    issue = fake.add_issue(team.id, "Fix it", description="Details", labels=["bug"])
    found = await client.issue(token, issue.id)
    assert found["identifier"] == issue.identifier and found["team"]["key"] == "CLI"
    assert [n["name"] for n in found["labels"]["nodes"]] == ["bug"]
    assert found["state"]["type"] == "unstarted"
    assert (await client.user(token, bob.id))["email"] == "bob@example.com"
    session = fake.delegate(issue.id, bob.id)
    wanted = activity_id("thought:x")
    made = await client.create_activity(
        token,
        {"id": wanted, "agentSessionId": session, "content": {"type": "thought", "body": "Hi"}},
    )
    assert made == wanted and await client.activity_exists(token, wanted)
    assert not await client.activity_exists(token, activity_id("never"))
    with pytest.raises(LinearError) as again:
        await client.create_activity(
            token,
            {"id": wanted, "agentSessionId": session, "content": {"type": "thought", "body": "2"}},
        )
    assert again.value.details["reason"] == "conflict"
    await client.update_session(
        token, session, {"externalUrls": [{"label": "Web", "url": "https://oi.example/s"}]}
    )
    assert [link.url for link in fake.session(session).external_links] == ["https://oi.example/s"]
    states = await client.started_states(token, team.id)
    assert {s["name"] for s in states} == {"In Progress", "In Review"}
    assert await client.update_issue(token, issue.id, {"stateId": states[0]["id"]})
    assert fake.issue(issue.id).state_id == states[0]["id"]


async def test_failures_map_to_stable_codes_without_the_token(
    fake: FakeLinear, client: LinearClient
) -> None:
    token = fake.token()
    with pytest.raises(LinearAuthFailed) as refused:
        await client.viewer("lin_oauth_not-a-token")
    assert "lin_oauth_not-a-token" not in str(refused.value)
    fake.fail_next("viewer", status=429)
    with pytest.raises(LinearRateLimited) as limited:
        await client.viewer(token)
    assert limited.value.retry_after_s is not None and limited.value.retry_after_s <= 2
    fake.fail_next("viewer", status=500)
    with pytest.raises(LinearUnavailable):
        await client.viewer(token)
    with pytest.raises(LinearError) as missing:
        await client.issue(token, "00000000-0000-4000-8000-00000000dead")
    assert missing.value.details["reason"] == "not_found"
    assert missing.value.linear_code == "INPUT_ERROR" and token not in str(missing.value)
    down = LinearClient(LinearSettings(api_url="http://127.0.0.1:9", request_timeout_s=2))
    with pytest.raises(LinearUnavailable):
        await down.viewer(token)
    await down.aclose()


async def test_the_oauth_grants_and_their_refusals(fake: FakeLinear, client: LinearClient) -> None:
    fake.token()
    minted = fake.tokens()[-1]
    assert minted.refresh_token is not None
    pair = await client.refresh(minted.refresh_token)
    assert pair.access_token != minted.access_token and pair.refresh_token
    assert pair.expires_at is not None and "lin_" not in repr(pair)
    assert (await client.viewer(pair.access_token)).org_id == fake.org.id
    with pytest.raises(LinearAuthFailed) as reused:  # a refresh rotates: the old one is spent
        await client.refresh(minted.refresh_token)
    assert reused.value.linear_code == "invalid_grant"
    with pytest.raises(LinearAuthFailed) as bad_code:
        await client.exchange_code("not-a-code", "http://127.0.0.1/cb")
    assert bad_code.value.linear_code == "invalid_grant"
    wrong = LinearClient(
        LinearSettings(client_id=fake.client_id, client_secret="wrong", api_url=fake.api_url)
    )
    with pytest.raises(LinearAuthFailed) as unknown:
        await wrong.refresh(pair.refresh_token or "")
    await wrong.aclose()
    assert unknown.value.linear_code == "invalid_client" and "wrong" not in str(unknown.value)
