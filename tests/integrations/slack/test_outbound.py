"""The acceptance of Slack outbound, through the real slack_sdk client against the fake Slack:
one status message per thread, edited in place while the agent works, then one final message
per prompt; a superseded prompt's result is not posted as current; the agent's notify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.domain.events import ToolResult
from openinspect.integrations.slack.render import SUPERSEDED_TEXT
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.slack import FakeSlack
from tests.automations import github_helpers as gh
from tests.integrations.slack.helpers import (
    CHANNEL,
    PUBLIC_URL,
    USER,
    keyed,
    prompt,
    settings_for,
    shown,
    slack_plane,
    start_in_thread,
    until,
)

ALLOWED = "C0NEWS"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token="xoxb-test-0123456789", signing_secret="s3cret-signing") as fake:
        fake.add_user(USER, name="alice", email="alice@example.com")
        fake.add_channel(CHANNEL, name="eng")
        fake.add_channel(ALLOWED, name="news")
        fake.add_channel("C0OTHER", name="random")
        yield fake


@pytest.fixture
def github(origin: Path) -> Iterator[FakeGitHub]:
    with gh.fake_github(origin) as opened:
        yield opened


def turn(tool: str, delay_ms: int = 0, **args: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "args": args}], "delay_ms": delay_ms}


def bot_messages(slack: FakeSlack, ts: str) -> list[Any]:
    return [m for m in slack.thread(CHANNEL, ts) if m.bot_id]


async def test_one_status_message_edited_in_place_then_the_final_message(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, github: FakeGitHub
) -> None:
    llm.reset(
        {
            "turns": [
                turn("bash", 400, command="echo '# faster' >> calc.py; echo changed"),
                turn("write", 400, path="NOTES.md", content="widgets are faster\n"),
                turn("create_pull_request", 400, title="Faster widgets", body="Speed."),
                {"text": "Made the widgets faster <!channel>.", "delay_ms": 400},
            ]
        }
    )
    settings = settings_for(tmp_path / "home", llm, slack, github)
    async with slack_plane(settings) as plane:
        session, ts = await start_in_thread(plane, slack, gh.repo_url(github))
        status_key = f"status:{session.id}"
        # The status message comes at once, before any prompt.
        await until(lambda: keyed(bot_messages(slack, ts), status_key), "the status message")
        asked = await prompt(plane, session, "Make the widgets faster and open a PR", ts)
        final_key = f"final:{asked.id}"
        [final] = await until(lambda: keyed(bot_messages(slack, ts), final_key), "the final")
        [status] = await until(
            lambda: [m for m in keyed(bot_messages(slack, ts), status_key) if "Done" in shown(m)],
            "the status message in its final state",
        )

        async def caught_up() -> object:
            # Events after the prompt's end (the last usage, the sandbox going idle) move the
            # state on; delivery catches up with each.
            row = await plane.store.slack_threads.by_session(session.id)
            return row if row is not None and row.delivered_version == row.version else None

        thread = await until(caught_up, "Slack showing the thread's last state")
        assert thread.status_ts == status.ts

    # One status message, edited in place several times, then one final message after it.
    assert [m.ts for m in bot_messages(slack, ts)] == [status.ts, final.ts]
    assert status.edits >= 3, status.edits
    assert "✅" in shown(status) and "openinspect_stop" not in shown(status)
    [pull] = github.pulls(gh.REPO)
    final_text = shown(final)
    assert "Made the widgets faster" in final_text
    assert "<!channel>" not in final_text and "&lt;!channel&gt;" in final_text
    assert session.branch in final_text
    assert f"{PUBLIC_URL}/sessions/{session.id}" in final_text
    assert f"/pull/{pull.number}|#{pull.number}>" in final_text and "*Cost*" in final_text
    assert "openinspect_create_pr" not in final_text  # a PR exists
    updates = slack.calls("chat.update")
    assert updates and all(c.args.get("ts") == status.ts for c in updates)


async def test_a_prompt_superseded_by_a_newer_one_is_not_posted_as_current(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                turn("bash", 1500, command="echo working"),
                {"text": "FIRST RESULT"},
                {"text": "SECOND RESULT"},
            ]
        }
    )
    settings = settings_for(tmp_path / "home", llm, slack)
    async with slack_plane(settings) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin))
        first = await prompt(plane, session, "Do the first thing", ts)
        await until(lambda: slack.calls("chat.update"), "the first prompt at work")
        reply = await slack.apost_user_message(
            CHANNEL, USER, "<@UBOT> no, the second", thread_ts=ts
        )
        second = await prompt(plane, session, "Do the second thing instead", reply)
        [note] = await until(lambda: keyed(bot_messages(slack, ts), f"final:{first.id}"), "note")
        [final] = await until(lambda: keyed(bot_messages(slack, ts), f"final:{second.id}"), "2nd")
        await until(
            lambda: all(
                "Done" in shown(m) for m in keyed(bot_messages(slack, ts), f"status:{session.id}")
            ),
            "the status settled",
        )

    assert note.text == SUPERSEDED_TEXT
    assert "SECOND RESULT" in shown(final)
    everything = "\n".join(shown(m) for m in slack.thread(CHANNEL, ts))
    assert "FIRST RESULT" not in everything
    assert len(keyed(bot_messages(slack, ts), f"status:{session.id}")) == 1


async def test_notify_posts_in_the_thread_or_an_allowed_channel_and_refuses_others(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                turn("notify", text="Tests are green <!here> <@U0BOSS>"),
                turn("notify", text="Shipped", channel=ALLOWED),
                turn("notify", text="psst", channel="C0OTHER"),
                turn("notify", text="x" * 4_001),
                {"text": "Told everyone."},
            ]
        }
    )
    settings = settings_for(tmp_path / "home", llm, slack, notify_channels=[ALLOWED])
    async with slack_plane(settings) as plane:
        session, ts = await start_in_thread(plane, slack, str(origin))
        asked = await prompt(plane, session, "Tell people", ts)
        await until(lambda: keyed(bot_messages(slack, ts), f"final:{asked.id}"), "the final")
        await until(lambda: [m for m in slack.messages(ALLOWED) if m.bot_id], "the channel post")
        events = await plane.store.events.after(session.id, 0, 500)

    in_thread = [m for m in bot_messages(slack, ts) if "Tests are green" in shown(m)]
    assert len(in_thread) == 1
    text = shown(in_thread[0])
    assert "<!here>" not in text and "<@U0BOSS>" not in text and "&lt;!here&gt;" in text
    [channel_post] = [m for m in slack.messages(ALLOWED) if m.bot_id]
    assert "Shipped" in shown(channel_post) and channel_post.thread_ts in (None, channel_post.ts)
    assert not [m for m in slack.messages("C0OTHER") if m.bot_id]
    results = [e for e in events if isinstance(e, ToolResult) and e.tool == "notify"]
    assert [r.is_error for r in results] == [False, False, True, True]
    assert "not one this server lets the agent post to" in results[2].output
    assert "limit is 4000" in results[3].output
    assert [e.type for e in events].count("notify") == 2
