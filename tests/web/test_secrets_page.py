"""The Secrets page: an admin sets a repo's secret and imports pasted ``.env`` text for it (a
bad line is named and imports nothing), sees what the repo's boxes get, and deletes one; no
value is ever on the page once sent."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
TOKEN = "pg-SECRET-web-0123456789"
IMPORTED = "npm-SECRET-web-abcdef"


def test_an_admin_sets_imports_and_deletes_a_repos_secrets(
    browsing: Browsing, origin: Path
) -> None:
    # A repo of this test's own: the server is shared, and a global secret would reach every
    # other test's boxes.
    repo = f"vault-{secrets.token_hex(3)}"
    browsing.api("POST", "/api/repos", json={"name": repo, "url": str(origin)})
    page = browsing.page(path="/")
    page.get_by_test_id("nav-secrets").click()
    expect(page).to_have_url(f"{browsing.server.url}/settings/secrets")
    page.get_by_test_id("secrets-scope").select_option(repo)

    page.get_by_test_id("secret-name").fill("API_TOKEN")
    page.get_by_test_id("secret-value").fill(TOKEN)
    page.get_by_test_id("secret-set").click()
    expect(page.get_by_test_id("secret-saved")).to_have_text("Saved API_TOKEN.")
    expect(page.get_by_test_id("secret-value")).to_have_value("")
    row = page.get_by_test_id("secret-row").filter(has_text="API_TOKEN")
    expect(row).to_have_attribute("data-scope", "repo")

    text = page.get_by_test_id("secrets-import-text")
    text.fill(f"export NPM_TOKEN={IMPORTED}\nnot a binding\n")
    page.get_by_test_id("secrets-import").click()
    expect(page.get_by_test_id("secrets-import-error")).to_contain_text("line 2")
    expect(page.get_by_test_id("secrets-import-error")).to_contain_text("secret_invalid")
    text.fill(f'# from CI\nexport NPM_TOKEN="{IMPORTED}"\nREGION=eu-west-1a # zone\n')
    page.get_by_test_id("secrets-import").click()
    expect(page.get_by_test_id("secrets-import-result")).to_have_text(
        "Imported 2: NPM_TOKEN, REGION."
    )
    expect(page.get_by_test_id("secret-row")).to_have_count(3)
    page.screenshot(path=str(Path("/tmp") / "secrets-page.png"))

    listed = browsing.api("GET", "/api/secrets", params={"repo": repo})["secrets"]
    assert sorted(s["name"] for s in listed if s["repo"] == repo) == [
        "API_TOKEN",
        "NPM_TOKEN",
        "REGION",
    ]
    row.get_by_test_id("secret-delete").click()
    row.get_by_test_id("secret-delete-confirm").click()
    expect(page.get_by_test_id("secret-row").filter(has_text="API_TOKEN")).to_have_count(0)
    page.reload()
    page.get_by_test_id("secrets-scope").select_option(repo)
    expect(page.get_by_test_id("secret-row")).to_have_count(2)
    html = page.content()
    assert TOKEN not in html and IMPORTED not in html
