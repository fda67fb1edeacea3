"""Socket Mode: the same flows with the app dialling the fake Slack over a WebSocket (slack_sdk's
aiohttp client), envelopes acknowledged after the inbox commit, and a reconnect on Slack's
``disconnect``."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from openinspect.store.tables import slack_inbox
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.integrations.slack.conftest import BOT, TEAM, slack_world, until


async def test_mentions_replies_and_dms_over_socket_mode(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    async with slack_world(tmp_path, llm, origin, socket_mode=True) as world:
        fake, store = world.fake, world.plane.store
        fake.add_user("U1", name="alice", email="alice@example.com")
        fake.add_channel("C1", name="eng")
        await world.member("alice", "alice@example.com")
        await fake.await_socket(timeout_s=20)
        assert world.plane.services.holds("slack_socket") is not None

        ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> fix the bug over the socket")
        await fake.await_until(lambda f: "eyes" in f.reactions("C1", ts), timeout_s=3)
        session = await world.thread_session("C1", ts)
        assert session.origin == "slack"
        await fake.apost_user_message("C1", "U1", f"<@{BOT}> and a test", thread_ts=ts)
        prompts = await world.prompts(session.id, 2)
        assert [p.content for p in prompts][1] == "and a test"

        # Slack asks the app to reconnect; the next DM arrives on the new connection.
        connects = fake.socket_connects
        fake.disconnect_socket()
        await fake.await_socket(timeout_s=20, connects=connects + 1)
        dm = fake.open_dm("U1")
        dm_ts = await fake.apost_user_message(dm, "U1", "rename the module")
        dm_session = await world.thread_session(dm, dm_ts)
        assert dm_session.id != session.id

        # An interactive envelope: a Home select over the socket.
        fake.open_home("U1")
        await fake.await_until(lambda f: f.home_view("U1") is not None, timeout_s=10)
        fake.select("U1", action_id="openinspect_home_repo", option_value="calc", view="home")

        async def chosen() -> bool:
            prefs = await store.slack_people.get(TEAM, "U1")
            return prefs is not None and prefs.default_repo == "calc"

        await until(chosen, what="the Home preference set over the socket")

        await world.settled()
        # Every envelope was acknowledged (no resend made a second row) and no HTTP was used.
        assert len(await world.slack_sessions()) == 2
        assert all(d.acked for d in fake.deliveries)
        async with store.engine.connect() as conn:
            keys = (await conn.execute(sa.select(slack_inbox.c.key))).scalars().all()
        # One row per message (the mention, the reply: each also came as a message event, the DM).
        events = [k for k in keys if k.startswith(f"event:{TEAM}:")]
        assert len(events) == 4 and len(keys) == 5  # and the Home opening, and the select
        acks = [f for f in fake.socket_frames() if "envelope_id" in f]
        assert len(acks) >= len(fake.deliveries)
