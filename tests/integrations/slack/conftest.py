"""The Slack app's inbound side end to end: the fake Slack (``openinspect.testing.slack``)
delivering signed events over real HTTP (or Socket Mode) to the real API served on loopback by
uvicorn in this process, on a control plane whose sessions really run (the runtime in-process,
the scripted model over HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import Session, User
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    ServerSettings,
    SessionSettings,
    Settings,
    SlackSettings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.slack import FakeSlack
from tests.conftest import MODEL
from tests.integrations.serving import free_port as _free_port
from tests.integrations.serving import served
from tests.sessions.bridged import bridged_plane

SIGNING_SECRET = "s3cret-signing"
BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
TEAM = "T0001"
BOT = "UBOT"
WAIT_S = 20.0
T = TypeVar("T")


async def until(
    check: Callable[[], Awaitable[T | None]], timeout_s: float = WAIT_S, what: str = "condition"
) -> T:
    """``check()``'s first truthy answer, polled until ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


def slack_settings(
    home: Path, llm: ScriptedLLMServer, fake: FakeSlack, *, port: int, **slack: Any
) -> Settings:
    return Settings(
        home=home,
        server=ServerSettings(host="127.0.0.1", port=port),
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
        slack=SlackSettings(
            bot_token=BOT_TOKEN,
            signing_secret=SIGNING_SECRET,
            app_token=APP_TOKEN,
            api_url=fake.api_url,
            **slack,
        ),
    )


@dataclass
class SlackWorld:
    plane: ControlPlane
    fake: FakeSlack
    url: str
    http: httpx.AsyncClient
    admin: User

    async def member(self, name: str, email: str | None = None) -> tuple[User, str]:
        users = self.plane.store.users
        user = await users.create(name=name, email=email or f"{name}@example.com", role="member")
        return user, await users.create_token(user.id, f"{name}'s token")

    async def thread_session(self, channel: str, thread_ts: str) -> Session:
        store = self.plane.store

        async def found() -> Session | None:
            thread = await store.slack_threads.by_thread(TEAM, channel, thread_ts)
            return await store.sessions.get(thread.session_id) if thread else None

        return await until(found, what=f"a session for thread {channel}/{thread_ts}")

    async def prompts(self, session_id: str, count: int) -> list[Any]:
        store = self.plane.store

        async def enough() -> list[Any] | None:
            found = await store.prompts.for_session(session_id)
            return found if len(found) >= count else None

        return await until(enough, what=f"{count} prompts in {session_id}")

    async def settled(self) -> None:
        """Until every accepted delivery has been handled."""
        inbound = self.plane.slack_inbound
        assert inbound is not None
        await self.fake.await_deliveries()
        await inbound.idle()

    async def slack_sessions(self) -> list[Session]:
        return [s for s in await self.plane.store.sessions.list(limit=100) if s.origin == "slack"]


@contextlib.asynccontextmanager
async def slack_world(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path, *, socket_mode: bool = False, **slack: Any
) -> AsyncIterator[SlackWorld]:
    port = _free_port()
    fake = FakeSlack(
        signing_secret=SIGNING_SECRET,
        bot_token=BOT_TOKEN,
        app_token=APP_TOKEN,
        team_id=TEAM,
        bot_user_id=BOT,
        retry_delays_s=(0.0, 0.2, 0.4),
    )
    async with fake:
        url = f"http://127.0.0.1:{port}"
        if not socket_mode:
            fake.events_url = f"{url}/slack/events"
            fake.interactions_url = f"{url}/slack/interactions"
        settings = slack_settings(
            tmp_path / "home",
            llm,
            fake,
            port=port,
            mode="socket" if socket_mode else "events",
            **slack,
        )
        async with bridged_plane(settings, in_process=True) as plane, served(plane, port):
            admin = plane.bootstrap.user
            assert admin is not None
            await plane.store.repos.create(
                name="calc", url=str(origin), default_branch="main", created_by=admin.id
            )
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                yield SlackWorld(plane, fake, url, http, admin)


@pytest.fixture
async def world(tmp_path: Path, llm: ScriptedLLMServer, origin: Path) -> AsyncIterator[SlackWorld]:
    """Events API mode; Slack user U1 (alice@example.com) in #eng (C1), and the member alice
    with the same email, so U1 maps to her by email."""
    async with slack_world(tmp_path, llm, origin) as opened:
        opened.fake.add_user("U1", name="alice", email="alice@example.com")
        opened.fake.add_channel("C1", name="eng")
        await opened.member("alice", "alice@example.com")
        yield opened
