"""A calmer session view: one sandbox line, usage in each prompt's footer, finished turns that
fold, queued prompts in one place, no rows for no-op pushes, one exit code, the whole command on
demand; and the small things around it (avatar initials, one money format, no PR button where
there can be no PR, session actions in the palette, a resizable diff with a file list and
colour)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, send_prompt

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WORDS = " ".join(f"word{i}" for i in range(60))
COMMAND = (
    f"printf 'def add(a, b):\\n    return a + b\\n' > mathx.py; echo hi > notes.txt; "
    f"echo {WORDS}; exit 3"
)
WRITE_THEN_FAIL = {
    "turns": [
        {"text": "Writing it.", "tool_calls": [{"name": "bash", "args": {"command": COMMAND}}]},
        {"text": "Wrote mathx.py."},
    ]
}
LONG_COMMAND = {"turns": [{"tool_calls": [{"name": "bash", "args": {"command": "sleep 600"}}]}]}


def _palette(page: Page) -> None:
    page.keyboard.press("Control+k")
    expect(page.get_by_test_id("command-palette")).to_be_visible()


def test_a_calm_timeline(browsing: Browsing, llm: ScriptedLLMServer, origin: Path) -> None:
    llm.reset(WRITE_THEN_FAIL)
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{session['id']}")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    send_prompt(page, "write mathx.py")
    done = rows_of_type(page, "prompt-finished")
    expect(done).to_have_count(1)
    expect(page.get_by_test_id("agent-text").filter(has_text="Wrote mathx.py.")).to_be_visible()

    # One sandbox line, updated in place to "ready"; no usage rows, the usage is in the footer.
    sandbox = rows_of_type(page, "sandbox-status")
    expect(sandbox).to_have_count(1)
    expect(sandbox.get_by_test_id("sandbox-line")).to_have_attribute("data-status", "ready")
    expect(rows_of_type(page, "usage")).to_have_count(0)
    events = browsing.events(session["id"])
    assert [e for e in events if e["type"] == "usage"], "the scripted model reports usage"
    assert len([e for e in events if e["type"] == "sandbox-status"]) > 1
    footer = done.get_by_test_id("turn-usage")
    expect(footer).to_contain_text(re.compile(r"\d+ in / \d+ out · \$\d+\.\d{4}$"))
    expect(page.get_by_test_id("usage-cost")).to_have_text(re.compile(r"^cost \$\d+\.\d{4}$"))

    # The tool card: one exit code, the whole command when opened.
    card = page.get_by_test_id("tool-card")
    expect(card.get_by_test_id("tool-exit-code")).to_have_text("exit 3")
    card.get_by_test_id("tool-card-toggle").click()
    expect(card.get_by_test_id("tool-command")).to_have_text(f"$ {COMMAND}")
    expect(card.get_by_test_id("tool-output")).to_contain_text("word59")
    expect(card.get_by_test_id("tool-output")).not_to_contain_text("exit code")

    # The finished turn folds into "worked for N s · 1 tool call" and opens again.
    fold = done.get_by_test_id("turn-collapse")
    expect(fold).to_contain_text(re.compile(r"worked for [\d.]+ (ms|s) · 1 tool call"))
    fold.click()
    expect(page.get_by_test_id("tool-card")).to_have_count(0)
    expect(page.get_by_test_id("agent-text").filter(has_text="Writing it.")).to_have_count(0)
    expect(page.get_by_test_id("agent-text").filter(has_text="Wrote mathx.py.")).to_be_visible()
    expect(page.get_by_test_id("prompt-item")).to_have_count(1)
    fold.click()
    expect(page.get_by_test_id("tool-card")).to_have_count(1)

    # Avatar initials leave out the "(you)" aside.
    expect(page.get_by_test_id("presence-avatar")).to_have_text("AL")

    # The diff: a file list, syntax colour, and a panel that can be resized.
    panel = page.get_by_test_id("changes-panel")
    link = panel.locator('[data-testid="diff-file-link"][data-path="mathx.py"]')
    expect(link).to_be_visible()
    link.click()
    diff = panel.locator('[data-testid="diff-file"][data-path="mathx.py"]')
    expect(diff.locator(".hljs-keyword").first).to_have_text("def")
    before = panel.bounding_box()
    assert before is not None
    handle = page.get_by_test_id("changes-resize")
    box = handle.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 3, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] - 150, box["y"] + 200, steps=5)
    page.mouse.up()
    after = panel.bounding_box()
    assert after is not None and after["width"] > before["width"] + 100, (before, after)
    handle.focus()
    handle.press("ArrowRight")
    narrower = panel.bounding_box()
    assert narrower is not None and narrower["width"] < after["width"], (after, narrower)
    page.screenshot(path="/tmp/calm-session.png")

    # A local repo can have no pull request: no button, and no palette entry for one.
    expect(page.get_by_test_id("git-push")).to_have_count(1)
    expect(page.get_by_test_id("pr-create")).to_have_count(0)

    # The palette acts on this session: copy its branch, open its changes.
    page.get_by_test_id("changes-close").click()
    expect(panel).to_have_count(0)
    _palette(page)
    actions = page.get_by_test_id("palette-item")
    expect(actions.and_(page.locator('[data-action="pr"]'))).to_have_count(0)
    page.get_by_test_id("palette-input").fill("copy branch")
    page.locator('[data-testid="palette-item"][data-action="branch"]').click()
    assert page.evaluate("() => navigator.clipboard.readText()") == session["branch"]
    _palette(page)
    page.get_by_test_id("palette-input").fill("open changes")
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()

    # A follow-up sent while a prompt runs waits in the queue only, and joins the timeline when
    # it starts; the palette can stop the running one.
    llm.reset(LONG_COMMAND)
    send_prompt(page, "wait a long time")
    expect(page.locator('[data-testid="tool-card"][data-status="running"]')).to_have_count(1)
    send_prompt(page, "then a follow-up")
    expect(page.get_by_test_id("queued-prompt")).to_contain_text("then a follow-up")
    follow_up = page.get_by_test_id("prompt-item").filter(has_text="then a follow-up")
    expect(follow_up).to_have_count(0)
    _palette(page)
    page.get_by_test_id("palette-input").fill("stop")
    page.locator('[data-testid="palette-item"][data-action="stop"]').click()
    expect(done).to_have_count(3)
    expect(follow_up).to_have_count(1)
    expect(page.get_by_test_id("queued-prompt")).to_have_count(0)

    # The prompts that changed nothing pushed nothing new: still one push row.
    events = browsing.events(session["id"])
    shas = {e["sha"] for e in events if e["type"] == "git-push"}
    expect(page.get_by_test_id("git-push")).to_have_count(len(shas))
