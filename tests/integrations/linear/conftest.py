"""The Linear agent end to end: the fake Linear (``openinspect.testing.linear``) delivering
signed webhooks over real HTTP to the real API served on loopback by uvicorn in this process,
on a control plane whose sessions really run (the runtime in-process, the scripted model over
HTTP), and the agent's activities coming back through the real client into the fake's agent
sessions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import Prompt, Session, User
from openinspect.integrations.linear.app import LinearApp
from openinspect.settings import LinearSettings, ServerSettings
from openinspect.store.linear import LinearSession
from openinspect.testing.github import FakeGitHub
from openinspect.testing.linear import Activity, FakeLinear, Team
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations.conftest import plane_settings
from tests.integrations.serving import free_port, served
from tests.integrations.slack.helpers import until
from tests.sessions.bridged import bridged_plane

WEBHOOK_SECRET = "lin-whsec-test"
CLIENT_ID = "lin-client"
CLIENT_SECRET = "lin-client-SECRET"
ALICE_EMAIL = "alice@example.com"

__all__ = ["LinearWorld", "linear_world", "until"]


def linear_settings(fake: FakeLinear, **overrides: Any) -> LinearSettings:
    return LinearSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        webhook_secret=fake.webhook_secret,
        api_url=fake.api_url,
        authorize_url=fake.authorize_url,
        **overrides,
    )


@dataclass
class LinearWorld:
    plane: ControlPlane
    fake: FakeLinear
    url: str
    admin: User
    team: Team
    """``ENG``, mapped to the repo ``calc`` unless the test's settings say otherwise."""
    alice: User
    """A member; the fake's Alice has her email."""
    alice_linear: str

    @property
    def linear(self) -> LinearApp:
        assert self.plane.linear is not None
        return self.plane.linear

    async def install(self) -> None:
        """The app installed in the fake's workspace (its app token, no OAuth dance)."""
        fake = self.fake
        await self.plane.store.linear.save_install(
            org_id=fake.org.id,
            org_name=fake.org.name,
            app_user_id=fake.app_user_id,
            access_token=fake.token(),
            refresh_token=None,
            expires_at=None,
            scopes="read write app:assignable app:mentionable",
            installed_by=self.admin.id,
        )

    async def settled(self) -> None:
        """Until every delivery sent so far has been answered and handled."""
        await asyncio.to_thread(self.fake.wait_for_deliveries)
        await self.linear.inbound.idle()

    async def linked(self, agent_session_id: str) -> LinearSession:
        store = self.plane.store

        async def found() -> LinearSession | None:
            row = await store.linear.session(agent_session_id)
            return row if row is not None and row.session_id is not None else None

        return await until(found, f"the session of {agent_session_id}")  # type: ignore[no-any-return]

    async def session_of(self, agent_session_id: str) -> Session:
        row = await self.linked(agent_session_id)
        assert row.session_id is not None
        found = await self.plane.store.sessions.get(row.session_id)
        assert found is not None
        return found

    async def prompts(self, session_id: str, count: int) -> list[Prompt]:
        store = self.plane.store

        async def enough() -> list[Prompt] | None:
            found = await store.prompts.for_session(session_id)
            return found if len(found) >= count else None

        return await until(enough, f"{count} prompts in {session_id}")  # type: ignore[no-any-return]

    async def activity(self, agent_session_id: str, kind: str, count: int = 1) -> list[Activity]:
        """Until the agent session has ``count`` activities of ``kind``; all of them."""

        def found() -> list[Activity] | None:
            have = self.fake.session(agent_session_id).of_type(kind)  # type: ignore[arg-type]
            return have if len(have) >= count else None

        return await until(found, f"{count} {kind} activities")  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def linear_world(
    tmp_path: Path,
    llm: ScriptedLLMServer,
    repo_url: str,
    *,
    github: FakeGitHub | None = None,
    install: bool = True,
    **linear: Any,
) -> AsyncIterator[LinearWorld]:
    """A served control plane with the Linear agent on, pointed at a fresh fake Linear whose
    webhooks come to it; ``repo_url`` registered as ``calc``; ``ENG`` → ``calc`` unless the
    test's ``team_repos`` say otherwise."""
    port = free_port()
    with FakeLinear(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        webhook_secret=WEBHOOK_SECRET,
        retry_delay_s=0.2,
    ) as fake:
        url = f"http://127.0.0.1:{port}"
        fake.webhook(f"{url}/webhooks/linear", WEBHOOK_SECRET)
        settings = plane_settings(tmp_path / "home", llm)
        linear.setdefault("team_repos", {"ENG": "calc"})
        update: dict[str, Any] = {
            "linear": linear_settings(fake, **linear),
            "server": ServerSettings(host="127.0.0.1", port=port),
        }
        if github is not None:
            found = github.settings(client_id=None, client_secret=None)
            update["github"] = found.model_copy(update={"access_check": False})
        settings = settings.model_copy(update=update)
        async with (
            bridged_plane(settings, git_proxy=github is not None, in_process=True) as plane,
            served(plane, port),
        ):
            admin = plane.bootstrap.user
            assert admin is not None
            await plane.store.repos.create(
                name="calc", url=repo_url, default_branch="main", created_by=admin.id
            )
            alice = await plane.store.users.create(name="alice", email=ALICE_EMAIL, role="member")
            team = fake.add_team("ENG", "Engineering")
            alice_linear = fake.add_user("Alice", ALICE_EMAIL).id
            world = LinearWorld(plane, fake, url, admin, team, alice, alice_linear)
            if install:
                await world.install()
            yield world


@pytest.fixture
async def world(tmp_path: Path, llm: ScriptedLLMServer, origin: Path) -> AsyncIterator[LinearWorld]:
    async with linear_world(tmp_path, llm, str(origin)) as opened:
        yield opened
