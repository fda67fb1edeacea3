"""The doors of sign-in links and browser sign-ins: a link's code works once even when many
redeem it at the same moment (SQLite and Postgres), repeated failures are rate-limited, the code
is size- and charset-limited, a code is never a bearer token, and an expired browser sign-in
closes its WebSockets too. The HTTP doors are driven in process (``openinspect.testing.asgi``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.api.ws import CLOSE_AUTH
from openinspect.domain.events import utcnow
from openinspect.errors import LoginLinkInvalid, LoginLinkUsed
from openinspect.people.links import FAILED_ATTEMPTS_MAX
from openinspect.store import Store
from openinspect.store.tables import api_tokens, users
from openinspect.testing.asgi import Caller, InApp
from tests.store.test_migrations import pg_url  # noqa: F401 - a fixture

CONCURRENT = 16


async def _race(store: Store) -> None:
    user = await store.users.create(name="Grace", email="grace@example.com", role="member")
    code, _ = await store.users.mint_login_link(user.id, "link", utcnow() + timedelta(hours=1))
    expires = utcnow() + timedelta(hours=1)
    results = await asyncio.gather(
        *(store.users.redeem_login_link(code, "web", expires) for _ in range(CONCURRENT)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, tuple)]
    losers = [r for r in results if not isinstance(r, tuple)]
    assert len(winners) == 1, results
    assert all(isinstance(r, LoginLinkUsed) for r in losers), losers
    assert (await store.users.authenticate(winners[0][0])) == user
    async with store.engine.connect() as conn:
        web = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(api_tokens)
                .where(api_tokens.c.user_id == user.id, api_tokens.c.kind == "web")
            )
        ).scalar_one()
    assert web == 1


async def test_concurrent_redemptions_of_one_code_have_one_winner_on_sqlite(
    tmp_path: Path,
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        await _race(store)
    finally:
        await store.close()


async def test_concurrent_redemptions_of_one_code_have_one_winner_on_postgres(
    pg_url: str,  # noqa: F811 - the fixture
) -> None:
    store = await Store.open(pg_url)
    try:
        await _race(store)
    finally:
        await store.close()


async def _member_link(api: InApp) -> tuple[str, str]:
    user = await api.plane.store.users.add(name="Grace", email="grace@example.com", role="member")
    minted = await api.admin().call("POST", f"/api/users/{user.id}/login-links")
    assert minted.status_code == 201, minted.text
    return user.id, minted.json()["url"].split("#code=", 1)[1]


def _bearer(code: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {code}"}


async def test_codes_are_limited_in_size_and_alphabet_and_are_not_tokens(api: InApp) -> None:
    _, code = await _member_link(api)
    for bad in ("x" * 101, "oil_abc/../x", "oil_ü", "", 42):
        refused = await api.http.post("/auth/login-link", json={"code": bad})
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "invalid_input"
    # The code authenticates nothing, anywhere, and is not listed as a token.
    for path in ("/api/me", "/api/tokens", "/auth/web-token"):
        method = "POST" if path.startswith("/auth") else "GET"
        assert (await api.http.request(method, path, headers=_bearer(code))).status_code == 401
    # Still usable afterwards: none of that used it up.
    assert (await api.http.post("/auth/login-link", json={"code": code})).status_code == 200


async def test_repeated_failures_are_rate_limited(api: InApp) -> None:
    _, code = await _member_link(api)
    for i in range(FAILED_ATTEMPTS_MAX):
        wrong = await api.http.post("/auth/login-link", json={"code": f"oil_wrong{i}"})
        assert wrong.json()["error"]["code"] == "login_link_invalid"
    limited = await api.http.post("/auth/login-link", json={"code": code})
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["code"] == "sign_in_rate_limited" and error["hint"]


async def test_members_cannot_mint_links_even_for_themselves(api: InApp) -> None:
    ada = await api.member("ada")
    for path in (f"/api/users/{ada.user.id}/login-links", "/api/users"):
        body = {"name": "Eve", "email": "eve@example.com", "role": "admin"}
        refused = await ada.call("POST", path, json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert len((await api.admin().call("GET", "/api/users")).json()["users"]) == 2


async def test_a_link_of_a_deleted_user_signs_nobody_in(api: InApp) -> None:
    user_id, code = await _member_link(api)
    async with api.plane.store.engine.begin() as conn:
        await conn.execute(users.delete().where(users.c.id == user_id))
    gone = await api.http.post("/auth/login-link", json={"code": code})
    assert (gone.status_code, gone.json()["error"]["code"]) == (401, "login_link_invalid")
    with pytest.raises(LoginLinkInvalid):
        await api.plane.store.users.redeem_login_link(code, "web", utcnow())


async def test_an_expired_browser_sign_in_closes_its_websockets(api: InApp, calc: str) -> None:
    _, code = await _member_link(api)
    signed = await api.http.post("/auth/login-link", json={"code": code})
    token = signed.json()["token"]
    found = await api.plane.store.users.lookup(token)
    assert found is not None and found.kind == "web"
    grace = Caller(api, found.user, token)
    session_id = (await grace.session(repo=calc))["id"]
    async with grace.socket(session_id) as (ws, _):
        async with api.plane.store.engine.begin() as conn:
            await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == found.token_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        # No command sent: the periodic re-check (0.5 s here) closes it.
        assert await ws.close_code(timeout_s=5) == CLOSE_AUTH
    refused = await grace.call("POST", f"/api/sessions/{session_id}/ws-token")
    assert refused.json()["error"]["code"] == "token_expired"
