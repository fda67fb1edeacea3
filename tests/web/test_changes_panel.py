"""The Changes panel says what the branch holds: nothing pushed yet before any prompt ended, and
that the branch matches its base after prompts that changed nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, send_prompt

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_no_op_prompt_says_the_branch_matches_its_base(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "Nothing to change."}]})
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    panel = page.get_by_test_id("diff-panel")
    expect(panel.locator("p.empty")).to_have_text("No changes pushed yet.")

    send_prompt(page, "look around, change nothing")
    expect(rows_of_type(page, "prompt-finished")).to_have_count(1)
    empty = panel.locator("p.empty")
    expect(empty).to_have_text(f"No changes: {session['branch']} matches {session['base_branch']}.")
    # Nothing was pushed for a prompt that made no commit.
    events = browsing.events(session["id"])
    assert not [e for e in events if e["type"] in ("git-commit", "git-push")], events

    # A reloaded page says the same.
    page.reload()
    expect(page.locator(".diff-panel p.empty")).to_have_text(
        f"No changes: {session['branch']} matches {session['base_branch']}."
    )
