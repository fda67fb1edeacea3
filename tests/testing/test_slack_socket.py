"""Socket Mode against the fake with both of slack_sdk's asyncio clients (websockets and
aiohttp): hello, events and interactions as envelopes, acks, resends, disconnect/reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from slack_sdk.socket_mode.aiohttp import SocketModeClient as AiohttpClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.socket_mode.websockets import SocketModeClient as WebsocketsClient
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.testing.slack import FakeSlack

WAIT_S = 10.0


class App:
    """A Socket Mode app: records what arrives and acks unless told to skip some."""

    def __init__(self) -> None:
        self.requests: list[SocketModeRequest] = []
        self.raw: list[dict[str, Any]] = []
        self.skip_acks = 0
        self.changed = asyncio.Event()

    async def on_request(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        self.requests.append(req)
        self.changed.set()
        if self.skip_acks:
            self.skip_acks -= 1
            return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    async def on_message(
        self, client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        self.raw.append(message)
        self.changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.requests) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(retry_delays_s=(0.0, 0.05), ack_timeout_s=0.5) as fake:
        fake.add_user("U1", name="alice")
        fake.add_channel("C1", name="eng")
        yield fake


@pytest.fixture(params=[WebsocketsClient, AiohttpClient], ids=["websockets", "aiohttp"])
async def connected(
    request: pytest.FixtureRequest, slack: FakeSlack
) -> AsyncIterator[tuple[AsyncBaseSocketModeClient, App]]:
    app = App()
    web = AsyncWebClient(base_url=slack.api_url)
    client = request.param(app_token=slack.app_token, web_client=web)
    client.socket_mode_request_listeners.append(app.on_request)
    client.message_listeners.append(app.on_message)
    await client.connect()
    await slack.await_socket(WAIT_S)
    try:
        yield client, app
    finally:
        await client.close()


async def test_hello_then_events_acked(
    slack: FakeSlack, connected: tuple[AsyncBaseSocketModeClient, App]
) -> None:
    _, app = connected
    ts = await slack.apost_user_message("C1", "U1", "<@UBOT> over the socket")
    await app.until(2)
    deliveries = await slack.await_deliveries()
    assert app.raw[0]["type"] == "hello"
    assert app.raw[0]["connection_info"] == {"app_id": "A0001"}
    assert [r.type for r in app.requests] == ["events_api", "events_api"]
    events = [r.payload["event"] for r in app.requests]
    assert [e["type"] for e in events] == ["app_mention", "message"]
    assert all(e["ts"] == ts for e in events)
    assert [r.retry_attempt for r in app.requests] == [0, 0]
    assert all(
        d.attempts[-1].result == "acked" and d.attempts[-1].via == "socket" for d in deliveries
    )
    acks = {f["envelope_id"] for f in slack.socket_frames()}
    assert {r.envelope_id for r in app.requests} <= acks


async def test_unacked_envelope_is_resent(
    slack: FakeSlack, connected: tuple[AsyncBaseSocketModeClient, App]
) -> None:
    _, app = connected
    app.skip_acks = 1
    await slack.apost_user_message("C1", "U1", "ack me later")
    await app.until(2)
    [delivery] = await slack.await_deliveries()
    assert [a.result for a in delivery.attempts] == ["timeout", "acked"]
    first, second = app.requests
    assert (first.retry_attempt, second.retry_attempt) == (0, 1)
    assert second.retry_reason == "timeout"
    assert first.payload["event_id"] == second.payload["event_id"]


async def test_disconnect_and_reconnect(
    slack: FakeSlack, connected: tuple[AsyncBaseSocketModeClient, App]
) -> None:
    _, app = connected
    assert slack.disconnect_socket("refresh_requested") == 1
    await slack.await_socket(WAIT_S, connects=2)
    await slack.await_until(lambda s: s.hub.open_connections == 1)
    # slack_sdk handles "disconnect" itself (no listener sees it): a second connection shows it.
    assert slack.socket_connects == 2
    await slack.apost_user_message("C1", "U1", "after the refresh")
    await app.until(1)
    [delivery] = await slack.await_deliveries()
    assert delivery.acked and app.requests[0].payload["event"]["text"] == "after the refresh"


async def test_interaction_over_the_socket(
    slack: FakeSlack, connected: tuple[AsyncBaseSocketModeClient, App]
) -> None:
    _, app = connected
    web = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
    button = {"type": "button", "action_id": "stop", "text": {"type": "plain_text", "text": "Stop"}}
    posted = await web.chat_postMessage(
        channel="C1", text="running", blocks=[{"type": "actions", "elements": [button]}]
    )
    slack.click("U1", action_id="stop", value="s1", message=("C1", posted["ts"]))
    await app.until(1)
    [req] = app.requests
    assert req.type == "interactive" and req.payload["type"] == "block_actions"
    assert req.payload["actions"][0]["action_id"] == "stop"
    assert req.payload["actions"][0]["value"] == "s1"
    [delivery] = await slack.await_deliveries()
    assert delivery.attempts[-1].result == "acked"


async def test_ticket_is_single_use(slack: FakeSlack) -> None:
    import websockets

    web = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    url = (await web.apps_connections_open(app_token=slack.app_token))["url"]
    async with websockets.connect(url) as ws:
        hello = await asyncio.wait_for(ws.recv(), WAIT_S)
        assert '"hello"' in str(hello)
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(url):
            pass
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(url.split("?")[0] + "?ticket=forged"):
            pass
