"""Delivery's promises: a post that reached Slack is never posted twice, even when the process
dies between Slack's answer and our commit; a rate limit pauses and keeps the row; a permanent
error marks the row failed and is never retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.errors import StoreError
from openinspect.integrations.slack.client import web_client
from openinspect.integrations.slack.delivery import SlackDelivery
from openinspect.settings import Settings
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.slack import FakeSlack
from tests.integrations.slack.helpers import (
    CHANNEL,
    TEAM,
    USER,
    keyed,
    prompt,
    settings_for,
    shown,
    slack_plane,
    start_in_thread,
    until,
)

NOTICE = "notice:test-1"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token="xoxb-test-0123456789") as fake:
        fake.add_user(USER, name="alice", email="alice@example.com")
        fake.add_channel(CHANNEL, name="eng")
        yield fake


def with_outbound(settings: Settings, enabled: bool) -> Settings:
    services = settings.services.model_copy(update={"slack_outbound_enabled": enabled})
    return settings.model_copy(update={"services": services})


def delivery_of(plane: ControlPlane) -> SlackDelivery:
    settings = plane.settings
    return SlackDelivery(
        plane.store.slack_threads, plane.store.engine, settings, web_client(settings.slack)
    )


async def notice(plane: ControlPlane, ts: str, key: str = NOTICE, channel: str = CHANNEL) -> None:
    async with plane.store.engine.begin() as conn:
        await plane.store.slack_threads.enqueue_post(
            conn,
            key=key,
            team_id=TEAM,
            channel_id=channel,
            thread_ts=ts,
            kind="notice",
            body={"text": "Working on it in acme/widgets"},
        )


async def fail_recording(plane: ControlPlane, key: str) -> None:
    """The store refuses to record that the post with ``key`` was delivered (as a disk or
    connection failing right after Slack answered)."""
    async with plane.store.engine.begin() as conn:
        await conn.exec_driver_sql(
            "CREATE TRIGGER lose_ts BEFORE UPDATE OF ts ON slack_posts "
            f"WHEN OLD.key = '{key}' AND NEW.ts IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'the disk is gone'); END"
        )


async def heal(plane: ControlPlane) -> None:
    async with plane.store.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TRIGGER lose_ts")


def bots(slack: FakeSlack, ts: str) -> list[Any]:
    return [m for m in slack.thread(CHANNEL, ts) if m.bot_id]


@pytest.mark.parametrize("kind", ["status", "notice"])
async def test_a_post_slack_took_before_a_crash_is_adopted_not_posted_again(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path, kind: str
) -> None:
    llm.reset({"turns": [{"text": "All done."}]})
    settings = settings_for(tmp_path / "home", llm, slack)
    async with slack_plane(with_outbound(settings, False)) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin))
        key = f"status:{session.id}" if kind == "status" else NOTICE
        if kind == "notice":
            await notice(plane, ts)
        await fail_recording(plane, key)
        with pytest.raises(StoreError):  # the trigger's abort, as the store maps it
            await delivery_of(plane).deliver()
        # Slack has the message; our store does not know its ts. Then the process "dies".
        assert len(keyed(bots(slack, ts), key)) == 1
        row = await plane.store.slack_threads.post(key)
        assert row is not None and row.ts is None and row.attempts == 1
        await heal(plane)

    async with slack_plane(with_outbound(settings, True)) as plane:
        row = await until(
            lambda: _posted(plane, key), "the post recorded after the restart", timeout_s=20
        )
        [message] = keyed(bots(slack, ts), key)
        assert row.ts == message.ts
        assert slack.calls("conversations.replies")  # looked before posting again
        # The thread carries on on the adopted message: the status ends in its final state.
        asked = await prompt(plane, session, "Finish it", ts)
        await until(lambda: keyed(bots(slack, ts), f"final:{asked.id}"), "the final")
        [status] = await until(
            lambda: [
                m for m in keyed(bots(slack, ts), f"status:{session.id}") if "Done" in shown(m)
            ],
            "the status in its final state",
        )
        thread = await plane.store.slack_threads.by_session(session.id)
        assert thread is not None and thread.status_ts == status.ts

    assert len(keyed(bots(slack, ts), key)) == 1
    assert len(keyed(bots(slack, ts), f"status:{session.id}")) == 1


async def _posted(plane: ControlPlane, key: str) -> Any:
    row = await plane.store.slack_threads.post(key)
    return row if row is not None and row.ts else None


async def test_a_rate_limit_pauses_delivery_and_keeps_the_row(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    settings = settings_for(tmp_path / "home", llm, slack)
    async with slack_plane(with_outbound(settings, False)) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin))
        delivery = delivery_of(plane)
        slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
        wait_s = await delivery.deliver()
        assert wait_s is not None and 0.5 <= wait_s <= 1.0
        assert not bots(slack, ts)
        assert await delivery.deliver() == pytest.approx(delivery.paused_s, abs=0.1)  # no call
        await until(lambda: delivery.paused_s == 0, "the pause to pass", timeout_s=5)
        await delivery.deliver()
        [status] = keyed(bots(slack, ts), f"status:{session.id}")
        row = await plane.store.slack_threads.post(f"status:{session.id}")
        assert row is not None and row.ts == status.ts and row.error_code is None


async def test_a_permanent_error_marks_the_row_failed_and_never_loops(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    settings = settings_for(tmp_path / "home", llm, slack)
    async with slack_plane(with_outbound(settings, False)) as plane:
        _session, ts = await start_in_thread(plane, slack, str(origin))
        await notice(plane, ts, key="notice:gone", channel="C0GONE")
        delivery = delivery_of(plane)
        await delivery.deliver()
        row = await plane.store.slack_threads.post("notice:gone")
        assert row is not None and row.error_code == "channel_not_found" and row.ts is None
        calls = len(slack.calls("chat.postMessage"))
        await delivery.deliver()
        await delivery.deliver()
        assert len(slack.calls("chat.postMessage")) == calls
        assert len(bots(slack, ts)) == 1  # the status message, unaffected


async def test_a_running_status_is_refreshed_during_a_long_silent_step(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    settings = settings_for(tmp_path / "home", llm, slack)
    async with slack_plane(with_outbound(settings, False)) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin))
        async with plane.store.engine.begin() as conn:
            await plane.store.slack_threads.save_state(
                conn,
                session.id,
                {"status": "running", "step": "Running `bash`", "detail": "sleep 600"},
            )
        now = [1_000.0]
        delivery = SlackDelivery(
            plane.store.slack_threads,
            plane.store.engine,
            settings,
            web_client(settings.slack),
            clock=lambda: now[0],
            refresh_s=30,
        )
        await delivery.deliver()
        [status] = keyed(bots(slack, ts), f"status:{session.id}")
        assert "sleep 600" in shown(status)
        now[0] += 29
        await delivery.deliver()
        assert slack.calls("chat.update") == []  # nothing new, not yet due
        now[0] += 2
        await delivery.deliver()
        await delivery.deliver()
        assert len(slack.calls("chat.update")) == 1
        # Once the thread no longer runs, the refresh stops.
        async with plane.store.engine.begin() as conn:
            await plane.store.slack_threads.save_state(
                conn, session.id, {"status": "finished", "step": "Done"}
            )
        now[0] += 5
        await delivery.deliver()
        now[0] += 60
        await delivery.deliver()
        updates = slack.calls("chat.update")
        assert len(updates) == 2 and "Done" in str(updates[-1].args.get("blocks"))
