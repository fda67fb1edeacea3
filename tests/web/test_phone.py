"""A phone at 390×844 (touch, no hover): the composer fits with Send visible, the changes panel
opens over the timeline, and no keyboard-shortcut chips are shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SCRIPT = {
    "turns": [
        {"tool_calls": [{"name": "bash", "args": {"command": "echo hello > notes.txt"}}]},
        {"text": "Wrote notes.txt."},
    ]
}


def _inside_viewport(page: Page, test_id: str) -> None:
    box = page.get_by_test_id(test_id).bounding_box()
    assert box is not None, f"{test_id} is not rendered"
    size = page.viewport_size
    assert size is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"], (test_id, box)
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (test_id, box)


def _no_shortcut_chips(page: Page) -> None:
    chips = page.locator("kbd").filter(visible=True)
    expect(chips).to_have_count(0)
    placeholder = page.get_by_test_id("prompt-input").get_attribute("placeholder") or ""
    assert "Enter" not in placeholder and "Esc" not in placeholder, placeholder


def test_a_session_on_a_phone(browsing: Browsing, llm: ScriptedLLMServer, origin: Path) -> None:
    llm.reset(SCRIPT)
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}", phone=True)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")

    # The composer fits: the box and Send are on screen without scrolling, nothing overflows.
    page.get_by_test_id("prompt-input").fill("write a note")
    expect(page.get_by_test_id("prompt-send")).to_be_in_viewport(ratio=1)
    _inside_viewport(page, "prompt-send")
    _inside_viewport(page, "prompt-input")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    _no_shortcut_chips(page)
    page.screenshot(path="/tmp/phone-session.png")

    page.get_by_test_id("prompt-send").tap()
    expect(rows_of_type(page, "prompt-finished")).to_have_count(1)
    _inside_viewport(page, "prompt-send")

    # The changes panel opens over the timeline and closes again.
    page.get_by_test_id("changes-toggle").tap()
    panel = page.get_by_test_id("changes-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box is not None and box["x"] <= 1 and box["width"] >= 380, box
    assert box["y"] < 844 / 2, f"the panel opens below the timeline: {box}"
    expect(panel.locator('[data-testid="diff-file"][data-path="notes.txt"]')).to_be_visible()
    page.screenshot(path="/tmp/phone-changes.png")
    page.get_by_test_id("changes-close").tap()
    expect(panel).to_have_count(0)
    _inside_viewport(page, "prompt-send")


def test_the_session_list_on_a_phone(browsing: Browsing, origin: Path) -> None:
    browsing.api("POST", "/api/sessions", json={"repo": str(origin), "title": "Phone list"})
    page = browsing.page(phone=True)
    expect(page.get_by_test_id("session-row").first).to_be_visible()
    _inside_viewport(page, "nav-new-session")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    expect(page.locator("kbd").filter(visible=True)).to_have_count(0)
    page.screenshot(path="/tmp/phone-list.png")
