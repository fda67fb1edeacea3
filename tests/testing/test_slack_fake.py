"""The fake Slack through slack_sdk's real clients: the Web API methods, the Events API
deliveries (signed, retried) and the inspection API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.testing.slack import FakeSlack
from tests.testing.slack_receiver import Receiver

SECRET = "s3cret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


@pytest.fixture
def slack(receiver: Receiver) -> Iterator[FakeSlack]:
    fake = FakeSlack(signing_secret=SECRET, retry_delays_s=(0.0, 0.05, 0.05), ack_timeout_s=0.5)
    with fake:
        fake.events_url = receiver.events_url
        fake.interactions_url = receiver.interactions_url
        fake.add_user("U1", name="alice", email="alice@example.com", real_name="Alice A")
        fake.add_user("U2", name="bob")
        fake.add_channel("C1", name="eng")
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.api_url)


async def api_error(coro: object) -> str:
    with pytest.raises(SlackApiError) as info:
        await coro  # type: ignore[misc]
    return str(info.value.response["error"])


# ---------------------------------------------------------------------- Web API


async def test_auth_and_tokens(slack: FakeSlack, client: AsyncWebClient) -> None:
    me = await client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("UBOT", "BBOT", "T0001")
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert await api_error(wrong.auth_test()) == "invalid_auth"
    none = AsyncWebClient(base_url=slack.api_url)
    assert await api_error(none.auth_test()) == "not_authed"
    assert await api_error(client.api_call("nope.nothing")) == "unknown_method"
    app = AsyncWebClient(token="xapp-test", base_url=slack.api_url)
    assert await api_error(app.auth_test()) == "not_allowed_token_type"
    assert await api_error(client.apps_connections_open(app_token="xoxb-test")) == "invalid_auth"
    opened = await app.apps_connections_open(app_token="xapp-test")
    assert opened["url"].startswith(f"ws://127.0.0.1:{slack.port}/socket-mode?ticket=")
    kinds = [(c.method, c.token_kind) for c in slack.calls()]
    assert ("auth.test", "invalid") in kinds and ("apps.connections.open", "app") in kinds
    assert all("token" not in c.args for c in slack.calls())


async def test_post_update_delete_and_threads(slack: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    meta = {"event_type": "oi_session", "event_payload": {"session_id": "s1"}}
    posted = await client.chat_postMessage(channel="C1", text="hi", blocks=blocks, metadata=meta)
    ts = posted["ts"]
    assert posted["channel"] == "C1" and posted["message"]["bot_id"] == "BBOT"
    reply = await client.chat_postMessage(channel="C1", text="in thread", thread_ts=ts)
    await client.chat_update(channel="C1", ts=ts, text="hi again")
    [parent, child] = slack.thread("C1", ts)
    assert (parent.text, parent.edits, parent.blocks) == ("hi again", 1, blocks)
    assert child.ts == reply["ts"] and child.thread_ts == ts
    assert parent.metadata == meta

    replies = await client.conversations_replies(channel="C1", ts=ts)
    assert [m["ts"] for m in replies["messages"]] == [ts, reply["ts"]]
    assert "metadata" not in replies["messages"][0]
    assert replies["messages"][0]["reply_count"] == 1
    with_meta = await client.conversations_replies(channel="C1", ts=ts, include_all_metadata=True)
    assert with_meta["messages"][0]["metadata"] == meta
    page = await client.conversations_replies(channel="C1", ts=ts, limit=1)
    assert page["has_more"] and len(page["messages"]) == 1
    rest = await client.conversations_replies(
        channel="C1", ts=ts, limit=1, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == [reply["ts"]] and not rest["has_more"]

    history = await client.conversations_history(channel="C1")
    assert [m["ts"] for m in history["messages"]] == [ts]  # replies stay in their thread

    user_ts = slack.post_user_message("C1", "U1", "mine")
    assert await api_error(client.chat_update(channel="C1", ts=user_ts, text="x")) == (
        "cant_update_message"
    )
    assert await api_error(client.chat_update(channel="C1", ts="1.000001", text="x")) == (
        "message_not_found"
    )
    await client.chat_delete(channel="C1", ts=reply["ts"])
    assert slack.messages("C1")[1].deleted
    assert [m.ts for m in slack.thread("C1", ts)] == [ts]
    link = await client.chat_getPermalink(channel="C1", message_ts=ts)
    assert link["permalink"].endswith(f"/archives/C1/p{ts.replace('.', '')}")


async def test_errors_and_limits(slack: FakeSlack, client: AsyncWebClient) -> None:
    assert await api_error(client.chat_postMessage(channel="C404", text="x")) == (
        "channel_not_found"
    )
    assert await api_error(client.chat_postMessage(channel="C1", text="x" * 40_001)) == (
        "msg_too_long"
    )
    many = [{"type": "divider"}] * 51
    assert await api_error(client.chat_postMessage(channel="C1", text="x", blocks=many)) == (
        "invalid_blocks"
    )
    empty = client.api_call("chat.postMessage", json={"channel": "C1"})
    assert await api_error(empty) == "no_text"
    assert await api_error(client.users_info(user="U404")) == "user_not_found"
    assert await api_error(client.users_lookupByEmail(email="x@y.z")) == "users_not_found"
    big = "x" * (1024 * 1024 + 10)
    huge = client.api_call("chat.postMessage", json={"channel": "C1", "text": big})
    assert await api_error(huge) == "request_too_large"  # HTTP 413
    assert slack.messages("C1") == []


async def test_dm_by_user_id_and_conversations_open(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    opened = await client.conversations_open(users="U1")
    dm = opened["channel"]["id"]
    assert dm.startswith("D") and dm == slack.open_dm("U1")
    posted = await client.chat_postMessage(channel="U1", text="hello")
    assert posted["channel"] == dm
    info = await client.conversations_info(channel=dm)
    assert info["channel"]["is_im"] and info["channel"]["user"] == "U1"
    chan = await client.conversations_info(channel="C1")
    assert chan["channel"]["name"] == "eng" and chan["channel"]["is_member"]


async def test_users(slack: FakeSlack, client: AsyncWebClient) -> None:
    info = await client.users_info(user="U1")
    profile = info["user"]["profile"]
    assert (profile["email"], profile["real_name"], profile["display_name"]) == (
        "alice@example.com",
        "Alice A",
        "alice",
    )
    assert info["user"]["is_bot"] is False
    found = await client.users_lookupByEmail(email="ALICE@example.com")
    assert found["user"]["id"] == "U1"
    bot = await client.users_info(user="UBOT")
    assert bot["user"]["is_bot"] is True


async def test_ephemeral_and_reactions(slack: FakeSlack, client: AsyncWebClient) -> None:
    sent = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    [eph] = slack.ephemerals("C1", "U1")
    assert eph.message_ts == sent["message_ts"] and eph.text == "only you"
    assert slack.ephemerals("C1", "U2") == []
    ts = slack.post_user_message("C1", "U1", "hey")
    await client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert await api_error(client.reactions_add(channel="C1", timestamp=ts, name="eyes")) == (
        "already_reacted"
    )
    assert slack.reactions("C1", ts) == {"eyes": ["UBOT"]}
    await client.reactions_remove(channel="C1", timestamp=ts, name="eyes")
    assert await api_error(client.reactions_remove(channel="C1", timestamp=ts, name="eyes")) == (
        "no_reaction"
    )
    assert slack.reactions("C1", ts) == {}
    assert await api_error(client.reactions_add(channel="C1", timestamp="9.9", name="x")) == (
        "message_not_found"
    )


async def test_views(slack: FakeSlack, client: AsyncWebClient) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "a"}}],
    }
    first = await client.views_publish(user_id="U1", view=home)
    second = await client.views_publish(user_id="U1", view=home, hash=first["view"]["hash"])
    assert second["view"]["id"] == first["view"]["id"]
    stale = client.views_publish(user_id="U1", view=home, hash=first["view"]["hash"])
    assert await api_error(stale) == "hash_conflict"
    too_big = {"type": "home", "blocks": [{"type": "divider"}] * 101}
    assert await api_error(client.views_publish(user_id="U1", view=too_big)) == (
        "invalid_arguments"
    )
    view = slack.home_view("U1")
    assert view is not None and view.blocks == home["blocks"]
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
    assert await api_error(client.views_open(trigger_id="1.2.x", view=modal)) == (
        "invalid_trigger_id"
    )


async def test_rate_limit_and_server_error(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C1", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    slack.fail_next("chat.postMessage", error="internal_error", status=500)
    assert await api_error(client.chat_postMessage(channel="C1", text="x")) == "internal_error"
    retrying = AsyncWebClient(
        token="xoxb-test",
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail_next("chat.postMessage", retry_after=0)
    ok = await retrying.chat_postMessage(channel="C1", text="after the limit")
    assert ok["ok"] and [m.text for m in slack.messages("C1")] == ["after the limit"]
    statuses = [c.status for c in slack.calls("chat.postMessage")]
    assert statuses == [429, 500, 429, 200]


def test_sync_web_client(slack: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=slack.api_url)
    posted = client.chat_postMessage(channel="C1", text="from sync")
    client.reactions_add(channel="C1", timestamp=posted["ts"], name="tada")
    assert slack.reactions("C1", posted["ts"]) == {"tada": ["UBOT"]}
    assert client.users_lookupByEmail(email="alice@example.com")["user"]["id"] == "U1"


# ---------------------------------------------------------------------- Events API


async def test_mention_in_channel_delivers_app_mention_and_message(
    slack: FakeSlack, receiver: Receiver
) -> None:
    ts = await slack.apost_user_message("C1", "U1", "<@UBOT> fix the bug")
    deliveries = await slack.await_deliveries()
    assert [d.type for d in deliveries] == ["app_mention", "message"]
    assert all(d.acked and len(d.attempts) == 1 for d in deliveries)
    assert len({d.id for d in deliveries}) == 2
    bodies = [r.json for r in receiver.received]
    assert all(r.valid for r in receiver.received)
    mention, message = (b["event"] for b in bodies)
    assert (mention["channel"], mention["ts"]) == (message["channel"], message["ts"]) == ("C1", ts)
    assert "channel_type" not in mention and message["channel_type"] == "channel"
    assert mention["user"] == "U1" and mention["text"] == "<@UBOT> fix the bug"
    body = bodies[0]
    assert body["type"] == "event_callback" and body["event_id"].startswith("Ev")
    assert body["authorizations"][0] == {
        "enterprise_id": None,
        "team_id": "T0001",
        "user_id": "UBOT",
        "is_bot": True,
        "is_enterprise_install": False,
    }
    assert mention["client_msg_id"] and mention["event_ts"] == ts


async def test_thread_reply_dm_and_bot_message(slack: FakeSlack, receiver: Receiver) -> None:
    root = slack.post_user_message("C1", "U1", "no mention here")
    slack.post_user_message("C1", "U2", "reply", thread_ts=root)
    dm = slack.open_dm("U1")
    slack.post_user_message(dm, "U1", "<@UBOT> in a DM")
    slack.post_bot_message("C1", "beep")
    slack.add_channel("C2", name="random", member=False)
    slack.post_user_message("C2", "U1", "<@UBOT> not in here")
    deliveries = await slack.await_deliveries()
    events = [d.event for d in deliveries]
    assert [e["type"] for e in events] == ["message"] * 4
    assert "thread_ts" not in events[0] and events[1]["thread_ts"] == root
    assert events[1]["parent_user_id"] == "U1"
    assert events[2]["channel_type"] == "im" and events[2]["channel"] == dm
    assert events[3]["subtype"] == "bot_message" and events[3]["bot_id"] == "B0OTHER"
    assert [m.text for m in slack.thread("C1", root)] == ["no mention here", "reply"]


async def test_home_opened(slack: FakeSlack, receiver: Receiver) -> None:
    slack.open_home("U1")
    [delivery] = await slack.await_deliveries()
    assert delivery.event["type"] == "app_home_opened" and delivery.event["tab"] == "home"
    assert delivery.event["user"] == "U1"


async def test_retries_on_500_with_headers_and_fresh_signature(
    slack: FakeSlack, receiver: Receiver
) -> None:
    receiver.plan.statuses = [500, 503]
    slack.post_user_message("C1", "U1", "hello")
    [delivery] = await slack.await_deliveries()
    assert [a.result for a in delivery.attempts] == [500, 503, 200]
    assert [a.retry_reason for a in delivery.attempts] == [None, "http_error", "http_error"]
    tries = receiver.received
    assert [r.headers.get("x-slack-retry-num") for r in tries] == [None, "1", "2"]
    assert tries[1].headers["x-slack-retry-reason"] == "http_error"
    assert len({r.json["event_id"] for r in tries}) == 1
    assert all(r.valid for r in tries)


async def test_slow_receiver_times_out_and_is_retried(slack: FakeSlack, receiver: Receiver) -> None:
    receiver.plan.delays_s = [1.0]
    slack.post_user_message("C1", "U1", "slow")
    [delivery] = await slack.await_deliveries()
    first, second = delivery.attempts
    assert first.result == "timeout" and first.seconds >= 0.5
    assert second.result == 200 and second.retry_reason == "http_timeout"
    assert receiver.received[1].headers["x-slack-retry-reason"] == "http_timeout"


async def test_no_retry_header_stops_retries(slack: FakeSlack, receiver: Receiver) -> None:
    receiver.plan.statuses = [500]
    receiver.plan.no_retry = True
    slack.post_user_message("C1", "U1", "once")
    [delivery] = await slack.await_deliveries()
    assert [a.result for a in delivery.attempts] == [500] and not delivery.acked


async def test_gives_up_after_the_retries(slack: FakeSlack, receiver: Receiver) -> None:
    receiver.plan.statuses = [500] * 10
    slack.post_user_message("C1", "U1", "never")
    [delivery] = await slack.await_deliveries()
    assert len(delivery.attempts) == 4 and delivery.done and not delivery.acked


async def test_deliveries_keep_order(slack: FakeSlack, receiver: Receiver) -> None:
    receiver.plan.statuses = [500]
    for i in range(5):
        slack.post_user_message("C1", "U1", f"m{i}")
    await slack.await_deliveries()
    texts = [r.json["event"]["text"] for r in receiver.received]
    assert texts == ["m0", "m0", "m1", "m2", "m3", "m4"]


def test_sync_wait_and_url_verification(slack: FakeSlack, receiver: Receiver) -> None:
    slack.post_user_message("C1", "U1", "sync")
    assert [d.type for d in slack.wait_for_deliveries(5)] == ["message"]
    status, _, body = slack.verify_url()
    assert status == 200 and b"challenge" in body


async def test_raw_forged_deliveries(slack: FakeSlack, receiver: Receiver) -> None:
    body = {"type": "event_callback", "event": {"type": "message"}, "event_id": "Ev1"}
    assert (await slack.asend_event(body))[0] == 200
    assert (await slack.asend_event(body, signature="v0=" + "0" * 64))[0] == 401
    assert (await slack.asend_event(body, timestamp=1))[0] == 401
    status, _, _ = await slack.asend_interaction({"type": "block_actions"})
    assert status == 200
    assert [r.valid for r in receiver.received] == [True, False, False, True]
