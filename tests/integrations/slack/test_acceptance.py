"""Slack's acceptance, the whole path at once: the fake Slack delivers signed events over real
HTTP to the real API served on loopback; the session really runs (the runtime in-process, the
scripted model, git through the proxy to the fake GitHub, where the pull request is opened);
what the app posts comes back through the real slack_sdk client into the fake's threads.

A mention gets 👀 within 3 s and starts a session from Slack; one status message is edited in
place; the final message links the pull request; a reply in the thread is the same session's
next prompt (and gets its own final message, the status message still the one); a DM works the
same way. Both connection modes: the Events API and Socket Mode."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openinspect.settings import ServerSettings
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.slack import FakeSlack, Message
from tests.automations import github_helpers as gh
from tests.integrations.serving import free_port, served
from tests.integrations.slack.helpers import keyed, settings_for, shown, slack_plane, until

ALICE = "U0ALICE"
CHANNEL = "C0ENG"
ACK_WITHIN_S = 3.0


@pytest.fixture
def github(origin: Path) -> Iterator[FakeGitHub]:
    with gh.fake_github(origin) as opened:
        yield opened


def turn(tool: str, **args: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "args": args}], "delay_ms": 300}


def ours(slack: FakeSlack, channel: str, ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, ts) if m.bot_id]


async def reacted_within(slack: FakeSlack, channel: str, ts: str, posted_at: float) -> float:
    async def eyes() -> bool:
        return "eyes" in slack.reactions(channel, ts)

    await until(eyes, "the 👀 reaction", timeout_s=10)
    return time.monotonic() - posted_at


@pytest.mark.parametrize("mode", ["events", "socket"])
async def test_a_mention_runs_a_session_that_reports_in_its_thread_and_a_reply_continues_it(
    tmp_path: Path, llm: ScriptedLLMServer, github: FakeGitHub, mode: str
) -> None:
    llm.reset(
        {
            "turns": [
                turn("bash", command="echo '# faster' >> calc.py"),
                turn("create_pull_request", title="Faster widgets", body="Speed."),
                {"text": "Made the widgets faster and opened a pull request.", "delay_ms": 300},
                turn("bash", command="echo '# empty case' >> calc.py"),
                {"text": "Handled the empty case too.", "delay_ms": 300},
                {"text": "The README has no typo.", "delay_ms": 300},
            ]
        }
    )
    port = free_port()
    with FakeSlack(
        bot_token="xoxb-acceptance-token", signing_secret="s3cret-signing", app_token="xapp-accept"
    ) as slack:
        if mode == "events":  # Slack POSTs to us; in Socket Mode we dial Slack instead
            slack.events_url = f"http://127.0.0.1:{port}/slack/events"
            slack.interactions_url = f"http://127.0.0.1:{port}/slack/interactions"
        slack.add_user(ALICE, name="alice", email="alice@example.com")
        slack.add_channel(CHANNEL, name="eng")
        settings = settings_for(
            tmp_path / "home", llm, slack, github, mode=mode, app_token="xapp-accept"
        )
        # alice is a member without a GitHub identity here: single-tenant repo access.
        settings = settings.model_copy(
            update={
                "server": ServerSettings(host="127.0.0.1", port=port),
                "github": settings.github.model_copy(update={"access_check": False}),
            }
        )
        async with slack_plane(settings) as plane, served(plane, port) as url:
            admin = plane.bootstrap.user
            assert admin is not None
            await plane.store.repos.create(
                name="widgets", url=gh.repo_url(github), default_branch="main", created_by=admin.id
            )
            alice = await plane.store.users.create(
                name="alice", email="alice@example.com", role="member"
            )
            if mode == "socket":
                await slack.await_socket(timeout_s=20)

            # A mention in a channel: 👀 at once, a session from Slack, one status message.
            posted_at = time.monotonic()
            ts = await slack.apost_user_message(
                CHANNEL, ALICE, "<@UBOT> make the widgets faster in widgets and open a PR"
            )
            assert await reacted_within(slack, CHANNEL, ts, posted_at) < ACK_WITHIN_S

            async def thread_session() -> Any:
                row = await plane.store.slack_threads.by_thread(slack.team_id, CHANNEL, ts)
                return await plane.store.sessions.get(row.session_id) if row else None

            session = await until(thread_session, "the thread's session")
            assert session.origin == "slack" and session.creator_id == alice.id
            assert session.origin_ref == f"slack:{slack.team_id}/{CHANNEL}/{ts}"

            async def prompts(count: int) -> Any:
                found = await plane.store.prompts.for_session(session.id)
                return found if len(found) >= count else None

            [first] = await until(lambda: prompts(1), "the first prompt")
            assert first.author.id == alice.id
            [final] = await until(
                lambda: keyed(ours(slack, CHANNEL, ts), f"final:{first.id}"), "the final message"
            )
            [pull] = github.pulls(gh.REPO)
            text = shown(final)
            assert "Made the widgets faster" in text
            assert f"/pull/{pull.number}|#{pull.number}>" in text
            assert session.branch in text and f"/sessions/{session.id}" in text

            # A reply in the thread that mentions the app: the same session's second prompt.
            reply_ts = await slack.apost_user_message(
                CHANNEL, ALICE, "<@UBOT> also handle the empty case", thread_ts=ts
            )
            second = (await until(lambda: prompts(2), "the reply's prompt"))[1]
            assert "also handle the empty case" in second.content
            [again] = await until(
                lambda: keyed(ours(slack, CHANNEL, ts), f"final:{second.id}"), "the 2nd final"
            )
            assert "Handled the empty case" in shown(again)
            assert "eyes" in slack.reactions(CHANNEL, reply_ts)
            # A reply without a mention is people talking: nothing happens.
            await slack.apost_user_message(CHANNEL, ALICE, "nice, thanks", thread_ts=ts)
            await slack.await_deliveries()

            # One status message, edited in place, then one final message per prompt.
            status_key = f"status:{session.id}"
            mine = ours(slack, CHANNEL, ts)
            [status] = keyed(mine, status_key)
            assert [m.ts for m in mine] == [status.ts, final.ts, again.ts]
            assert status.edits >= 2
            assert len(await plane.store.prompts.for_session(session.id)) == 2
            updates = [c for c in slack.calls("chat.update") if c.args.get("channel") == CHANNEL]
            assert updates and {c.args.get("ts") for c in updates} == {status.ts}

            # A DM: no mention needed, a session of its own.
            dm = slack.open_dm(ALICE)
            dm_ts = await slack.apost_user_message(dm, ALICE, "check the README in widgets")

            async def dm_final() -> Any:
                row = await plane.store.slack_threads.by_thread(slack.team_id, dm, dm_ts)
                if row is None:
                    return None
                return [m for m in ours(slack, dm, dm_ts) if "README has no typo" in shown(m)]

            await until(dm_final, "the DM's final message")
            dm_row = await plane.store.slack_threads.by_thread(slack.team_id, dm, dm_ts)
            assert dm_row is not None and dm_row.session_id != session.id and dm_row.is_dm

            # The web app's API shows the session as started from Slack, with its thread.
            token = await plane.store.users.create_token(alice.id, "alice's token")
            async with httpx.AsyncClient(base_url=url) as http:
                got = await http.get(
                    f"/api/sessions/{session.id}", headers={"Authorization": f"Bearer {token}"}
                )
            assert got.status_code == 200
            body = got.json()["session"]
            assert body["origin"] == "slack" and body["origin_ref"] == session.origin_ref
            assert "xoxb-acceptance-token" not in json.dumps(got.json())
