"""Where a session was started from: the web app says it is the web app when it creates one,
the session's header names the door, and the list mentions it quietly for the other doors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_origin_shows_in_the_header_and_the_list(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "Looked."}]})
    from_cli = browsing.api(
        "POST", "/api/sessions", json={"repo": str(origin), "title": "From CLI", "origin": "cli"}
    )["session"]
    page = browsing.page()
    page.get_by_test_id("nav-new-session").click()
    page.get_by_test_id("new-repo").fill(str(origin))
    page.get_by_test_id("new-prompt").fill("Look around")
    page.get_by_test_id("new-submit").click()
    page.wait_for_url(re.compile(r"/sessions/ses_"))
    made = page.url.rsplit("/", 1)[-1]
    assert browsing.api("GET", f"/api/sessions/{made}")["session"]["origin"] == "web"
    header = page.get_by_test_id("session-origin")
    expect(header).to_have_text(re.compile(r"from\s+web app"))
    expect(header).to_have_attribute("data-origin", "web")

    page.get_by_test_id("nav-sessions").click()
    mine = page.locator(f'[data-testid="session-row"][data-session-id="{made}"]')
    cli = page.locator(f'[data-testid="session-row"][data-session-id="{from_cli["id"]}"]')
    expect(cli.get_by_test_id("row-origin")).to_have_text(re.compile(r"via CLI"))
    expect(mine).to_be_visible()
    expect(mine.get_by_test_id("row-origin")).to_have_count(0)  # the usual door says nothing

    cli.click()
    expect(page.get_by_test_id("session-origin")).to_have_text(re.compile(r"from\s+CLI"))
