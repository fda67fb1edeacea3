"""Web sign-ins without GitHub: an admin adds a person and mints them a one-time sign-in link;
a pasted token is exchanged for an expiring browser sign-in; expired and revoked tokens say so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from openinspect.domain.events import utcnow
from openinspect.settings import LOGIN_LINK_TTL_S, WEB_TOKEN_TTL_S, AuthSettings
from openinspect.store.tables import api_tokens
from tests.api.signin_helpers import Api, running, settings_for

WEB_TTL_S = 3600
LINK_TTL_S = 600


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = settings_for(
        tmp_path / "home", web_token_ttl_s=WEB_TTL_S, login_link_ttl_s=LINK_TTL_S
    )
    async with running(settings) as opened:
        yield opened


async def add_user(api: Api, name: str = "Grace", role: str = "member") -> dict[str, str]:
    email = f"{name.lower()}@example.com"
    made = await api.admin("POST", "/api/users", json={"name": name, "email": email, "role": role})
    assert made.status_code == 201, made.text
    user: dict[str, str] = made.json()
    return user


async def mint_code(api: Api, user_id: str) -> str:
    minted = await api.admin("POST", f"/api/users/{user_id}/login-links")
    assert minted.status_code == 201, minted.text
    url = urlsplit(minted.json()["url"])
    assert url.path == "/auth/link" and url.fragment.startswith("code=oil_")
    return url.fragment.removeprefix("code=")


async def expire(api: Api, token_id: str) -> None:
    async with api.plane.store.engine.begin() as conn:
        await conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_defaults_keep_a_browser_signed_in_two_weeks_and_links_a_day() -> None:
    auth = AuthSettings()
    assert auth.web_token_ttl_s == WEB_TOKEN_TTL_S == 14 * 24 * 3600
    assert auth.login_link_ttl_s == LOGIN_LINK_TTL_S == 24 * 3600


async def test_an_admin_adds_users_validated_and_unique(api: Api) -> None:
    grace = await add_user(api, "Grace")
    assert (grace["name"], grace["role"]) == ("Grace", "member")
    assert grace["email"] == "grace@example.com"
    assert grace["git_email"] == "grace@example.com"
    listed = (await api.admin("GET", "/api/users")).json()["users"]
    assert grace["id"] in {u["id"] for u in listed}

    again = await api.admin(
        "POST", "/api/users", json={"name": "Other", "email": "GRACE@example.com"}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "conflict")
    assert again.json()["error"]["hint"]
    for bad in (
        {"name": "x", "email": "not-an-email"},
        {"name": "<script>", "email": "a@example.com"},
        {"name": "", "email": "a@example.com"},
        {"name": "x" * 201, "email": "a@example.com"},
        {"name": "x", "email": "a@example.com", "role": "owner"},
        {"email": "a@example.com"},
    ):
        refused = await api.admin("POST", "/api/users", json=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "invalid_input"


async def test_a_login_link_signs_its_person_in_once(api: Api) -> None:
    grace = await add_user(api)
    code = await mint_code(api, grace["id"])
    # The code is not a token: it authenticates nothing by itself.
    assert (await api.as_user(code, "GET", "/api/me")).status_code == 401

    signed = await api.client.post("/auth/login-link", json={"code": code})
    assert signed.status_code == 200, signed.text
    assert signed.headers["cache-control"] == "no-store"
    body = signed.json()
    assert body["user"]["id"] == grace["id"]
    me = await api.as_user(body["token"], "GET", "/api/me")
    assert me.json()["id"] == grace["id"]
    tokens = (await api.as_user(body["token"], "GET", "/api/tokens")).json()["tokens"]
    # Only the web token is listed (the used link is no token of hers), expiring after the TTL.
    assert [t["kind"] for t in tokens] == ["web"]
    left_s = (datetime.fromisoformat(tokens[0]["expires_at"]) - utcnow()).total_seconds()
    assert WEB_TTL_S - 60 < left_s <= WEB_TTL_S

    reused = await api.client.post("/auth/login-link", json={"code": code})
    assert (reused.status_code, reused.json()["error"]["code"]) == (410, "login_link_used")
    assert "admin" in reused.json()["error"]["hint"]
    unknown = await api.client.post("/auth/login-link", json={"code": "oil_" + "A" * 43})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, "login_link_invalid")


async def test_login_links_expire_and_a_newer_one_voids_the_older(api: Api) -> None:
    grace = await add_user(api)
    old = await mint_code(api, grace["id"])
    new = await mint_code(api, grace["id"])
    replaced = await api.client.post("/auth/login-link", json={"code": old})
    assert (replaced.status_code, replaced.json()["error"]["code"]) == (410, "login_link_expired")
    assert "newer" in replaced.json()["error"]["message"]

    async with api.plane.store.engine.connect() as conn:
        link_id = (
            await conn.execute(
                sa.select(api_tokens.c.id).where(
                    api_tokens.c.user_id == grace["id"],
                    api_tokens.c.kind == "link",
                    api_tokens.c.revoked_at.is_(None),
                )
            )
        ).scalar_one()
    await expire(api, link_id)
    expired = await api.client.post("/auth/login-link", json={"code": new})
    assert (expired.status_code, expired.json()["error"]["code"]) == (410, "login_link_expired")


async def test_members_cannot_add_users_or_mint_links(api: Api) -> None:
    grace = await add_user(api)
    code = await mint_code(api, grace["id"])
    member = (await api.client.post("/auth/login-link", json={"code": code})).json()["token"]
    made = await api.as_user(
        member, "POST", "/api/users", json={"name": "Eve", "email": "eve@example.com"}
    )
    assert (made.status_code, made.json()["error"]["code"]) == (403, "forbidden")
    for target in (grace["id"], "usr_nope"):
        minted = await api.as_user(member, "POST", f"/api/users/{target}/login-links")
        assert (minted.status_code, minted.json()["error"]["code"]) == (403, "forbidden")
    missing = await api.admin("POST", "/api/users/usr_nope/login-links")
    assert missing.status_code == 404


async def test_expired_and_revoked_web_tokens_say_why(api: Api) -> None:
    grace = await add_user(api)
    code = await mint_code(api, grace["id"])
    token = (await api.client.post("/auth/login-link", json={"code": code})).json()["token"]
    found = await api.plane.store.users.lookup(token)
    assert found is not None and found.kind == "web"
    await expire(api, found.token_id)
    refused = await api.as_user(token, "GET", "/api/me")
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "token_expired")

    code = await mint_code(api, grace["id"])
    token = (await api.client.post("/auth/login-link", json={"code": code})).json()["token"]
    assert (await api.as_user(token, "POST", "/auth/logout")).status_code == 204
    revoked = await api.as_user(token, "GET", "/api/me")
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "token_revoked")
    unknown = await api.as_user("oi_nope", "GET", "/api/me")
    assert unknown.json()["error"]["code"] == "unauthenticated"


async def test_a_pasted_token_is_exchanged_for_an_expiring_web_sign_in(api: Api) -> None:
    exchanged = await api.admin("POST", "/auth/web-token")
    assert exchanged.status_code == 200, exchanged.text
    web = exchanged.json()["token"]
    assert web != api.admin_token
    found = await api.plane.store.users.lookup(web)
    assert found is not None and found.kind == "web"
    record = await api.plane.store.users.get_token(found.token_id)
    assert record is not None and record.expires_at is not None
    assert (record.expires_at - utcnow()).total_seconds() <= WEB_TTL_S
    # Signing the browser out does not lock out the admin token (the CLI's).
    assert (await api.as_user(web, "POST", "/auth/logout")).status_code == 204
    assert (await api.admin("GET", "/api/me")).status_code == 200

    # A web token pasted in is replaced, not duplicated.
    first = (await api.admin("POST", "/auth/web-token")).json()["token"]
    second = (await api.as_user(first, "POST", "/auth/web-token")).json()["token"]
    assert (await api.as_user(first, "GET", "/api/me")).json()["error"]["code"] == "token_revoked"
    assert (await api.as_user(second, "GET", "/api/me")).status_code == 200
