"""Mentions, DMs and thread replies through the fake Slack and slack_sdk: sessions start with
origin ``slack`` and a thread row, replies become prompts, Slack's duplicates count once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from openinspect.domain.commands import StartSession
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.integrations.slack.conftest import BOT, TEAM, WAIT_S, SlackWorld, slack_world, until


async def test_a_mention_reacts_at_once_and_starts_a_session_with_its_thread(
    world: SlackWorld,
) -> None:
    fake, store = world.fake, world.plane.store
    began = time.monotonic()
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> fix the bug in calc please")
    await fake.await_until(lambda f: "eyes" in f.reactions("C1", ts), timeout_s=3)
    assert time.monotonic() - began < 3
    session = await world.thread_session("C1", ts)
    assert session.origin == "slack"
    assert session.origin_ref == f"slack:{TEAM}/C1/{ts}"
    assert session.title == "fix the bug in calc please"
    thread = await store.slack_threads.by_session(session.id)
    assert thread is not None
    assert (thread.channel_type, thread.slack_user_id, thread.thread_ts) == ("channel", "U1", ts)
    [prompt] = await world.prompts(session.id, 1)
    assert prompt.content == "fix the bug in calc please"  # the bot's mention removed
    assert prompt.author.email == "alice@example.com"  # U1 mapped to alice by email
    await world.settled()
    # app_mention and message both came for this one message: one session.
    assert sorted(d.type for d in fake.deliveries) == ["app_mention", "message"]
    assert [s.id for s in await world.slack_sessions()] == [session.id]
    linked = await store.slack_people.get(TEAM, "U1")
    assert linked is not None and linked.linked_by == "email"


async def test_a_reply_in_the_thread_is_a_second_prompt_of_the_same_session(
    world: SlackWorld,
) -> None:
    fake = world.fake
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> add a subtract function")
    session = await world.thread_session("C1", ts)
    await world.prompts(session.id, 1)
    # Without a mention, a channel reply is conversation between people: no prompt.
    await fake.apost_user_message("C1", "U1", "looks like it is working", thread_ts=ts)
    reply = await fake.apost_user_message("C1", "U1", f"<@{BOT}> now add tests too", thread_ts=ts)
    prompts = await world.prompts(session.id, 2)
    assert [p.content for p in prompts] == ["add a subtract function", "now add tests too"]
    await fake.await_until(lambda f: "eyes" in f.reactions("C1", reply), timeout_s=3)
    await world.settled()
    assert len(await world.plane.store.prompts.for_session(session.id)) == 2
    assert len(await world.slack_sessions()) == 1


async def test_a_dm_starts_a_session_and_any_reply_in_it_prompts(world: SlackWorld) -> None:
    fake = world.fake
    dm = fake.open_dm("U1")
    ts = await fake.apost_user_message(dm, "U1", "please rename the module")
    session = await world.thread_session(dm, ts)
    thread = await world.plane.store.slack_threads.by_session(session.id)
    assert thread is not None and thread.is_dm
    await fake.apost_user_message(dm, "U1", "and update the readme", thread_ts=ts)
    prompts = await world.prompts(session.id, 2)
    assert [p.content for p in prompts] == ["please rename the module", "and update the readme"]


async def test_bot_messages_and_unmentioned_channel_messages_start_nothing(
    world: SlackWorld,
) -> None:
    fake = world.fake
    fake.post_bot_message("C1", "<@UBOT> I am a bot")
    await fake.apost_user_message("C1", "U1", "just chatting about calc")
    await world.settled()
    assert await world.slack_sessions() == []


async def test_a_retried_event_is_handled_once(world: SlackWorld) -> None:
    fake, store = world.fake, world.plane.store
    event = {
        "token": "x",
        "team_id": TEAM,
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": "EvRETRY1",
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": "U1",
            "text": f"<@{BOT}> retry me",
            "ts": "1700000000.000100",
            "channel": "C1",
            "event_ts": "1700000000.000100",
        },
        "authorizations": [{"team_id": TEAM, "user_id": BOT, "is_bot": True}],
    }
    body = json.dumps(event).encode()
    for retry in (None, 1, 2):
        status, _, _ = await fake.asend_event(body, retry_num=retry)
        assert status == 200
    await world.settled()
    row = await store.slack_inbox.by_key(f"event:{TEAM}:EvRETRY1")
    assert row is not None and row.status == "done"
    [session] = await world.slack_sessions()
    assert len(await store.prompts.for_session(session.id)) == 1


async def test_an_event_of_another_team_is_ignored(world: SlackWorld) -> None:
    fake = world.fake
    event = {
        "token": "x",
        "team_id": "T0THER",
        "type": "event_callback",
        "event_id": "EvOTHER1",
        "event": {
            "type": "app_mention",
            "user": "U1",
            "text": f"<@{BOT}> from elsewhere",
            "ts": "1700000000.000200",
            "channel": "C1",
        },
        "authorizations": [{"team_id": "T0THER", "user_id": BOT, "is_bot": True}],
    }
    status, _, _ = await fake.asend_event(json.dumps(event).encode())
    assert status == 200
    # A delivery of our own team after it, to know the other one had its chance.
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> ours")
    await world.thread_session("C1", ts)
    await world.settled()
    assert len(await world.slack_sessions()) == 1
    assert await world.plane.store.slack_inbox.by_key("event:T0THER:EvOTHER1") is None


async def test_an_unlinked_user_is_sent_link_instructions_and_the_link_flow_links(
    world: SlackWorld,
) -> None:
    fake, store = world.fake, world.plane.store
    fake.add_user("U2", name="bob", email="bob@elsewhere.example")
    ts = await fake.apost_user_message("C1", "U2", f"<@{BOT}> fix it")
    post = await until(lambda: store.slack_threads.post(f"link:{TEAM}:C1:{ts}"))
    assert post.kind == "ephemeral" and post.slack_user_id == "U2"
    url = post.body["blocks"][1]["elements"][0]["url"]
    assert url.startswith(world.url + "/slack/link?code=")
    code = url.split("code=", 1)[1]
    await world.settled()
    assert await world.slack_sessions() == []

    bob, token = await world.member("bob", "bob@corp.example")
    auth = {"Authorization": f"Bearer {token}"}
    info = await world.http.get(f"/api/slack/link/{code}", headers=auth)
    assert info.status_code == 200, info.text
    assert info.json()["slack_user_id"] == "U2" and info.json()["slack_name"] == "bob"
    assert (await store.slack_people.get(TEAM, "U2")) is None  # looking links nothing
    linked = await world.http.post("/api/slack/link", json={"code": code}, headers=auth)
    assert linked.status_code == 200, linked.text
    again = await world.http.post("/api/slack/link", json={"code": code}, headers=auth)
    assert again.status_code == 410 and again.json()["error"]["code"] == "slack_link_used"

    ts2 = await fake.apost_user_message("C1", "U2", f"<@{BOT}> fix it now")
    session = await world.thread_session("C1", ts2)
    assert session.creator_id == bob.id


async def test_allow_unlinked_runs_as_the_app_user(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    async with slack_world(tmp_path, llm, origin, allow_unlinked=True, match_email=False) as w:
        w.fake.add_user("U3", name="carol", email="carol@example.com")
        w.fake.add_channel("C1", name="eng")
        await w.member("carol", "carol@example.com")  # not matched: match_email is off
        ts = await w.fake.apost_user_message("C1", "U3", f"<@{BOT}> tidy up")
        session = await w.thread_session("C1", ts)
        creator = await w.plane.store.users.get(session.creator_id)
        assert creator is not None
        assert (creator.name, creator.role) == ("slack-app", "member")


async def test_a_mention_in_a_thread_without_a_session_starts_one_there_with_its_context(
    world: SlackWorld,
) -> None:
    fake = world.fake
    fake.add_user("U9", name="dave", email="dave@nowhere.example")
    root = await fake.apost_user_message("C1", "U9", "calc crashes on divide by zero")
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> can you fix this?", thread_ts=root)
    session = await world.thread_session("C1", root)
    [prompt] = await world.prompts(session.id, 1)
    assert prompt.content.startswith("can you fix this?")
    assert "BEGIN UNTRUSTED DATA" in prompt.content
    assert "calc crashes on divide by zero" in prompt.content
    thread = await world.plane.store.slack_threads.by_session(session.id)
    assert thread is not None and thread.thread_ts == root
    assert session.origin_ref == f"slack:{TEAM}/C1/{root}"
    del ts


async def test_a_mention_gets_the_outbound_status_message_in_its_thread(
    world: SlackWorld,
) -> None:
    """The whole path: our thread row and kick make the outbound side post its status message
    (and, once the prompt ends, its final message) in the mention's thread."""
    fake = world.fake
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> explain calc")
    session = await world.thread_session("C1", ts)

    def status_posted(f: object) -> bool:
        return any(
            m.bot_id
            and (m.metadata or {}).get("event_payload", {}).get("key") == f"status:{session.id}"
            for m in fake.thread("C1", ts)
        )

    await fake.await_until(status_posted, timeout_s=WAIT_S)
    thread = await until(
        lambda: _with_status(world, session.id), what="the status message's ts recorded"
    )
    assert thread.status_ts is not None


