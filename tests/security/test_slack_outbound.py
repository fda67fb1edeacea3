"""What the app posts to Slack cannot be turned against the workspace, and its secrets stay
put: text from the agent (its words, its commands, its notifications) can neither ping a channel
or a person nor show a link under a forged label, in any version of any message we send;
notifications are capped; the bot token appears in no log line and no stored error, whatever
Slack answers."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from openinspect.domain.events import Notify, ToolResult
from openinspect.integrations.slack.client import web_client
from openinspect.integrations.slack.delivery import SlackDelivery
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.slack import FakeSlack
from tests.integrations.slack.helpers import (
    CHANNEL,
    TEAM,
    USER,
    keyed,
    prompt,
    settings_for,
    slack_plane,
    start_in_thread,
    until,
)

TOKEN = "xoxb-security-SECRET-4242424242"
SIGNING = "signing-SECRET-2424242424"
HOSTILE = (
    "<!channel> <!here> <!everyone> <@U0ADMIN> <!subteam^S0001> "
    "see <https://evil.example/login|the official docs> <mailto:a@evil.example|HR> &lt;!channel&gt;"
)
FORGED = ("<!channel", "<!here", "<!everyone", "<@U0ADMIN", "<!subteam", "<https://evil", "<mailto")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=TOKEN, signing_secret=SIGNING) as fake:
        fake.add_user(USER, name="alice", email="alice@example.com")
        fake.add_channel(CHANNEL, name="eng")
        yield fake


async def test_agent_text_cannot_ping_mention_or_forge_links_in_anything_we_post(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "bash", "args": {"command": f"echo '{HOSTILE}'"}}]},
                {"tool_calls": [{"name": "notify", "args": {"text": HOSTILE}}]},
                {"text": f"Done. {HOSTILE}", "delay_ms": 300},
            ]
        }
    )
    settings = settings_for(tmp_path / "home", llm, slack)
    async with slack_plane(settings) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin), text="<@UBOT> hi")
        asked = await prompt(plane, session, HOSTILE, ts)
        await until(lambda: keyed(slack.thread(CHANNEL, ts), f"final:{asked.id}"), "the final")
        await until(
            lambda: any(
                "Done" in json.dumps(m.blocks)
                for m in keyed(slack.thread(CHANNEL, ts), f"status:{session.id}")
            ),
            "the status settled",
        )
    sent = [c for c in slack.calls() if c.method in ("chat.postMessage", "chat.update")]
    assert len(sent) >= 4  # the status post, its edits, the notification and the final
    for call in sent:
        shown = json.dumps({k: call.args.get(k) for k in ("text", "blocks")}, ensure_ascii=False)
        for forged in FORGED:
            assert forged not in shown, (call.method, forged, shown)
        assert "|the official docs>" not in shown
    notified = [c for c in sent if "see &lt;https://evil.example/login" in json.dumps(c.args)]
    assert notified, "the notification was posted (escaped)"


def test_notify_text_is_capped_at_the_event() -> None:
    Notify(session_id="ses_1", text="x" * 4_000)
    with pytest.raises(ValidationError):
        Notify(session_id="ses_1", text="x" * 4_001)
    with pytest.raises(ValidationError):
        Notify(session_id="ses_1", text="hi", channel="C" * 33)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_token_is_in_no_log_line_and_no_stored_error(
    tmp_path: Path,
    llm: ScriptedLLMServer,
    slack: FakeSlack,
    origin: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="slack_sdk")  # its request logging too
    caplog.set_level(logging.DEBUG, logger="openinspect.integrations")
    settings = settings_for(tmp_path / "home", llm, slack)
    services = settings.services.model_copy(update={"slack_outbound_enabled": False})
    settings = settings.model_copy(update={"services": services})
    async with slack_plane(settings) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin))

        async def enqueue(key: str, text: str) -> None:
            async with plane.store.engine.begin() as conn:
                await plane.store.slack_threads.enqueue_post(
                    conn,
                    key=key,
                    team_id=TEAM,
                    channel_id=CHANNEL,
                    thread_ts=ts,
                    kind="notice",
                    body={"text": text},
                )

        def delivery(api_url: str, token: str = TOKEN) -> SlackDelivery:
            slack_settings = settings.slack.model_copy(
                update={"api_url": api_url, "bot_token": SecretStr(token)}
            )
            return SlackDelivery(
                plane.store.slack_threads,
                plane.store.engine,
                settings,
                web_client(slack_settings),
            )

        await enqueue("notice:a", "first")
        # Slack down (5xx), Slack unreachable, a refused token, an odd error: none fails a row
        # for the wrong reason, and none shows the token.
        slack.fail_next("chat.postMessage", error="internal_error", status=500)
        assert await delivery(slack.api_url).deliver()
        assert await delivery(f"http://127.0.0.1:{_closed_port()}/api/").deliver()
        wrong = delivery(slack.api_url, token="xoxb-wrong-SECRET-0000")
        assert await wrong.deliver() == pytest.approx(60, abs=1)
        status_key = "status:" + session.id
        for key in (status_key, "notice:a"):
            row = await plane.store.slack_threads.post(key)
            assert row is not None and row.error_code is None and row.ts is None, row
        slack.fail_next(
            "chat.postMessage", error="<!channel> not a code", status=200, retry_after=None
        )
        await delivery(slack.api_url).deliver()
        rows = [await plane.store.slack_threads.post(k) for k in ("notice:a", status_key)]
        assert [row.error_code for row in rows if row] == ["slack_error", None]  # the first only
        await delivery(slack.api_url).deliver()  # the rest goes through
        assert await plane.store.slack_threads.unposted() == []
    assert "Slack refuses the bot token (invalid_auth)" in caplog.text
    assert TOKEN not in caplog.text and "xoxb-wrong-SECRET" not in caplog.text
    assert SIGNING not in caplog.text


async def test_the_agent_cannot_notify_a_channel_the_server_does_not_allow(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    """A hostile agent names channels to post to: the one the server allows gets the post,
    any other (or a user id, or a DM) is refused to the model, and nothing reaches it."""
    slack.add_channel("C0NEWS", name="news")
    slack.add_channel("C0OTHER", name="random")
    targets = ["C0OTHER", "U0ADMIN", "D0SOMEONE", "C0NEWS\nC0OTHER", "c0news"]
    llm.reset(
        {
            "turns": [
                {
                    "tool_calls": [
                        {"name": "notify", "args": {"text": f"to {t!r}", "channel": t}}
                        for t in targets
                    ]
                },
                {"tool_calls": [{"name": "notify", "args": {"text": "news", "channel": "C0NEWS"}}]},
                {"text": "Done.", "delay_ms": 200},
            ]
        }
    )
    settings = settings_for(tmp_path / "home", llm, slack, notify_channels=["C0NEWS"])
    async with slack_plane(settings) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin), text="<@UBOT> hi")
        asked = await prompt(plane, session, "tell people", ts)
        await until(lambda: keyed(slack.thread(CHANNEL, ts), f"final:{asked.id}"), "the final")
        await until(lambda: slack.messages("C0NEWS"), "the allowed post")
        events = await plane.store.events.after(session.id, 0, 500)
    results = [e for e in events if isinstance(e, ToolResult) and e.tool == "notify"]
    refused = [r for r in results if r.is_error]
    assert len(refused) == len(targets), [r.output for r in results]
    assert all("not one this server lets the agent post to" in r.output for r in refused)
    assert [m.text for m in slack.messages("C0NEWS") if m.bot_id]
    assert not [m for m in slack.messages("C0OTHER") if m.bot_id]
    posted = {c.args.get("channel") for c in slack.calls("chat.postMessage")}
    assert posted <= {CHANNEL, "C0NEWS"}, posted
