"""Slack outbound under test: a control plane whose sessions really run (the runtime in-process,
the scripted model, git through the proxy to the fake GitHub) with Slack pointed at the fake
Slack, and the contract's start of a Slack session done straight through the commands and the
store (the inbound side is not needed to test what goes out)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import StartSession, SubmitPrompt
from openinspect.domain.models import Prompt, Session, User
from openinspect.integrations.slack.delivery import OUTBOX_CHANNEL
from openinspect.settings import ServerSettings, Settings, SlackSettings
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.slack import FakeSlack
from tests.automations.conftest import plane_settings
from tests.sessions.bridged import bridged_plane

TEAM, CHANNEL, USER = "T0001", "C0001", "U0001"
PUBLIC_URL = "https://oi.example"
WAIT_S = 60.0


def slack_settings(slack: FakeSlack, **overrides: Any) -> SlackSettings:
    return SlackSettings(
        bot_token=slack.bot_token,
        signing_secret=slack.signing_secret,
        api_url=slack.api_url,
        status_interval_s=overrides.pop("status_interval_s", 0.2),
        **overrides,
    )


def settings_for(
    home: Path,
    llm: ScriptedLLMServer,
    slack: FakeSlack,
    github: FakeGitHub | None = None,
    **slack_overrides: Any,
) -> Settings:
    settings = plane_settings(home, llm)
    update: dict[str, Any] = {
        "slack": slack_settings(slack, **slack_overrides),
        "server": ServerSettings(public_url=PUBLIC_URL),
    }
    if github is not None:
        update["github"] = github.settings(client_id=None, client_secret=None)
    return settings.model_copy(update=update)


@asynccontextmanager
async def slack_plane(settings: Settings) -> AsyncIterator[ControlPlane]:
    async with bridged_plane(settings, git_proxy=True, in_process=True) as plane:
        yield plane


def admin(plane: ControlPlane) -> User:
    user = plane.bootstrap.user
    assert user is not None
    return user


async def start_in_thread(
    plane: ControlPlane, slack: FakeSlack, repo: str, text: str = "<@UBOT> fix the widgets"
) -> tuple[Session, str]:
    """The contract's step 3 without its prompt: a user's message in the channel, the session
    (origin slack), its thread row, a kick. Returns the session and the thread's ts."""
    ts = await slack.apost_user_message(CHANNEL, USER, text)
    started = await plane.commands.handle(
        admin(plane),
        StartSession(
            repo=repo,
            title="Fix the widgets",
            idempotency_key=f"slack:{TEAM}:{CHANNEL}:{ts}",
            origin_ref=f"slack:{TEAM}/{CHANNEL}/{ts}",
        ),
        origin="slack",
    )
    async with plane.store.engine.begin() as conn:
        assert await plane.store.slack_threads.create(
            conn,
            session_id=started.session.id,
            team_id=TEAM,
            channel_id=CHANNEL,
            thread_ts=ts,
            channel_type="channel",
            slack_user_id=USER,
        )
    await plane.bus.publish(OUTBOX_CHANNEL, "thread")
    return started.session, ts


async def prompt(plane: ControlPlane, session: Session, content: str, ts: str) -> Prompt:
    """A prompt from the session's creator (after a restart the bootstrap admin is not fresh)."""
    creator = await plane.store.users.get(session.creator_id)
    assert creator is not None
    return await plane.commands.handle(
        creator,
        SubmitPrompt(
            session_id=session.id, content=content, client_request_id=f"slack:{CHANNEL}:{ts}"
        ),
        origin="slack",
    )


async def until(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """``check()``'s first truthy answer (awaited when it is a coroutine), polled."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                last = check()
                if asyncio.iscoroutine(last):
                    last = await last
                if last:
                    return last
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})") from None


def keyed(messages: list[Any], key: str) -> list[Any]:
    """The messages whose metadata carries our outbox ``key``."""
    found = []
    for message in messages:
        meta = message.metadata or {}
        if (meta.get("event_payload") or {}).get("key") == key:
            found.append(message)
    return found


def shown(message: Any) -> str:
    """All the text a message shows (fallback and blocks)."""
    return f"{message.text}\n{json.dumps(message.blocks or [], ensure_ascii=False)}"
