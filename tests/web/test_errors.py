"""Failures are readable messages with their stable code, never a blank page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_server_error_is_shown_with_its_code(browsing: Browsing, tmp_path: Path) -> None:
    page = browsing.page()
    page.get_by_test_id("nav-new-session").click()
    missing = tmp_path / "no-such-repo"
    page.get_by_test_id("new-repo").fill(str(missing))
    page.get_by_test_id("new-prompt").fill("Fix the bug")
    page.get_by_test_id("new-submit").click()

    banner = page.get_by_test_id("error-banner")
    expect(banner).to_contain_text("invalid_input")
    expect(banner).to_contain_text(f"Repo path does not exist: {missing}")
    # The rest of the app is still there and usable.
    expect(page.get_by_test_id("new-submit")).to_be_enabled()
    page.get_by_test_id("nav-sessions").click()
    expect(page.get_by_test_id("session-list")).to_be_visible()


def test_an_unknown_session_says_so(browsing: Browsing) -> None:
    page = browsing.page(path="/sessions/ses_does_not_exist")
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_contain_text("session_not_found")
    expect(page.get_by_test_id("nav-sessions")).to_be_visible()
    # The server's hint is for every client ("List sessions with `openinspect sessions list`");
    # the web app says what to do in the web app, without CLI advice or raw backticks.
    expect(banner.get_by_test_id("error-hint")).to_contain_text(
        "Pick a session from the session list"
    )
    expect(banner).not_to_contain_text("openinspect sessions")
    expect(banner).not_to_contain_text("`")


def test_a_wrong_token_is_refused_at_sign_in(browsing: Browsing) -> None:
    page = browsing.page(signed_in=False)
    page.get_by_test_id("signin-token").fill("oi_not-a-real-token")
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("signin-error")).to_contain_text("unauthenticated")
    page.get_by_test_id("signin-token").fill(browsing.server.token)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("nav-sessions")).to_be_visible()


def test_a_missing_base_branch_says_what_to_do_in_the_web_app(
    browsing: Browsing, origin: Path
) -> None:
    page = browsing.page()
    page.get_by_test_id("nav-new-session").click()
    page.get_by_test_id("new-repo").fill(str(origin))
    page.get_by_test_id("new-base-branch").fill("no-such-branch")
    page.get_by_test_id("new-prompt").fill("Fix the bug")
    page.get_by_test_id("new-submit").click()

    banner = page.get_by_test_id("error-banner")
    expect(banner).to_contain_text("invalid_input")
    expect(banner).to_contain_text("Branch 'no-such-branch' does not exist")
    # The server's own hint, phrased for every client: no CLI flag, no backticks.
    expect(banner.get_by_test_id("error-hint")).to_have_text(
        re.compile(r"^\W*Choose a base branch that exists in the repo$")
    )
    expect(banner).not_to_contain_text("--branch")
    expect(banner).not_to_contain_text("`")
