"""The session list says how each session ended, under its registered repo name (searchable),
with a diff stat, its cost and its pull request's state."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.domain.ids import new_id
from openinspect.domain.models import Author
from openinspect.store import Store
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.store.records import prompt_record
from tests.web.conftest import Browsing, run_async
from tests.web.helpers import rows_of_type, send_prompt

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WRITE_NOTES = {
    "turns": [
        {"tool_calls": [{"name": "bash", "args": {"command": "printf 'a\\nb\\n' > notes.txt"}}]},
        {"text": "Wrote notes.txt."},
    ]
}


async def _seed(database_url: str, pushed: dict[str, str], failed: dict[str, str]) -> None:
    """A merged PR for one session, and a failed newest prompt for the other (a real failure
    takes a broken model; what the list shows is what the database says)."""
    store = await Store.open(database_url, run_migrations=False)
    try:
        await store.pulls.save(
            session_id=pushed["id"],
            repo="o/notes",
            number=42,
            url="https://github.com/o/notes/pull/42",
            branch=pushed["branch"],
            base="main",
            title="Notes",
            state="merged",
            draft=False,
            opened_as="user",
            author_login="ada",
        )
        user = await store.users.get(failed["creator_id"])
        assert user is not None
        prompt = prompt_record(failed["id"], Author.of(user), "break")
        await store.prompts.create(prompt, fingerprint=new_id("fp"))
        await store.prompts.set_status(
            prompt.id,
            "error",
            error_code="model_error",
            error_message="The model server answered 500\nTraceback (most recent call last): …",
        )
    finally:
        await store.close()


def test_the_list_says_how_each_session_ended(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    name = f"notes-{new_id('r')[-6:]}".lower()
    browsing.api("POST", "/api/repos", json={"name": name, "url": str(origin)})
    pushed = browsing.api("POST", "/api/sessions", json={"repo": name, "title": "Write notes"})
    pushed = pushed["session"]
    failed = browsing.api("POST", "/api/sessions", json={"repo": str(origin), "title": "Broke"})
    failed = failed["session"]
    llm.reset(WRITE_NOTES)
    page = browsing.page(path=f"/sessions/{pushed['id']}")
    send_prompt(page, "write notes")
    expect(rows_of_type(page, "prompt-finished")).to_have_count(1)
    url = f"sqlite+aiosqlite:///{browsing.server.home / 'openinspect.db'}"
    run_async(_seed(url, pushed, failed))

    page.get_by_test_id("nav-sessions").click()
    ok = page.locator(f'[data-testid="session-row"][data-session-id="{pushed["id"]}"]')
    bad = page.locator(f'[data-testid="session-row"][data-session-id="{failed["id"]}"]')
    expect(ok.get_by_test_id("row-outcome")).to_have_text("✓ Done")
    expect(ok.get_by_test_id("row-repo")).to_have_text(name)
    expect(ok.get_by_test_id("row-diffstat")).to_contain_text("+2 −0 1 file")
    expect(ok.get_by_test_id("row-cost")).to_contain_text("$0.0000")
    expect(ok.get_by_test_id("row-pr")).to_have_attribute("data-state", "merged")
    expect(ok.get_by_test_id("row-pr")).to_contain_text("PR #42 merged")
    outcome = bad.get_by_test_id("row-outcome")
    expect(outcome).to_have_text("✗ Failed: The model server answered 500")
    expect(bad.get_by_test_id("row-diffstat")).to_have_count(0)
    page.screenshot(path="/tmp/session-list.png")

    # The registered name is searchable.
    page.get_by_test_id("session-search").fill(name)
    expect(page.get_by_test_id("session-row")).to_have_count(1)
    expect(ok).to_be_visible()
