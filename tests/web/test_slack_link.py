"""The Slack link page: opened from the app's "Link my account" button (through sign-in), it
asks before it links, links on the click only, and a used code is refused."""

from __future__ import annotations

from playwright.sync_api import expect

from openinspect.store import Store
from openinspect.testing.seed import add_user
from openinspect.testing.server import ServerProcess
from tests.web.conftest import SLACK_TEAM as TEAM
from tests.web.conftest import Browsing, run_async


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
