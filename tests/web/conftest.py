"""Browser tests: Playwright's sync API driving Debian's headless Chromium against the real
server (real bwrap sandboxes, real git, the scripted model).

Tests are plain sync functions. They share one browser, one scripted model and one server
(starting a server costs seconds): each test makes its own sessions and sets the model's script.
A test fails if any page it opened threw an uncaught error or broke the Content-Security-Policy;
when a test fails, each of its pages is saved as a PNG next to the test's temporary files.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from openinspect.testing.browser import (
    browser_missing,
    launch_chromium,
    new_context,
    sign_in,
    web_missing,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.seed import add_user
from openinspect.testing.server import ServerProcess
from openinspect.testing.slack import FakeSlack
from tests.conftest import server_env, skip_or_fail

T = TypeVar("T")
ACTION_TIMEOUT_MS = 20_000
"""Upper bound on one browser action or expectation (a sandbox boot included)."""
expect.set_options(timeout=ACTION_TIMEOUT_MS)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a sync test, in a thread of its own: Playwright's sync
    API owns this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="package")
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer({"turns": []}) as server:
        yield server


def web_server_env(llm: ScriptedLLMServer, root: Path) -> dict[str, str]:
    """``server_env`` plus a fixed git identity, which names the admin on first start (the
    pages, and the README's screenshot, show it) whoever runs the tests."""
    gitconfig = root / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n")
    return server_env(llm, GIT_CONFIG_GLOBAL=str(gitconfig))


@pytest.fixture(scope="package")
def server(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLMServer
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("web")
    with ServerProcess(root / "home", env=web_server_env(llm, root)) as proc:
        yield proc


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    reason = browser_missing() or web_missing()
    if reason is not None:
        skip_or_fail(reason)
    with launch_chromium() as browser:
        yield browser


@dataclass
class Browsing:
    """Opens signed-in pages on one server, each in its own browser profile."""

    browser: Browser
    server: ServerProcess
    contexts: list[BrowserContext] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def page(
        self,
        token: str | None = None,
        path: str = "/",
        *,
        signed_in: bool = True,
        phone: bool = False,
    ) -> Page:
        """A page at ``path``; with ``phone``, on an emulated touch phone at 390×844."""
        context = new_context(self.browser, self.server.url, phone=phone)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught error: {exc}"))
        page.on("console", self._console)
        if signed_in:
            sign_in(page, token or self.server.token, path)
        else:
            page.goto(path)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(f"CSP violation: {message.text}")

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """Call the REST API as a client would (the admin unless ``token`` is given)."""
        headers = {"Authorization": f"Bearer {token or self.server.token}"}
        response = httpx.request(
            method, f"{self.server.url}{path}", headers=headers, timeout=30, **kwargs
        )
        assert response.is_success, response.text
        return response.json()

    def events(self, session_id: str) -> list[dict[str, Any]]:
        """The session's whole durable log, oldest first."""
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            params = {"after_seq": after, "limit": 500}
            page = self.api("GET", f"/api/sessions/{session_id}/events", params=params)
            out += page["events"]
            if not page["has_more"]:
                return out
            after = out[-1]["seq"]

    def add_user(self, name: str) -> str:
        """A second person on this server, an admin (members see only the sessions they take
        part in); returns their API token."""
        url = f"sqlite+aiosqlite:///{self.server.home / 'openinspect.db'}"
        _, token = run_async(add_user(url, name, role="admin"))
        return token

    def close(self, failed: bool, keep_dir: Path) -> None:
        """Close every page; after a failure, save each page as a PNG first. Then fail if a page
        threw or broke the Content-Security-Policy."""
        if failed:
            for i, context in enumerate(self.contexts):
                for j, page in enumerate(context.pages):
                    page.screenshot(path=keep_dir / f"failure-{i}-{j}.png")
            print(f"pages saved in {keep_dir}; server log tail:\n{self.server.log()}")
        for context in self.contexts:
            context.close()
        assert not self.problems, json.dumps(self.problems, indent=2)


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the requesting test's body failed (for teardown)."""
    return request.node.stash.get(_FAILED, False)


@pytest.fixture
def browsing(
    request: pytest.FixtureRequest, chromium: Browser, server: ServerProcess, tmp_path: Path
) -> Iterator[Browsing]:
    session = Browsing(chromium, server)
    yield session
    session.close(failed(request), tmp_path)


SLACK_TEAM = "T0001"
SLACK_ADA = "U0ADA"
"""A Slack user with the admin's email (web_server_env's git identity): mapped to her."""
SLACK_ALICE = "U1"
"""A Slack user no openinspect user matches: the link flow's."""
SLACK_CHANNEL = "C0ENG"


@pytest.fixture(scope="package")
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(signing_secret="s3cret-web", bot_token="xoxb-web", team_id=SLACK_TEAM) as fake:
        fake.add_user(SLACK_ALICE, name="alice", email="alice@slack.example")
        fake.add_user(SLACK_ADA, name="ada", email="ada@example.com")
        fake.add_channel(SLACK_CHANNEL, name="eng")
        yield fake


@pytest.fixture(scope="package")
def slack_server(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLMServer, fake_slack: FakeSlack
) -> Iterator[ServerProcess]:
    """A second server, with Slack on (the fake's events come to it)."""
    root = tmp_path_factory.mktemp("web-slack")
    env = web_server_env(llm, root) | {
        "OPENINSPECT_SLACK__BOT_TOKEN": fake_slack.bot_token,
        "OPENINSPECT_SLACK__SIGNING_SECRET": fake_slack.signing_secret,
        "OPENINSPECT_SLACK__API_URL": fake_slack.api_url,
        "OPENINSPECT_SLACK__STATUS_INTERVAL_S": "0.3",
    }
    with ServerProcess(root / "home", env=env) as proc:
        fake_slack.events_url = f"{proc.url}/slack/events"
        fake_slack.interactions_url = f"{proc.url}/slack/interactions"
        yield proc


@pytest.fixture
def slack_browsing(
    request: pytest.FixtureRequest, chromium: Browser, slack_server: ServerProcess, tmp_path: Path
) -> Iterator[Browsing]:
    session = Browsing(chromium, slack_server)
    yield session
    session.close(failed(request), tmp_path)
