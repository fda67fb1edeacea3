"""Tidying in the browser: the title is edited in place (Enter saves, Esc cancels), a session is
archived from its header or the palette, and the list's Archived filter shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_inline_rename_archive_and_the_archived_filter(browsing: Browsing, origin: Path) -> None:
    session = browsing.api("POST", "/api/sessions", json={"repo": str(origin), "title": "Old"})
    sid = session["session"]["id"]
    other = browsing.api("POST", "/api/sessions", json={"repo": str(origin), "title": "Other"})
    page = browsing.page(path=f"/sessions/{sid}")
    title = page.get_by_test_id("session-title")
    expect(title).to_have_text("Old")

    # Esc cancels: nothing is sent.
    title.click()
    field = page.get_by_test_id("session-title-input")
    field.fill("Not this")
    field.press("Escape")
    expect(title).to_have_text("Old")
    # Enter saves; the server's event is what the header shows.
    title.click()
    field.fill("Tidy the adder")
    field.press("Enter")
    expect(title).to_have_text("Tidy the adder")
    updates = [e for e in browsing.events(sid) if e["type"] == "session-updated"]
    assert [u.get("title") for u in updates] == ["Tidy the adder"]
    # A refused title says why and keeps the field open.
    title.click()
    field.fill("bad\u202etitle")
    field.press("Enter")
    expect(page.get_by_test_id("session-title-error")).to_contain_text("printable")
    field.press("Escape")

    page.get_by_test_id("archive-toggle").click()
    expect(page.get_by_test_id("archive-toggle")).to_have_text("Unarchive")
    assert browsing.api("GET", f"/api/sessions/{sid}")["session"]["status"] == "archived"

    page.get_by_test_id("nav-sessions").click()
    row = page.locator(f'[data-testid="session-row"][data-session-id="{sid}"]')
    other_row = page.locator(
        f'[data-testid="session-row"][data-session-id="{other["session"]["id"]}"]'
    )
    expect(other_row).to_be_visible()
    expect(row).to_have_count(0)
    page.get_by_test_id("filter-archived").click()
    expect(row).to_be_visible()
    expect(row).to_contain_text("Tidy the adder")
    expect(other_row).to_have_count(0)

    # Unarchive from the palette, on the session's page.
    row.click()
    expect(page.get_by_test_id("session-title")).to_have_text("Tidy the adder")
    page.keyboard.press("Control+k")
    page.get_by_role("option", name="Unarchive session").click()
    expect(page.get_by_test_id("archive-toggle")).to_have_text("Archive")
    assert browsing.api("GET", f"/api/sessions/{sid}")["session"]["status"] == "idle"
