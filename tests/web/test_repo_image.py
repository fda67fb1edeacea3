"""The Repos page's image panel: an admin turns a repo's image on and asks for a build; the
panel lists the build with its status and opens its log, and the API agrees."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_an_admin_turns_a_repos_image_on_and_asks_for_a_build(
    browsing: Browsing, origin: Path
) -> None:
    name = f"imaged-{secrets.token_hex(3)}"
    browsing.api("POST", "/api/repos", json={"name": name, "url": str(origin)})
    page = browsing.page(path="/repos")
    row = page.get_by_test_id("repo-row").filter(has_text=name)
    row.get_by_test_id("repo-image-toggle").click()
    panel = row.get_by_test_id("image-panel")
    state = panel.get_by_test_id("image-state")
    expect(state).to_have_attribute("data-enabled", "false")
    expect(state).to_contain_text("Images are off")
    expect(panel.get_by_test_id("image-build")).to_have_count(0)

    panel.get_by_test_id("image-toggle").click()
    expect(state).to_have_attribute("data-enabled", "true")
    expect(state).to_contain_text("New boxes start from the image of main")
    panel.get_by_test_id("image-build").click()
    build = panel.get_by_test_id("image-build-row").first
    expect(build).to_contain_text("manual")
    build.get_by_test_id("image-log-open").click()
    expect(panel.get_by_test_id("image-log")).to_be_visible()
    page.screenshot(path=str(Path("/tmp") / "repo-image.png"))

    shown = browsing.api("GET", f"/api/repos/{name}/image")
    assert shown["enabled"] is True
    builds = browsing.api("GET", f"/api/repos/{name}/image/builds")["builds"]
    assert [b["trigger"] for b in builds] == ["manual"]
    browsing.api("PUT", f"/api/repos/{name}/image", json={"enabled": False})
