"""Signing in per browser, not per tab: a second tab is signed in already, signing out in one tab
signs every tab out (and revokes the sign-in on the server), an expired sign-in says so on the
sign-in page, and a sign-in link an admin mints signs a teammate in once."""

from __future__ import annotations

import re
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from openinspect.domain.events import utcnow
from openinspect.store import Store
from openinspect.store.tables import api_tokens
from openinspect.testing.server import ServerProcess
from tests.web.conftest import Browsing, run_async


def stored_token(page: Page) -> str:
    token = page.evaluate("localStorage.getItem('oi.token')")
    assert isinstance(token, str) and token, token
    return token


def me(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def refused_once_revoked(server: ServerProcess, token: str) -> httpx.Response:
    """``/api/me`` with ``token`` once the server refuses it: the page signs out as soon as it
    has sent the revocation, which the server may still be committing (at most 10 s)."""
    deadline = time.monotonic() + 10
    answer = me(server, token)
    while answer.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = me(server, token)
    return answer


def watch(browsing: Browsing, page: Page) -> Page:
    """Fail the test on uncaught errors of a page the fixture did not open."""
    page.on("pageerror", lambda exc: browsing.problems.append(f"uncaught error: {exc}"))
    return page


async def _expire(database_url: str, token_id: str) -> None:
    store = await Store.open(database_url, run_migrations=False)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
    finally:
        await store.close()


def test_one_sign_in_per_browser_and_signing_out_ends_it_in_every_tab(
    browsing: Browsing,
) -> None:
    first = browsing.page()
    token = stored_token(first)
    # The pasted admin token is not kept in the browser: an expiring web sign-in is.
    assert token != browsing.server.token
    tokens = browsing.api("GET", "/api/tokens", token=token)["tokens"]
    current = next(t for t in tokens if t["current"])
    assert current["kind"] == "web" and current["expires_at"] is not None

    second = watch(browsing, first.context.new_page())
    second.goto("/repos")
    expect(second.get_by_test_id("nav-sessions")).to_be_visible()
    expect(second.get_by_test_id("me")).to_be_visible()
    expect(second.get_by_test_id("signin-token")).to_have_count(0)

    first.get_by_test_id("signout").click()
    expect(first.get_by_test_id("signin-token")).to_be_visible()
    # The other tab follows at once, says why, and comes back to where it was after signing in.
    expect(second.get_by_test_id("signin-reason")).to_contain_text("signed out in another tab")
    assert urlsplit(second.url).path == "/signin" and "next=%2Frepos" in second.url
    # Revoked on the server, not only forgotten; the admin token itself still works.
    refused = refused_once_revoked(browsing.server, token)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "token_revoked")
    assert me(browsing.server, browsing.server.token).status_code == 200

    # Signing in again in one tab signs the other in too.
    second.get_by_test_id("signin-token").fill(browsing.server.token)
    second.get_by_test_id("signin-submit").click()
    expect(second.get_by_test_id("nav-sessions")).to_be_visible()
    expect(first.get_by_test_id("nav-sessions")).to_be_visible()


def test_an_expired_sign_in_goes_to_the_sign_in_page_saying_so(browsing: Browsing) -> None:
    page = browsing.page(path="/repos")
    token = stored_token(page)
    tokens = browsing.api("GET", "/api/tokens", token=token)["tokens"]
    token_id = next(t["id"] for t in tokens if t["current"])
    database_url = f"sqlite+aiosqlite:///{browsing.server.home / 'openinspect.db'}"
    run_async(_expire(database_url, token_id))

    # Still on the page, the next request finds out: the sign-in page, saying why.
    page.get_by_test_id("nav-sessions").click()
    expect(page.get_by_test_id("signin-reason")).to_contain_text("Your sign-in expired")
    expect(page.get_by_test_id("signin-token")).to_be_visible()
    assert page.evaluate("localStorage.getItem('oi.token')") is None
    # A new tab of that browser is not signed in either.
    other = watch(browsing, page.context.new_page())
    other.goto("/")
    expect(other.get_by_test_id("signin-token")).to_be_visible()


def test_an_admin_mints_a_sign_in_link_that_signs_a_teammate_in_once(
    browsing: Browsing,
) -> None:
    admin = browsing.page()
    admin.get_by_test_id("nav-people").click()
    email = f"grace.{secrets.token_hex(3)}@example.com"
    admin.get_by_test_id("person-name").fill("Grace Hopper")
    admin.get_by_test_id("person-email").fill(email)
    admin.get_by_test_id("person-add").click()
    expect(admin.locator(f'[data-testid="person-row"][data-email="{email}"]')).to_be_visible()
    url = admin.get_by_test_id("person-link-url").inner_text().strip()
    link = urlsplit(url)
    assert link.path == "/auth/link" and link.fragment.startswith("code=oil_")
    # Adding the same email again is refused, readably.
    admin.get_by_test_id("person-name").fill("Grace again")
    admin.get_by_test_id("person-email").fill(email.upper())
    admin.get_by_test_id("person-add").click()
    expect(admin.get_by_test_id("person-error")).to_contain_text("exists already")

    grace = browsing.page(signed_in=False, path=f"{link.path}#{link.fragment}")
    expect(grace.get_by_test_id("me")).to_have_attribute("data-role", "member")
    title = re.compile(rf"Signed in as Grace Hopper .*<{re.escape(email)}>")
    expect(grace.get_by_test_id("me")).to_have_attribute("title", title)
    assert "code=" not in grace.url  # the code left the address bar at once
    assert grace.get_by_test_id("nav-people").count() == 0  # members manage nobody
    token = stored_token(grace)
    assert me(browsing.server, token).json()["email"] == email

    # The link works once: a second browser opening it is told so.
    again = browsing.page(signed_in=False, path=f"{link.path}#{link.fragment}")
    expect(again.get_by_test_id("signin-error")).to_contain_text("used already")

    # "Copy sign-in link" on the row mints a fresh one (the older is void).
    row = admin.locator(f'[data-testid="person-row"][data-email="{email}"]')
    row.get_by_test_id("person-link").click()
    expect(admin.get_by_test_id("person-link-url")).not_to_have_text(url)
