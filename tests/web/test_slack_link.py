"""The Slack link page: opened from the app's "Link my account" button (through sign-in), it
asks before it links, links on the click only, and a used code is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from openinspect.store import Store
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.seed import add_user
from openinspect.testing.server import ServerProcess
from openinspect.testing.slack import FakeSlack
from tests.web.conftest import Browsing, failed, run_async, web_server_env

TEAM = "T0001"


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(signing_secret="s3cret", bot_token="xoxb-web", team_id=TEAM) as fake:
        fake.add_user("U1", name="alice", email="alice@slack.example")
        yield fake


@pytest.fixture(scope="module")
def slack_server(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLMServer, fake_slack: FakeSlack
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("web-slack")
    env = web_server_env(llm, root) | {
        "OPENINSPECT_SLACK__BOT_TOKEN": "xoxb-web",
        "OPENINSPECT_SLACK__SIGNING_SECRET": "s3cret",
        "OPENINSPECT_SLACK__API_URL": fake_slack.api_url,
    }
    with ServerProcess(root / "home", env=env) as proc:
        yield proc


@pytest.fixture
def slack_browsing(
    request: pytest.FixtureRequest, chromium: Browser, slack_server: ServerProcess, tmp_path: Path
) -> Iterator[Browsing]:
    session = Browsing(chromium, slack_server)
    yield session
    session.close(failed(request), tmp_path)


def _db(server: ServerProcess) -> str:
    return f"sqlite+aiosqlite:///{server.home / 'openinspect.db'}"


async def _mint(url: str) -> str:
    store = await Store.open(url, run_migrations=False)
    try:
        return await store.slack_people.mint_code(TEAM, "U1", 900)
    finally:
        await store.close()


async def _linked_to(url: str) -> str | None:
    store = await Store.open(url, run_migrations=False)
    try:
        found = await store.slack_people.get(TEAM, "U1")
        return found.user_id if found is not None else None
    finally:
        await store.close()


def test_the_link_page_asks_then_links_on_the_click_and_refuses_a_used_code(
    slack_browsing: Browsing, slack_server: ServerProcess
) -> None:
    url = _db(slack_server)
    user, token = run_async(add_user(url, "Bob Builder"))
    code = run_async(_mint(url))
    page = slack_browsing.page(token, f"/slack/link?code={code}")
    question = page.get_by_test_id("slack-link-question")
    expect(question).to_contain_text("Link Slack user @alice to your account (Bob Builder)?")
    assert code not in page.url  # dropped from the address bar and the history
    assert run_async(_linked_to(url)) is None  # opening the page linked nothing
    page.get_by_test_id("slack-link-confirm").click()
    expect(page.get_by_test_id("slack-link-done")).to_be_visible()
    assert run_async(_linked_to(url)) == user.id

    again = slack_browsing.page(token, f"/slack/link?code={code}")
    expect(again.get_by_test_id("slack-link-error")).to_contain_text("was used already")
    expect(again.get_by_test_id("slack-link-confirm")).to_have_count(0)
