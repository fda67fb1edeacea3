"""The Slack doors against forged, replayed, oversize and malformed deliveries, buttons pressed
by the wrong person, and link codes used twice or late: refused with a 4xx and our envelope,
never a 500, never an echo of what was sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from slack_sdk.socket_mode.request import SocketModeRequest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.domain.commands import StartSession
from openinspect.domain.events import utcnow
from openinspect.integrations.slack.socket_mode import SocketMode
from openinspect.settings import SandboxSettings, SessionSettings, Settings, SlackSettings
from openinspect.store.tables import slack_link_codes
from openinspect.testing.asgi import InApp
from openinspect.testing.slack import FakeSlack

SECRET = "s3cret-signing"
TEAM = "T0001"
BOT = "UBOT"
CANARY = "CANARY-7f3a9c"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        signing_secret=SECRET, bot_token="xoxb-t", team_id=TEAM, bot_user_id=BOT
    ) as slack:
        slack.add_user("U1", name="alice", email="alice@example.com")
        slack.add_user("U2", name="mallory", email="mallory@example.com")
        slack.add_channel("C1", name="eng")
        yield slack


@pytest.fixture
async def plane(tmp_path: Path, fake: FakeSlack) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        slack=SlackSettings(
            bot_token="xoxb-t",
            signing_secret=SECRET,
            app_token="xapp-t",
            api_url=fake.api_url,
            event_max_bytes=8 * 1024,
        ),
    )
    async with open_control_plane(settings) as opened:
        yield opened


@pytest.fixture
async def http(api: InApp) -> httpx.AsyncClient:
    return api.http


def signed(body: bytes, *, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    """Slack's v0 signature, computed here over the raw bytes (not with slack_sdk)."""
    ts = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def mention(event_id: str, ts: str, user: str = "U1", text: str = "fix it") -> bytes:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "event_id": event_id,
            "event": {
                "type": "app_mention",
                "user": user,
                "text": f"<@{BOT}> {text} {CANARY}",
                "ts": ts,
                "channel": "C1",
            },
        }
    ).encode()


async def post_event(http: httpx.AsyncClient, body: bytes, **headers: str) -> httpx.Response:
    return await http.post(
        "/slack/events", content=body, headers={"Content-Type": "application/json", **headers}
    )


async def post_action(
    http: httpx.AsyncClient, payload: dict[str, Any], **headers: str
) -> httpx.Response:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return await http.post(
        "/slack/interactions",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **signed(body),
            **headers,
        },
    )


def refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert CANARY not in answer.text
    assert SECRET not in answer.text


async def test_forged_unsigned_and_stale_deliveries_are_401_and_store_nothing(
    http: httpx.AsyncClient, plane: ControlPlane
) -> None:
    body = mention("EvFORGED", "1700000000.000001")
    refused(await post_event(http, body), 401, "signature_missing")
    refused(
        await post_event(http, body, **signed(body, secret="not-the-secret")),
        401,
        "signature_invalid",
    )
    tampered = signed(body)
    refused(
        await post_event(http, body.replace(b"fix", b"rm -rf"), **tampered),
        401,
        "signature_invalid",
    )
    refused(
        await post_event(http, body, **signed(body, at=time.time() - 600)), 401, "timestamp_stale"
    )
    refused(
        await post_event(http, body, **signed(body, at=time.time() + 600)), 401, "timestamp_stale"
    )
    bad_ts = {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}
    refused(await post_event(http, body, **bad_ts), 401, "signature_invalid")
    assert await plane.store.slack_inbox.by_key(f"event:{TEAM}:EvFORGED") is None


async def test_a_replayed_delivery_is_acknowledged_and_handled_once(
    http: httpx.AsyncClient, plane: ControlPlane
) -> None:
    body = mention("EvREPLAY", "1700000000.000002")
    headers = signed(body)
    for _ in range(3):
        answer = await post_event(http, body, **headers)
        assert answer.status_code == 200, answer.text
    # The same message again under another event id (its app_mention/message twin): dropped.
    twin = mention("EvREPLAY2", "1700000000.000002")
    assert (await post_event(http, twin, **signed(twin))).status_code == 200
    inbound = plane.slack_inbound
    assert inbound is not None
    await inbound.idle()
    async with plane.store.engine.connect() as conn:
        rows = (await conn.execute(sa.text("select key from slack_inbox"))).all()
    assert [r.key for r in rows] == [f"event:{TEAM}:EvREPLAY"]


