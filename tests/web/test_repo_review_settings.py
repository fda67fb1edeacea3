"""The Repos page's review-bot panel: an admin turns auto-review off and gives the bot review
instructions; the page says what the bot will do, and the API agrees after a reload."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_an_admin_changes_a_repos_review_settings_in_the_repos_page(
    browsing: Browsing, origin: Path
) -> None:
    name = f"widgets-{secrets.token_hex(3)}"
    browsing.api("POST", "/api/repos", json={"name": name, "url": str(origin)})
    page = browsing.page(path="/repos")
    row = page.get_by_test_id("repo-row").filter(has_text=name)
    row.get_by_test_id("repo-review-toggle").click()
    panel = row.get_by_test_id("review-panel")
    expect(panel.get_by_test_id("review-effective")).to_contain_text("reviewed automatically")
    expect(panel.get_by_test_id("review-effective")).to_contain_text("server’s default")

    panel.get_by_test_id("review-auto").select_option("off")
    panel.get_by_test_id("review-instructions").fill("Look hard at the tests.")
    panel.get_by_test_id("review-save").click()
    expect(panel.get_by_role("status")).to_have_text("Saved.")
    expect(panel.get_by_test_id("review-effective")).to_contain_text("not reviewed")
    page.screenshot(path=str(Path("/tmp") / "repo-review-settings.png"))

    shown = browsing.api("GET", f"/api/repos/{name}/review-settings")
    assert shown["auto_review"] is False
    assert shown["effective"]["instructions"] == "Look hard at the tests."
    page.reload()
    row = page.get_by_test_id("repo-row").filter(has_text=name)
    row.get_by_test_id("repo-review-toggle").click()
    expect(row.get_by_test_id("review-instructions")).to_have_value("Look hard at the tests.")
