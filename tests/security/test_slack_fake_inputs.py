"""The fake Slack's own doors (Web API, control endpoints, response_url, Socket Mode): sizes
are capped, malformed input is refused with a fixed error, and nothing sent is echoed back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.testing.slack import FakeSlack

MARKER = "SECRET-PAYLOAD-7f3a"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(ack_timeout_s=0.3, retry_delays_s=()) as fake:
        fake.add_user("U1", name="alice")
        fake.add_channel("C1", name="eng")
        yield fake


def no_echo(response: httpx.Response) -> None:
    assert MARKER not in response.text
    assert "xoxb" not in response.text


async def test_web_api_refuses_malformed_bodies_without_echo(slack: FakeSlack) -> None:
    url = f"{slack.api_url}chat.postMessage"
    auth = {"Authorization": "Bearer xoxb-test"}
    async with httpx.AsyncClient() as http:
        cases = [
            ({"Content-Type": "application/json"}, f'{{"text": "{MARKER}"'.encode()),
            ({"Content-Type": "application/json"}, json.dumps([MARKER]).encode()),
            ({"Content-Type": "application/x-www-form-urlencoded"}, b"\xff\xfe" + MARKER.encode()),
            ({"Content-Type": "text/xml"}, MARKER.encode()),
        ]
        for headers, body in cases:
            r = await http.post(url, content=body, headers={**auth, **headers})
            assert r.status_code == 200 and r.json() == {"ok": False, "error": "invalid_form_data"}
            no_echo(r)
        huge = b"x" * (1024 * 1024 + 1)
        r = await http.post(url, content=huge, headers={**auth, "Content-Type": "text/plain"})
        assert r.status_code == 413
        wrong = await http.post(
            url, json={"channel": "C1", "text": MARKER}, headers={"Authorization": "Bearer xoxb-x"}
        )
        assert wrong.json() == {"ok": False, "error": "invalid_auth"}
        no_echo(wrong)
        blocks = await http.post(
            url, json={"channel": "C1", "text": "t", "blocks": MARKER}, headers=auth
        )
        assert blocks.json() == {"ok": False, "error": "invalid_blocks"}
    assert slack.messages("C1") == []
    assert all("token" not in c.args for c in slack.calls())


async def test_views_refuse_bad_shapes(slack: FakeSlack) -> None:
    web = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
    for view in ({"type": "modal", "blocks": []}, {"type": "home", "blocks": [MARKER]}, MARKER):
        with pytest.raises(SlackApiError) as info:
            await web.api_call("views.publish", json={"user_id": "U1", "view": view})
        assert info.value.response.data == {"ok": False, "error": "invalid_arguments"}
    assert slack.home_view("U1") is None


async def test_control_endpoints_validate_and_cap(slack: FakeSlack) -> None:
    base = slack.base_url
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base}/_fake/messages", content=b"x" * (256 * 1024 + 1))
        assert r.status_code == 413
        r = await http.post(f"{base}/_fake/messages", content=f"[{MARKER!r}]".encode())
        assert r.status_code == 400
        no_echo(r)
        r = await http.post(
            f"{base}/_fake/messages", json={"channel": MARKER, "user": "U1", "text": "hi"}
        )
        assert r.status_code == 404
        no_echo(r)
        r = await http.post(f"{base}/_fake/messages", json={"channel": "C1", "user": "U1"})
        assert r.status_code == 400 and "'text'" in r.json()["error"]
        r = await http.post(
            f"{base}/_fake/messages", json={"channel": "C1", "user": "U1", "text": 5}
        )
        assert r.status_code == 400
        r = await http.post(f"{base}/_fake/click", json={"user": "U1", "action_id": MARKER})
        assert r.status_code == 400
        no_echo(r)
        r = await http.get(f"{base}/_fake/deliveries", params={"wait_s": MARKER})
        assert r.status_code == 400
        no_echo(r)
        r = await http.post(f"{base}/_fake/respond/{MARKER}", json={"text": "x"})
        assert r.status_code == 404
        no_echo(r)
    assert slack.messages("C1") == [] and slack.deliveries == []


async def test_socket_mode_refuses_forged_tickets_and_ignores_junk(slack: FakeSlack) -> None:
    base = f"ws://127.0.0.1:{slack.port}/socket-mode"
    for url in (base, f"{base}?ticket=", f"{base}?ticket={MARKER}"):
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(url):
                pass
    assert slack.socket_connects == 0
    web = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    url = (await web.apps_connections_open(app_token=slack.app_token))["url"]
    async with websockets.connect(url, max_size=None) as ws:
        await asyncio.wait_for(ws.recv(), 5)  # hello
        await ws.send("not json " + MARKER)
        await ws.send(json.dumps([1, 2]))
        await ws.send(json.dumps({"envelope_id": "x" * 70_000}))
        await ws.send(b"\xff\xfe")
        slack.post_user_message("C1", "U1", "still served")
        envelope = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert envelope["type"] == "events_api"
        await ws.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
        [delivery] = await slack.await_deliveries()
        assert delivery.acked