async def _with_status(world: SlackWorld, session_id: str) -> Any:
    thread = await world.plane.store.slack_threads.by_session(session_id)
    return thread if thread is not None and thread.status_ts else None


async def test_a_reply_by_someone_who_may_not_see_the_session_is_refused(
    world: SlackWorld,
) -> None:
    fake, store = world.fake, world.plane.store
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> add logging")
    session = await world.thread_session("C1", ts)
    await world.prompts(session.id, 1)
    fake.add_user("U2", name="mallory", email="mallory@example.com")
    await world.member("mallory", "mallory@example.com")
    reply = await fake.apost_user_message("C1", "U2", f"<@{BOT}> delete everything", thread_ts=ts)
    post = await until(lambda: store.slack_threads.post(f"error:{TEAM}:C1:{reply}"))
    assert post.kind == "ephemeral" and post.slack_user_id == "U2"
    assert "No session" in post.body["text"] and "delete everything" not in post.body["text"]
    await world.settled()
    assert len(await store.prompts.for_session(session.id)) == 1


async def test_a_start_that_loses_its_thread_to_another_session_prompts_that_one(
    world: SlackWorld,
) -> None:
    """Two servers started a session for one thread: the second's prompt joins the first's."""
    store, plane = world.plane.store, world.plane
    alice = (await store.users.with_email("alice@example.com"))[0]
    ts = f"{int(time.time())}.000777"
    first = await plane.commands.handle(alice, StartSession(repo="calc"), origin="slack")
    async with store.engine.begin() as conn:
        assert await store.slack_threads.create(
            conn,
            session_id=first.session.id,
            team_id=TEAM,
            channel_id="C1",
            thread_ts=ts,
            channel_type="channel",
            slack_user_id="U1",
        )
    event = {
        "type": "event_callback",
        "team_id": TEAM,
        "event_id": "EvRACE1",
        "event": {
            "type": "app_mention",
            "user": "U1",
            "text": f"<@{BOT}> the late one",
            "ts": ts,
            "channel": "C1",
        },
    }
    status, _, _ = await world.fake.asend_event(json.dumps(event).encode())
    assert status == 200
    [prompt] = await world.prompts(first.session.id, 1)
    assert prompt.content == "the late one"
