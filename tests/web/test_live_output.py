"""A running command's card shows its output as it is printed, with a timer that ticks; a page
that opens mid-command sees output from then on; the result replaces the live text; a stopped
command keeps what it printed and says when it was stopped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, send_prompt

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Colour, then a line every half second; the last line comes ~4 s after the first.
SLOW = (
    r"printf '\033[32mgreen-start\033[0m\n'; "
    "for i in 1 2 3 4 5 6 7 8; do sleep 0.5; echo tick-$i; done"
)
STOPPABLE = "echo before-stop; sleep 1; echo still-here; sleep 600"


def bash_script(command: str) -> dict[str, object]:
    return {
        "turns": [
            {"tool_calls": [{"name": "bash", "args": {"command": command}}]},
            {"text": "Done."},
        ]
    }


def _elapsed_s(text: str) -> int:
    found = re.search(r"(\d+) s", text)
    assert found is not None, text
    return int(found[1])


def test_a_running_command_streams_with_a_ticking_timer(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(bash_script(SLOW))
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    send_prompt(page, "count slowly")

    card = page.locator('[data-testid="tool-card"][data-tool="bash"]')
    live = card.get_by_test_id("tool-live-output")
    # The first line is on the card while the command still runs (it runs ~4 s more).
    expect(live).to_contain_text("green-start")
    expect(card).to_have_attribute("data-status", "running")
    # ANSI colour is rendered as colour, not as escape codes.
    assert "\x1b" not in live.inner_text() and "[32m" not in live.inner_text()
    expect(live.locator("span.ansi-fg-2")).to_have_text("green-start")
    timer = card.get_by_test_id("tool-elapsed")
    first = _elapsed_s(timer.inner_text())
    expect(live).to_contain_text("tick-2")

    # A page that opens mid-command sees output from then on, without errors.
    late = browsing.page(path=f"/sessions/{session['id']}")
    late_card = late.locator('[data-testid="tool-card"][data-tool="bash"]')
    expect(late_card.get_by_test_id("tool-live-output")).to_contain_text("tick-")
    expect(card).to_have_attribute("data-status", "running")
    later = _elapsed_s(timer.inner_text())
    assert later > first, (first, later)  # the timer ticks

    # The result replaces the live text: the card is done, its whole output in its body.
    for p in (page, late):
        done = p.locator('[data-testid="tool-card"][data-tool="bash"]')
        expect(done).to_have_attribute("data-status", "done")
        expect(done.get_by_test_id("tool-live-output")).to_have_count(0)
        expect(done.get_by_test_id("tool-elapsed")).to_have_count(0)
    card.get_by_test_id("tool-card-toggle").click()
    output = card.get_by_test_id("tool-output")
    expect(output).to_contain_text("green-start")
    expect(output).to_contain_text("tick-8")
    assert output.inner_text().count("tick-8") == 1


def test_a_stopped_command_keeps_its_output_and_says_when_it_was_stopped(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(bash_script(STOPPABLE))
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    send_prompt(page, "wait")
    card = page.locator('[data-testid="tool-card"][data-tool="bash"]')
    expect(card.get_by_test_id("tool-live-output")).to_contain_text("still-here")

    page.get_by_test_id("stop-button").click()
    expect(rows_of_type(page, "prompt-finished")).to_contain_text("Stopped")
    expect(card).to_have_attribute("data-status", "stopped")
    expect(card.get_by_test_id("tool-stopped")).to_have_text(re.compile(r"stopped after \d"))
    kept = card.get_by_test_id("tool-live-output")
    expect(kept).to_contain_text("before-stop")
    expect(kept).to_contain_text("still-here")

    # A reload shows the same: it is the stored result, not what this page happened to see.
    page.reload()
    again = page.locator('[data-testid="tool-card"][data-tool="bash"]')
    expect(again).to_have_attribute("data-status", "stopped")
    expect(again.get_by_test_id("tool-stopped")).to_have_text(re.compile(r"stopped after \d"))
    expect(again.get_by_test_id("tool-live-output")).to_contain_text("still-here")
    [result] = [e for e in browsing.events(session["id"]) if e["type"] == "tool-result"]
    assert result["stopped"] and "before-stop\nstill-here\n" in result["output"]
