"""The fake Linear's OAuth 2 (actor=app) as the product's install flow uses it: authorize →
redirect with a one-time code → token (and refresh) → ``viewer`` is the app in the installed
organization; refusals as OAuth 2 says."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from openinspect.testing.linear import FakeLinear
from tests.testing.linear.documents import VIEWER, data, post

CALLBACK = "http://127.0.0.1:9/integrations/linear/callback"
SCOPES = "read,write,app:assignable,app:mentionable"


@pytest.fixture(scope="module")
def linear() -> Iterator[FakeLinear]:
    with FakeLinear(client_id="cid", client_secret="csecret", redirect_uris=[CALLBACK]) as fake:
        yield fake


def authorize(fake: FakeLinear, **overrides: str) -> httpx.Response:
    params = {
        "client_id": "cid",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": SCOPES,
        "state": "st-1",
        "actor": "app",
        **overrides,
    }
    return httpx.get(f"{fake.authorize_url}?{urlencode(params)}", follow_redirects=False)


def redirected(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token(fake: FakeLinear, form: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.post(f"{fake.api_url}/oauth/token", data=form, **kw)


def exchange(fake: FakeLinear, code: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "cid",
        "client_secret": "csecret",
        **overrides,
    }
    return token(fake, form)


def test_install_gives_an_app_token_for_the_org(linear: FakeLinear) -> None:
    other = linear.add_org("Acme", "acme")
    admin = linear.add_user("Root", "root@acme.test", org_id=other.id, admin=True)
    linear.set_installer(org_id=other.id, user_id=admin.id)
    try:
        answer = redirected(authorize(linear))
    finally:
        linear.set_installer()
    assert answer["state"] == "st-1" and len(answer["code"]) >= 20
    got = exchange(linear, answer["code"])
    assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
    body = got.json()
    assert body["token_type"] == "Bearer" and 86_000 < body["expires_in"] <= 86_399
    assert body["scope"] == "read write app:assignable app:mentionable"
    assert body["refresh_token"].startswith("lin_refresh_")
    viewer = data(post(linear, body["access_token"], VIEWER))["viewer"]
    assert viewer["organization"] == {"id": other.id, "name": "Acme", "urlKey": "acme"}
    assert viewer["id"] == other.app_user_id and viewer["name"] == "openinspect"
    again = exchange(linear, answer["code"])  # a code is one-time; reuse revokes its tokens
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert post(linear, body["access_token"], VIEWER).status_code == 401


def test_refresh_rotates_and_user_actor_is_the_installer(linear: FakeLinear) -> None:
    code = redirected(authorize(linear, actor="user", scope="read,write"))["code"]
    first = exchange(linear, code).json()
    assert data(post(linear, first["access_token"], VIEWER))["viewer"]["id"] == linear.admin_user_id
    basic = base64.b64encode(b"cid:csecret").decode()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = token(linear, form, headers={"Authorization": f"Basic {basic}"})
    assert second.status_code == 200
    fresh = second.json()
    assert fresh["access_token"] != first["access_token"]
    assert fresh["refresh_token"] != first["refresh_token"]
    reused = token(linear, {**form, "client_id": "cid", "client_secret": "csecret"})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert data(post(linear, fresh["access_token"], VIEWER))["viewer"]["id"] == linear.admin_user_id


def test_authorize_refusals(linear: FakeLinear) -> None:
    for bad in ({"client_id": "nope"}, {"redirect_uri": "http://evil.test/cb"}):
        answer = authorize(linear, **bad)
        assert answer.status_code == 400 and "location" not in answer.headers
    cases = [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "read,write,everything"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"actor": "user"}, "invalid_scope"),  # app:* scopes need actor=app
        ({"actor": "robot"}, "invalid_request"),
    ]
    for overrides, expected in cases:
        got = redirected(authorize(linear, **overrides))
        assert got == {"error": expected, "state": "st-1"}, overrides
    linear.refuse_next_authorize()
    denied = redirected(authorize(linear))
    assert denied["error"] == "access_denied" and denied["state"] == "st-1"
    assert "code" in redirected(authorize(linear))  # only the next one was refused


def test_token_refusals(linear: FakeLinear) -> None:
    code = redirected(authorize(linear))["code"]
    assert exchange(linear, code, client_secret="wrong").status_code == 401
    assert exchange(linear, code, client_secret="wrong").json()["error"] == "invalid_client"
    assert exchange(linear, code, redirect_uri=CALLBACK + "x").json()["error"] == "invalid_grant"
    # the refused exchange above used the code up
    assert exchange(linear, code).json()["error"] == "invalid_grant"
    assert exchange(linear, "made-up").json()["error"] == "invalid_grant"
    json_body = httpx.post(f"{linear.api_url}/oauth/token", json={"grant_type": "x"})
    assert json_body.status_code == 400 and json_body.json()["error"] == "invalid_request"
    odd = token(linear, {"grant_type": "password", "client_id": "cid", "client_secret": "csecret"})
    assert odd.json()["error"] == "unsupported_grant_type"
    linear.oauth_app.code_ttl_s = 0.0
    try:
        stale = redirected(authorize(linear))["code"]  # expires the moment it is made
        assert exchange(linear, stale).json()["error"] == "invalid_grant"
    finally:
        linear.oauth_app.code_ttl_s = 300.0


def test_client_credentials_and_revoke(linear: FakeLinear) -> None:
    form = {
        "grant_type": "client_credentials",
        "scope": "read,write",
        "client_id": "cid",
        "client_secret": "csecret",
    }
    got = token(linear, form).json()
    assert "refresh_token" not in got and got["expires_in"] > 2_500_000
    assert data(post(linear, got["access_token"], VIEWER))["viewer"]["id"] == linear.app_user_id
    revoked = httpx.post(
        f"{linear.api_url}/oauth/revoke", headers={"Authorization": f"Bearer {got['access_token']}"}
    )
    assert revoked.status_code == 200
    assert post(linear, got["access_token"], VIEWER).status_code == 401
    twice = httpx.post(f"{linear.api_url}/oauth/revoke", data={"access_token": got["access_token"]})
    assert twice.status_code == 400