async def test_oversize_bodies_are_413_before_anything(http: httpx.AsyncClient) -> None:
    big = mention("EvBIG", "1700000000.000003", text="x" * 10_000)
    refused(await post_event(http, big, **signed(big)), 413, "payload_too_large")
    body = urlencode({"payload": "x" * 10_000}).encode()
    answer = await http.post(
        "/slack/interactions",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **signed(body)},
    )
    refused(answer, 413, "payload_too_large")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b'{"type": "event_callback", "team_id": "T0001"}',
        b'{"type": "event_callback", "team_id": "T0001", "event_id": "E1", "event": 5}',
        b'{"type": "url_verification"}',
        b'{"type": "event_callback", "team_id": "'
        + b"T" * 500
        + b'", "event_id": "E", "event": {}}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
async def test_malformed_signed_events_are_400_never_500(
    http: httpx.AsyncClient, body: bytes
) -> None:
    answer = await post_event(http, body, **signed(body))
    assert answer.status_code in (400, 413), answer.text
    assert answer.json()["error"]["code"] in ("invalid_input", "payload_too_large")


@pytest.mark.parametrize(
    "body", [b"\xff\xfe", b'{"type": "event_callback", "team_id": "T0001", "event_id": "E\xff"}']
)
async def test_a_body_that_is_not_utf8_is_never_signed_by_slack(
    http: httpx.AsyncClient, body: bytes
) -> None:
    refused(await post_event(http, body, **signed(body)), 401, "signature_invalid")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"payload=",
        b"payload=%7Bnot",
        b"payload=%5B%5D",
        b"other=1",
        b"payload=" + json.dumps({"type": "block_actions", "user": {}, "actions": []}).encode(),
    ],
)
async def test_malformed_signed_interactions_are_400_never_500(
    http: httpx.AsyncClient, body: bytes
) -> None:
    answer = await http.post(
        "/slack/interactions",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **signed(body)},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"


async def test_a_wrong_content_type_is_415(http: httpx.AsyncClient) -> None:
    body = mention("EvTYPE", "1700000000.000004")
    answer = await http.post(
        "/slack/events", content=body, headers={"Content-Type": "text/plain", **signed(body)}
    )
    refused(answer, 415, "unsupported_media")


async def test_url_verification_answers_the_challenge_only_when_signed(
    http: httpx.AsyncClient,
) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode()
    refused(await post_event(http, body), 401, "signature_missing")
    answer = await post_event(http, body, **signed(body))
    assert answer.status_code == 200 and answer.json()["challenge"] == "abc123"


async def _until_post(plane: ControlPlane, prefix: str) -> dict[str, Any]:
    import asyncio

    async with asyncio.timeout(10):
        while True:
            async with plane.store.engine.connect() as conn:
                row = (
                    await conn.execute(
                        sa.text("select key, kind, slack_user_id, body from slack_posts")
                    )
                ).all()
            for r in row:
                if r.key.startswith(prefix):
                    return {"key": r.key, "kind": r.kind, "user": r.slack_user_id, "body": r.body}
            await asyncio.sleep(0.02)


def _action(action_id: str, value: str, user: str = "U2", trigger: str = "trig1") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "team_id": TEAM},
        "team": {"id": TEAM},
        "channel": {"id": "C1"},
        "message": {"ts": "1700000000.000010"},
        "trigger_id": trigger,
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }


async def test_a_stop_button_on_someone_elses_session_is_refused(
    http: httpx.AsyncClient, api: InApp, plane: ControlPlane, origin: Path
) -> None:
    alice = await plane.store.users.create(name="alice", email="alice@example.com", role="member")
    await plane.store.users.create(name="mallory", email="mallory@example.com", role="member")
    admin = plane.bootstrap.user
    assert admin is not None
    await plane.store.repos.create(
        name="calc", url=str(origin), default_branch="main", created_by=admin.id
    )
    started = await plane.commands.handle(alice, StartSession(repo="calc"), origin="web")
    answer = await post_action(http, _action("openinspect_stop", started.session.id))
    assert answer.status_code == 200
    post = await _until_post(plane, "error:")
    assert post["kind"] == "ephemeral" and post["user"] == "U2"
    assert "No session" in json.loads(post["body"])["text"]


