"""Steering a session from the browser: Stop ends a long command, a queued prompt is cancelled,
and a reloaded page resumes the same timeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, send_prompt, timeline_rows

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# A 256-colour escape: the page shows it with an inline style, which its CSP must allow.
COLOURS = r"printf '\033[38;5;208morange\033[0m\n'; ls"
LONG_COMMAND = {"turns": [{"tool_calls": [{"name": "bash", "args": {"command": "sleep 600"}}]}]}


def test_cancel_a_queued_prompt_then_stop_the_running_one(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(LONG_COMMAND)
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    watcher = browsing.page(path=f"/sessions/{session['id']}")

    send_prompt(page, "wait a long time")
    running = page.locator('[data-testid="tool-card"][data-tool="bash"]')
    expect(running).to_have_attribute("data-status", "running")
    expect(page.get_by_test_id("stop-button")).to_be_enabled()

    # A follow-up waits in the queue (seen by everyone) and is cancelled from it.
    send_prompt(page, "then do something else")
    for p in (page, watcher):
        expect(p.get_by_test_id("queued-prompt")).to_contain_text("then do something else")
    queued_id = page.get_by_test_id("queued-prompt").get_attribute("data-prompt-id")
    page.get_by_test_id("queued-cancel").click()
    for p in (page, watcher):
        expect(p.get_by_test_id("queued-prompt")).to_have_count(0)
    prompt = browsing.api("GET", f"/api/sessions/{session['id']}")["queue"]
    assert [q["content"] for q in prompt] == ["wait a long time"]
    assert queued_id and queued_id not in {q["id"] for q in prompt}

    # Stop ends the running command: the card and the prompt end, in both pages.
    page.get_by_test_id("stop-button").click()
    for p in (page, watcher):
        expect(p.locator('[data-testid="tool-card"][data-tool="bash"]')).not_to_have_attribute(
            "data-status", "running"
        )
        ended = rows_of_type(p, "prompt-finished")
        expect(ended).to_contain_text("Stopped")
        expect(p.get_by_test_id("stop-button")).to_be_disabled()
    events = browsing.events(session["id"])
    finished = [(e["prompt_id"], e["status"]) for e in events if e["type"] == "prompt-finished"]
    cancelled = [e["prompt_id"] for e in events if e["type"] == "prompt-cancelled"]
    assert [status for _, status in finished] == ["stopped"]
    assert cancelled == [queued_id]


def test_escape_stops_the_running_prompt(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(LONG_COMMAND)
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    send_prompt(page, "wait a long time")
    card = page.locator('[data-testid="tool-card"][data-tool="bash"]')
    expect(card).to_have_attribute("data-status", "running")
    page.get_by_test_id("prompt-input").press("Escape")
    ended = rows_of_type(page, "prompt-finished")
    expect(ended).to_contain_text("Stopped")


def test_a_reloaded_page_resumes_the_same_timeline(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {
                    "text": "Listing.",
                    "tool_calls": [{"name": "bash", "args": {"command": COLOURS}}],
                },
                {"text": "First answer."},
                {"text": "Second answer."},
            ]
        }
    )
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    send_prompt(page, "first")
    done = rows_of_type(page, "prompt-finished")
    expect(done).to_have_count(1)
    expect(page.get_by_test_id("agent-text").filter(has_text="First answer.")).to_be_visible()
    expect(page.get_by_test_id("sandbox-status")).to_have_attribute("data-status", "ready")
    before = timeline_rows(page)

    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    expect(done).to_have_count(1)
    expect(page.get_by_test_id("agent-text").filter(has_text="First answer.")).to_have_count(1)
    after = timeline_rows(page)
    assert after == before
    card = page.get_by_test_id("tool-card")
    card.get_by_test_id("tool-card-toggle").click()
    expect(card.get_by_test_id("tool-output")).to_contain_text("calc.py")
    coloured = card.get_by_test_id("tool-output").locator("span", has_text="orange")
    expect(coloured).to_have_attribute("style", re.compile(r"color"))
    assert len({seq for seq, _ in after}) == len(after)

    # The reloaded page is live: the next prompt's rows arrive once each.
    send_prompt(page, "second")
    expect(done).to_have_count(2)
    expect(page.get_by_test_id("agent-text").filter(has_text="Second answer.")).to_have_count(1)
    expect(page.get_by_test_id("prompt-item")).to_have_count(2)
    final = timeline_rows(page)
    assert final[: len(before)] == before
    assert len({seq for seq, _ in final}) == len(final)
    events = browsing.events(session["id"])
    assert {seq for seq, _ in final} <= {e["seq"] for e in events}
