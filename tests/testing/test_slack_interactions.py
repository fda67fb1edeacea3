"""Interactivity over HTTP: ``block_actions`` payloads for clicks and selects on messages,
ephemeral messages and the Home view, signed form posts, trigger ids and response_url."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.testing.slack import FakeSlack
from tests.testing.slack_receiver import Receiver

SECRET = "s3cret"
BUTTON = {
    "type": "button",
    "action_id": "stop",
    "value": "session-1",
    "text": {"type": "plain_text", "text": "Stop"},
}
SELECT = {
    "type": "static_select",
    "action_id": "pick_repo",
    "options": [
        {"text": {"type": "plain_text", "text": "widgets"}, "value": "acme/widgets"},
        {"text": {"type": "plain_text", "text": "gadgets"}, "value": "acme/gadgets"},
    ],
}
BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "pick", "text": {"type": "mrkdwn", "text": "Repo?"},
     "accessory": SELECT},
    {"type": "actions", "block_id": "controls", "elements": [BUTTON]},
]  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


@pytest.fixture
def slack(receiver: Receiver) -> Iterator[FakeSlack]:
    with FakeSlack(signing_secret=SECRET, interactions_url=receiver.interactions_url) as fake:
        fake.add_user("U1", name="alice")
        fake.add_channel("C1", name="eng")
        yield fake


@pytest.fixture
def web(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.api_url)


async def test_click_on_a_message(
    slack: FakeSlack, receiver: Receiver, web: AsyncWebClient
) -> None:
    posted = await web.chat_postMessage(channel="C1", text="running", blocks=BLOCKS)
    sent = slack.click("U1", action_id="stop", message=("C1", posted["ts"]))
    [delivery] = await slack.await_deliveries()
    assert delivery.acked and delivery.kind == "interaction"
    [got] = receiver.received
    assert got.valid and got.headers["content-type"] == "application/x-www-form-urlencoded"
    payload = got.payload
    assert payload == sent
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U1", "username": "alice", "name": "alice", "team_id": "T0001"}
    assert payload["channel"]["id"] == "C1" and payload["team"]["id"] == "T0001"
    assert payload["message"]["ts"] == posted["ts"] and payload["message"]["blocks"] == BLOCKS
    assert payload["container"]["message_ts"] == posted["ts"]
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["type"]) == (
        "stop",
        "controls",
        "button",
    )
    assert action["value"] == "session-1"  # the button's own value
    assert payload["trigger_id"] and payload["response_url"].startswith(slack.base_url)


async def test_select_and_refusals(
    slack: FakeSlack, receiver: Receiver, web: AsyncWebClient
) -> None:
    posted = await web.chat_postMessage(channel="C1", text="pick", blocks=BLOCKS)
    target = ("C1", posted["ts"])
    slack.select("U1", action_id="pick_repo", option_value="acme/gadgets", message=target)
    await slack.await_deliveries()
    [action] = receiver.received[0].payload["actions"]
    assert action["selected_option"]["value"] == "acme/gadgets"
    assert action["block_id"] == "pick" and action["type"] == "static_select"
    with pytest.raises(LookupError, match="no element with action_id 'nope'"):
        slack.click("U1", action_id="nope", message=target)
    with pytest.raises(LookupError, match="no option"):
        slack.select("U1", action_id="pick_repo", option_value="acme/none", message=target)
    with pytest.raises(LookupError):
        slack.click("U1", action_id="stop", message=("C1", "1.000001"))
    assert len(slack.deliveries) == 1


async def test_click_on_home_and_views_open(
    slack: FakeSlack, receiver: Receiver, web: AsyncWebClient
) -> None:
    with pytest.raises(LookupError, match="no published Home view"):
        slack.click("U1", action_id="stop", view="home")
    published = await web.views_publish(user_id="U1", view={"type": "home", "blocks": BLOCKS})
    payload = slack.click("U1", action_id="stop", view="home")
    await slack.await_deliveries()
    got = receiver.received[0].payload
    assert got["view"]["id"] == published["view"]["id"] and got["container"]["type"] == "view"
    assert "response_url" not in got
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "New"}, "blocks": []}
    opened = await web.views_open(trigger_id=payload["trigger_id"], view=modal)
    assert opened["view"]["type"] == "modal"
    assert [m.user for m in slack.modals()] == ["U1"]
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):  # a trigger is single use
        await web.views_open(trigger_id=payload["trigger_id"], view=modal)


async def test_click_on_an_ephemeral(
    slack: FakeSlack, receiver: Receiver, web: AsyncWebClient
) -> None:
    sent = await web.chat_postEphemeral(channel="C1", user="U1", text="pick", blocks=BLOCKS)
    slack.click("U1", action_id="stop", message=("C1", sent["message_ts"]))
    await slack.await_deliveries()
    payload = receiver.received[0].payload
    assert payload["container"]["is_ephemeral"] is True and "message" not in payload


async def test_response_url_replaces_the_message(slack: FakeSlack, web: AsyncWebClient) -> None:
    posted = await web.chat_postMessage(channel="C1", text="running", blocks=BLOCKS)
    payload = slack.click("U1", action_id="stop", message=("C1", posted["ts"]))
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            payload["response_url"], json={"replace_original": True, "text": "stopped"}
        )
        assert answer.status_code == 200
        eph = await http.post(payload["response_url"], json={"text": "only for you"})
        assert eph.status_code == 200
        missing = await http.post(f"{slack.base_url}/_fake/respond/nope", json={"text": "x"})
        assert missing.status_code == 404
    message = slack.message("C1", posted["ts"])
    assert message is not None and (message.text, message.edits) == ("stopped", 1)
    assert [e.text for e in slack.ephemerals("C1", "U1")] == ["only for you"]
