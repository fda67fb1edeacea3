"""Two people on one session in two browsers: the same live timeline, each other's presence, a
prompt typed in one that streams, runs tools, commits and shows its diff in both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, timeline_rows

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

STREAMED = "Let me run the tests first to see what fails right now."
FINAL = "Fixed it: add now adds, and the test passes."
FIX_SCRIPT = {
    "turns": [
        {
            "text": STREAMED,
            "chunk_delay_ms": 700,
            "tool_calls": [
                {"name": "bash", "args": {"command": "python3 -m unittest -q 2>&1; echo done"}}
            ],
        },
        {
            "tool_calls": [
                {
                    "name": "edit",
                    "args": {"path": "calc.py", "old": "return a - b", "new": "return a + b"},
                }
            ]
        },
        {"text": FINAL},
    ]
}


def test_two_people_see_the_same_live_session(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(FIX_SCRIPT)
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    admin = browsing.api("GET", "/api/me")
    bob_token = browsing.add_user("Bob Builder")
    bob = browsing.api("GET", "/api/me", token=bob_token)
    path = f"/sessions/{session['id']}"
    mine = browsing.page(path=path)
    theirs = browsing.page(bob_token, path=path)

    # Each sees both people watching.
    for page in (mine, theirs):
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
        avatars = page.get_by_test_id("presence-avatar")
        expect(avatars).to_have_count(2)
        for user in (admin, bob):
            avatar = page.locator(f'[data-testid="presence-avatar"][data-user-id="{user["id"]}"]')
            expect(avatar).to_have_attribute("data-status", "active")

    # Bob types a prompt; it appears in both timelines as his.
    theirs.get_by_test_id("prompt-input").fill("Fix add() and run the tests")
    theirs.get_by_test_id("prompt-input").press("Enter")
    for page in (mine, theirs):
        prompt = page.get_by_test_id("prompt-item").filter(has_text="Fix add() and run the tests")
        expect(prompt).to_be_visible()
        expect(prompt.get_by_test_id("prompt-author")).to_have_text("Bob Builder")

    # The model's text streams into both (a part of it, then the whole), then becomes durable.
    for page in (mine, theirs):
        streaming = page.get_by_test_id("streaming-text")
        expect(streaming).to_be_visible()
        partial = streaming.inner_text().strip()
        assert partial and STREAMED.startswith(partial), partial
    for page in (mine, theirs):
        expect(page.get_by_test_id("agent-text").filter(has_text=STREAMED)).to_be_visible()
        expect(page.get_by_test_id("agent-text").filter(has_text=FINAL)).to_be_visible()
        expect(page.get_by_test_id("streaming-text")).to_have_count(0)
        done = rows_of_type(page, "prompt-finished")
        expect(done).to_contain_text("Done")

    # Tool cards, the commit and the push, in both.
    events = browsing.events(session["id"])
    finished = [e for e in events if e["type"] == "prompt-finished"]
    assert [e["status"] for e in finished] == ["success"], events
    commit = next(e for e in events if e["type"] == "git-commit")
    assert commit["author"]["id"] == bob["id"]
    for page in (mine, theirs):
        bash = page.locator('[data-testid="tool-card"][data-tool="bash"]')
        expect(bash).to_have_attribute("data-status", "done")
        expect(bash.get_by_test_id("tool-exit-code")).to_have_text(re.compile(r"exit 0"))
        bash.get_by_test_id("tool-card-toggle").click()
        expect(bash.get_by_test_id("tool-output")).to_contain_text("FAILED")
        expect(page.locator('[data-testid="tool-card"][data-tool="edit"]')).to_have_attribute(
            "data-status", "done"
        )
        sha = commit["sha"]
        expect(page.locator(f'[data-testid="git-commit"][data-sha="{sha}"]')).to_be_visible()
        expect(page.get_by_test_id("git-push")).to_contain_text(session["branch"])

    # The Changes panel of both shows the committed change.
    for page in (mine, theirs):
        changed = page.locator('[data-testid="diff-file"][data-path="calc.py"]')
        expect(changed).to_contain_text("return a + b")
        expect(changed).to_contain_text("return a - b")
        page.get_by_test_id("diff-mode-split").click()
        expect(changed.locator("table")).to_have_class(re.compile(r"\bsplit\b"))

    # Both show the same rows, in the log's order.
    durable = {e["seq"] for e in events}
    for page in (mine, theirs):
        shown = timeline_rows(page)
        assert [seq for seq, _ in shown] == sorted({seq for seq, _ in shown})
        assert {seq for seq, _ in shown} <= durable
    assert timeline_rows(mine) == timeline_rows(theirs)

    # When Bob leaves, the other page sees one watcher.
    theirs.context.close()
    expect(mine.get_by_test_id("presence-avatar")).to_have_count(1)
    expect(mine.get_by_test_id("presence-avatar")).to_have_attribute("data-user-id", admin["id"])
