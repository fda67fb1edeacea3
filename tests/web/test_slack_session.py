"""A session started from Slack, watched in the web app: the Open button of the thread's status
message leads to the session page (on a server that picked its own port), which shows the work
live and says it was started from Slack; the session list says so too."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.slack import FakeSlack, Message
from tests.web.conftest import SLACK_ADA as ADA
from tests.web.conftest import SLACK_CHANNEL as CHANNEL
from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
WAIT_S = 60.0


def open_url(message: Message) -> str:
    for block in message.blocks or []:
        for element in block.get("elements", []):
            if element.get("action_id") == "openinspect_open":
                return str(element["url"])
    raise AssertionError(f"no Open button in {message.blocks}")


def until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_slack_session_is_watched_live_in_the_web_app(
    slack_browsing: Browsing, llm: ScriptedLLMServer, fake_slack: FakeSlack, origin: Path
) -> None:
    browsing, slack = slack_browsing, fake_slack
    browsing.api("POST", "/api/repos", json={"name": "calc", "url": str(origin)})
    llm.reset(
        {
            "turns": [
                {
                    "tool_calls": [{"name": "bash", "args": {"command": "sleep 3; echo looked"}}],
                    "delay_ms": 500,
                },
                {"text": "Looked at calc from Slack.", "delay_ms": 300},
            ]
        }
    )
    ts = slack.post_user_message(CHANNEL, ADA, "<@UBOT> look around calc")

    def status() -> Message | None:
        return next((m for m in slack.thread(CHANNEL, ts) if m.bot_id), None)

    url = open_url(until(status, "the status message"))
    assert url.startswith(f"{browsing.server.url}/sessions/ses_"), url
    session_id = url.rsplit("/", 1)[-1]

    page = browsing.page(path=f"/sessions/{session_id}")
    header = page.get_by_test_id("session-origin")
    expect(header).to_have_text(re.compile(r"from\s+Slack"))
    expect(header).to_have_attribute("data-origin", "slack")
    # Live: the command shows while it runs, then the agent's answer arrives on the same page.
    expect(page.get_by_text("sleep 3; echo looked").first).to_be_visible()
    expect(page.get_by_text("Looked at calc from Slack.")).to_be_visible()

    page.get_by_test_id("nav-sessions").click()
    row = page.locator(f'[data-testid="session-row"][data-session-id="{session_id}"]')
    expect(row.get_by_test_id("row-origin")).to_have_text(re.compile(r"via Slack"))
