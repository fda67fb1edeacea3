"""Whatever ids the model reuses, the timeline keeps one row per event and the tab stays live."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, send_prompt, timeline_rows

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def _one_command(command: str, answer: str) -> dict[str, object]:
    return {
        "turns": [
            {"tool_calls": [{"name": "bash", "args": {"command": command}}]},
            {"text": answer},
        ]
    }


def test_two_tool_calls_sharing_a_call_id_expand_without_freezing(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    # The scripted model numbers its calls from 1 after each reset, as a restarted local model
    # server would: both prompts' calls get the same call_id.
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    done = rows_of_type(page, "prompt-finished")
    llm.reset(_one_command("echo first-output", "First done."))
    send_prompt(page, "first")
    expect(done).to_have_count(1)
    llm.reset(_one_command("echo second-output", "Second done."))
    send_prompt(page, "second")
    expect(done).to_have_count(2)

    calls = [e for e in browsing.events(session["id"]) if e["type"] == "tool-call"]
    assert len(calls) == 2 and calls[0]["call_id"] == calls[1]["call_id"]

    cards = page.get_by_test_id("tool-card")
    expect(cards).to_have_count(2)
    for i, text in enumerate(["first-output", "second-output"]):
        cards.nth(i).get_by_test_id("tool-card-toggle").click()
        # Each card pairs with its own result, and the page still answers.
        expect(cards.nth(i).get_by_test_id("tool-output")).to_contain_text(text)
    assert page.evaluate("() => document.querySelectorAll('[data-testid=tool-card]').length") == 2
    rows = timeline_rows(page)
    assert len({seq for seq, _ in rows}) == len(rows)
    page.reload()
    expect(cards).to_have_count(2)
    expect(cards.nth(1)).to_have_attribute("data-status", "done")