async def test_a_pick_by_someone_else_expired_or_twice_is_refused(
    http: httpx.AsyncClient, plane: ControlPlane
) -> None:
    await plane.store.users.create(name="mallory", email="mallory@example.com", role="member")
    inbox = plane.store.slack_inbox
    pick = await inbox.create_pick(
        team_id=TEAM,
        channel_id="C1",
        thread_ts="1700000000.000010",
        message_ts="1700000000.000010",
        channel_type="channel",
        slack_user_id="U1",
        text="fix it",
        candidates=["calc", "other"],
        ttl_s=3600,
    )
    answer = await post_action(http, _action("openinspect_pick_repo:0", f"{pick.id}|calc"))
    assert answer.status_code == 200
    post = await _until_post(plane, "error:")
    assert "only the person who asked" in json.loads(post["body"])["text"]
    found = await inbox.pick(pick.id)
    assert found is not None and found.resolved_at is None and found.session_id is None


async def test_link_codes_are_one_use_expire_and_need_a_sign_in(
    api: InApp, plane: ControlPlane
) -> None:
    people = plane.store.slack_people
    code = await people.mint_code(TEAM, "U1", 900)
    member = await api.member("bob")
    refused(await api.http.get(f"/api/slack/link/{code}"), 401, "unauthenticated")
    refused(await api.http.post("/api/slack/link", json={"code": code}), 401, "unauthenticated")
    refused(
        await member.call("POST", "/api/slack/link", json={"code": "nope"}),
        404,
        "slack_link_not_found",
    )
    refused(await member.call("GET", f"/api/slack/link/{'x' * 101}"), 422, "invalid_input")
    assert (await member.call("POST", "/api/slack/link", json={"code": code})).status_code == 200
    refused(
        await member.call("POST", "/api/slack/link", json={"code": code}), 410, "slack_link_used"
    )
    refused(await member.call("GET", f"/api/slack/link/{code}"), 410, "slack_link_used")
    late = await people.mint_code(TEAM, "U2", 900)
    async with plane.store.engine.begin() as conn:
        await conn.execute(
            slack_link_codes.update().values(expires_at=utcnow() - timedelta(seconds=1))
        )
    refused(
        await member.call("POST", "/api/slack/link", json={"code": late}),
        410,
        "slack_link_expired",
    )
    assert (await people.get(TEAM, "U2")) is None


async def test_slack_off_is_404_with_a_hint(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "off", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as plane, InApp.open(plane) as app:
        body = b"{}"
        answer = await app.http.post(
            "/slack/events", content=body, headers={"Content-Type": "application/json"}
        )
        refused(answer, 404, "not_configured")
        assert "SLACK__BOT_TOKEN" in answer.json()["error"]["hint"]


async def test_socket_mode_envelopes_that_are_too_big_malformed_or_foreign_store_nothing(
    plane: ControlPlane,
) -> None:
    inbound = plane.slack_inbound
    assert inbound is not None
    socket = SocketMode(inbound)
    big = json.loads(mention("EvSOCKBIG", "1700000000.000020", text="x" * 10_000))
    envelopes = [
        SocketModeRequest("events_api", "e1", big),
        SocketModeRequest("events_api", "e2", {"type": "event_callback", "team_id": TEAM}),
        SocketModeRequest("events_api", "e3", {"type": "event_callback", "event": "nope"}),
        SocketModeRequest("interactive", "e4", {"type": "block_actions", "actions": []}),
        SocketModeRequest("interactive", "e5", {"type": "view_submission"}),
        SocketModeRequest("slash_commands", "e6", {"command": "/x"}),
        SocketModeRequest(
            "events_api",
            "e7",
            json.loads(mention("EvSOCKOTHER", "1700000000.000021").replace(b"T0001", b"T0THER")),
        ),
    ]
    try:
        for envelope in envelopes:
            await socket.accept(envelope)  # dropped, not raised: acknowledged, never resent
    finally:
        await socket.close()
    await inbound.idle()
    async with plane.store.engine.connect() as conn:
        rows = (await conn.execute(sa.text("select key from slack_inbox"))).all()
    assert rows == []
