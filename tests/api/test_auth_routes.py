"""Sign in with GitHub against the fake GitHub: the web flow, admission, state checks, the device
flow for the CLI, and tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.api.routes.auth import NONCE_COOKIE
from openinspect.store.tables import api_tokens, identities, users
from openinspect.testing.github import FakeGitHub
from tests.api.signin_helpers import (
    Api,
    authorize_at_github,
    fragment,
    running,
    settings_for,
    signin_error,
    start_login,
    web_sign_in,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_user("ada", name="Ada Lovelace")
        gh.add_user("root")
        gh.add_user("eve", emails=["eve@elsewhere.example"])
        gh.add_user("orgy", orgs=["Acme"])
        gh.add_user("mailer", emails=["m@other.example", "m@corp.example"])
        gh.add_user("sneaky", emails=[("s@corp.example", False, True)])
        yield gh


@pytest.fixture
async def api(tmp_path: Path, fake: FakeGitHub) -> AsyncIterator[Api]:
    settings = settings_for(
        tmp_path / "home",
        fake.settings(),
        allowed_users=["ADA", "root"],
        allowed_orgs=["acme"],
        allowed_email_domains=["corp.example"],
        admin_users=["root"],
        web_token_ttl_s=3600,
    )
    async with running(settings, fake) as opened:
        yield opened


async def _count(api: Api, table: sa.Table) -> int:
    async with api.plane.store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_web_flow_signs_in_a_member(api: Api, fake: FakeGitHub) -> None:
    authorize = await start_login(api, "/sessions/ses_1?x=1")
    assert authorize.startswith(f"{fake.url}/login/oauth/authorize?")
    assert "redirect_uri=http%3A%2F%2Ftest%2Fauth%2Fgithub%2Fcallback" in authorize
    fake.set_oauth_user("ada")
    done = await api.client.get(await authorize_at_github(authorize))
    assert done.status_code == 302
    assert done.headers["cache-control"] == "no-store"
    result = fragment(done)
    assert result["next"] == "/sessions/ses_1?x=1"
    assert NONCE_COOKIE not in api.client.cookies  # single use
    me = (await api.as_user(result["token"], "GET", "/api/me")).json()
    ada = fake.state.require_user("ada")
    assert me["role"] == "member"
    assert me["name"] == me["git_name"] == "Ada Lovelace"
    assert me["git_email"] == f"{ada.id}+ada@users.noreply.127.0.0.1"
    assert me["email"] == "ada@example.com"  # the primary verified address
    tokens = (await api.as_user(result["token"], "GET", "/api/tokens")).json()["tokens"]
    assert [(t["kind"], t["current"]) for t in tokens] == [("web", True)]
    expires = tokens[0]["expires_at"]
    assert expires is not None

    # Signing in again keeps the same user; the identity's OAuth token is sealed in the DB.
    again = fragment(await web_sign_in(api, "ada"))
    assert (await api.as_user(again["token"], "GET", "/api/me")).json()["id"] == me["id"]
    async with api.plane.store.engine.connect() as conn:
        row = (await conn.execute(identities.select())).one()
    assert row.login == "ada" and row.subject == str(ada.id)
    github_tokens = [t for t in fake.state.data.user_tokens.values() if t.login == "ada"]
    assert github_tokens
    for token in github_tokens:
        assert token.token not in row.access_token_enc
        assert token.refresh_token is None or token.refresh_token not in row.refresh_token_enc


async def test_next_must_stay_on_this_site(api: Api) -> None:
    for evil in ("https://evil.example/x", "//evil.example", "/\\evil.example", "javascript:x"):
        assert fragment(await web_sign_in(api, "ada", evil))["next"] == "/"


async def test_admin_users_sign_in_as_admins(api: Api) -> None:
    token = fragment(await web_sign_in(api, "root"))["token"]
    assert (await api.as_user(token, "GET", "/api/me")).json()["role"] == "admin"
    assert (await api.as_user(token, "GET", "/api/users")).status_code == 200


async def test_outside_every_allowlist_is_refused_and_nothing_is_created(api: Api) -> None:
    before = (
        await _count(api, users),
        await _count(api, identities),
        await _count(api, api_tokens),
    )
    assert signin_error(await web_sign_in(api, "eve")) == "sign_in_refused"
    as_json = await web_sign_in(api, "eve", accept="application/json")
    assert as_json.status_code == 403
    error = as_json.json()["error"]
    assert error["code"] == "sign_in_refused"
    assert "@eve is not admitted" in error["message"]
    for listed in ("allowed users", "allowed organisations", "allowed email domains"):
        assert listed in error["message"]
    for secret in ("ada", "root", "acme", "corp.example"):
        assert secret not in error["message"].lower()
    # An unverified address at an allowed domain does not count either.
    assert signin_error(await web_sign_in(api, "sneaky")) == "sign_in_refused"
    after = (await _count(api, users), await _count(api, identities), await _count(api, api_tokens))
    assert after == before


async def test_org_members_and_verified_email_domains_are_admitted(api: Api) -> None:
    for login in ("orgy", "mailer"):
        token = fragment(await web_sign_in(api, login))["token"]
        assert (await api.as_user(token, "GET", "/api/me")).json()["role"] == "member"
    listed = (await api.admin("GET", "/api/users")).json()["users"]
    assert {u["github_login"] for u in listed} == {None, "orgy", "mailer"}
    mailer = next(u for u in listed if u["github_login"] == "mailer")
    assert mailer["email"] == "m@other.example"  # the primary, though another one admitted


async def test_tampered_foreign_and_expired_states_are_refused(api: Api, fake: FakeGitHub) -> None:
    fake.set_oauth_user("ada")
    callback = await authorize_at_github(await start_login(api))
    tampered = callback.replace("state=", "state=x", 1)
    assert signin_error(await api.client.get(tampered)) == "oauth_state_invalid"

    # Started in another browser: the state is genuine but this browser has no nonce.
    callback = await authorize_at_github(await start_login(api))
    api.client.cookies.clear()
    refused = await api.client.get(callback, headers={"accept": "application/json"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "oauth_state_invalid"
    assert "another browser" in refused.json()["error"]["message"]

    api.people.oauth_state.ttl_s = -1
    callback = await authorize_at_github(await start_login(api))
    expired = await api.client.get(callback, headers={"accept": "application/json"})
    assert expired.json()["error"]["code"] == "oauth_state_invalid"
    assert "expired" in expired.json()["error"]["message"]


async def test_a_replayed_code_is_refused_by_github(api: Api, fake: FakeGitHub) -> None:
    fake.set_oauth_user("ada")
    authorize = await start_login(api)
    nonce = api.client.cookies[NONCE_COOKIE]
    callback = await authorize_at_github(authorize)
    fragment(await api.client.get(callback))
    api.client.cookies.set(NONCE_COOKIE, nonce, domain="test.local", path="/auth")
    assert signin_error(await api.client.get(callback)) == "scm_auth_failed"


async def test_denied_at_github(api: Api, fake: FakeGitHub) -> None:
    fake.set_oauth_user("ada", deny=True)
    callback = await authorize_at_github(await start_login(api))
    assert signin_error(await api.client.get(callback)) == "oauth_denied"


async def test_device_flow(api: Api, fake: FakeGitHub) -> None:
    fake.set_device_flow(interval_s=0)
    started = (await api.client.post("/auth/github/device")).json()
    assert started["verification_uri"] == f"{fake.url}/login/device"
    poll = {"device_code": started["device_code"], "name": "laptop"}
    pending = await api.client.post("/auth/github/device/token", json=poll)
    assert pending.status_code == 428
    assert pending.json()["error"]["code"] == "authorization_pending"
    fake.approve_device(started["user_code"], "ada")
    done = await api.client.post("/auth/github/device/token", json=poll)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["user"]["github_login"] == "ada"
    tokens = (await api.as_user(body["token"], "GET", "/api/tokens")).json()["tokens"]
    assert [(t["name"], t["kind"], t["expires_at"]) for t in tokens] == [("laptop", "cli", None)]

    # The allowlists apply to the device flow too.
    started = (await api.client.post("/auth/github/device")).json()
    fake.approve_device(started["user_code"], "eve")
    refused = await api.client.post(
        "/auth/github/device/token", json={"device_code": started["device_code"]}
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "sign_in_refused"

    started = (await api.client.post("/auth/github/device")).json()
    fake.deny_device(started["user_code"])
    denied = await api.client.post(
        "/auth/github/device/token", json={"device_code": started["device_code"]}
    )
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "access_denied")


async def test_device_flow_slow_down_and_expiry(api: Api, fake: FakeGitHub) -> None:
    fake.set_device_flow(interval_s=5)
    started = (await api.client.post("/auth/github/device")).json()
    poll = {"device_code": started["device_code"]}
    assert (await api.client.post("/auth/github/device/token", json=poll)).status_code == 428
    slow = await api.client.post("/auth/github/device/token", json=poll)
    assert (slow.status_code, slow.json()["error"]["code"]) == (429, "slow_down")
    assert slow.headers["retry-after"] == "10"

    fake.set_device_flow(interval_s=0, expires_s=0)
    started = (await api.client.post("/auth/github/device")).json()
    time.sleep(0.01)
    gone = await api.client.post(
        "/auth/github/device/token", json={"device_code": started["device_code"]}
    )
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "expired")


async def test_api_tokens(api: Api) -> None:
    web = fragment(await web_sign_in(api, "ada"))["token"]
    made = await api.as_user(web, "POST", "/api/tokens", json={"name": "ci", "expires_in_days": 30})
    assert made.status_code == 201
    created = made.json()
    token, info = created["token"], created["info"]
    assert token.startswith(info["prefix"]) and info["kind"] == "api"
    me = (await api.as_user(web, "GET", "/api/me")).json()
    assert (await api.as_user(token, "GET", "/api/me")).json()["id"] == me["id"]
    listed = (await api.as_user(web, "GET", "/api/tokens")).json()["tokens"]
    assert {t["name"] for t in listed} == {"web sign-in", "ci"}
    assert "token" not in listed[0]
    used = next(t for t in listed if t["name"] == "ci")
    assert used["last_used_at"] is not None

    # Someone else cannot revoke it (nor learn it exists); its owner and admins can.
    other = fragment(await web_sign_in(api, "orgy"))["token"]
    assert (await api.as_user(other, "DELETE", f"/api/tokens/{info['id']}")).status_code == 404
    assert (await api.as_user(web, "DELETE", f"/api/tokens/{info['id']}")).status_code == 204
    assert (await api.as_user(token, "GET", "/api/me")).status_code == 401
    assert (await api.as_user(web, "DELETE", f"/api/tokens/{info['id']}")).status_code == 404
    other_id = (await api.as_user(other, "GET", "/api/tokens")).json()["tokens"][0]["id"]
    assert (await api.admin("DELETE", f"/api/tokens/{other_id}")).status_code == 204
    assert (await api.as_user(other, "GET", "/api/me")).status_code == 401

    bad = await api.as_user(web, "POST", "/api/tokens", json={"name": "x", "expires_in_days": 0})
    assert bad.status_code == 422

    # An expired web token is refused.
    async with api.plane.store.engine.begin() as conn:
        await conn.execute(
            api_tokens.update()
            .where(api_tokens.c.kind == "web")
            .values(expires_at=sa.func.datetime("now", "-1 minute"))
        )
    expired = await api.as_user(web, "GET", "/api/me")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]

    # Logging out revokes the token of the request.
    cli = fragment(await web_sign_in(api, "ada"))["token"]
    assert (await api.as_user(cli, "POST", "/auth/logout")).status_code == 204
    assert (await api.as_user(cli, "GET", "/api/me")).status_code == 401


async def test_git_identity_can_be_changed_and_is_validated(api: Api) -> None:
    token = fragment(await web_sign_in(api, "ada"))["token"]
    ok = await api.as_user(
        token, "PATCH", "/api/me", json={"git_name": " Ada L. ", "git_email": "ada@acme.test"}
    )
    assert ok.status_code == 200
    assert (ok.json()["git_name"], ok.json()["git_email"]) == ("Ada L.", "ada@acme.test")
    for body in (
        {"git_email": "not an email"},
        {"git_email": "a@b"},
        {"git_name": "Eve <evil@x.test>"},
        {"git_name": "two\nlines"},
        {"git_name": ""},
    ):
        bad = await api.as_user(token, "PATCH", "/api/me", json=body)
        assert bad.status_code == 422, body
        assert bad.json()["error"]["code"] == "invalid_input"


async def test_users_and_roles_are_for_admins(api: Api) -> None:
    member = fragment(await web_sign_in(api, "ada"))["token"]
    assert (await api.as_user(member, "GET", "/api/users")).json()["error"]["code"] == "forbidden"
    listed = (await api.admin("GET", "/api/users")).json()["users"]
    ada = next(u for u in listed if u["github_login"] == "ada")
    promoted = await api.admin("PATCH", f"/api/users/{ada['id']}", json={"role": "admin"})
    assert promoted.json()["role"] == "admin"
    assert (await api.as_user(member, "GET", "/api/users")).status_code == 200
    me = (await api.admin("GET", "/api/me")).json()
    assert (await api.admin("PATCH", f"/api/users/{me['id']}", json={"role": "member"})).json()[
        "role"
    ] == "member"
    # Now ada is the only admin and cannot be demoted.
    last = await api.as_user(member, "PATCH", f"/api/users/{ada['id']}", json={"role": "member"})
    assert (last.status_code, last.json()["error"]["code"]) == (409, "conflict")
    # A later sign-in keeps the role an admin gave.
    again = fragment(await web_sign_in(api, "ada"))["token"]
    assert (await api.as_user(again, "GET", "/api/me")).json()["role"] == "admin"


async def test_providers(api: Api) -> None:
    providers = (await api.client.get("/auth/providers")).json()
    assert providers == {
        "providers": [
            {
                "id": "github",
                "name": "GitHub",
                "login_url": "/auth/github/login",
                "device_url": "/auth/github/device",
            }
        ],
        "token_login": True,
    }


async def test_without_github_sign_in_answers_not_configured(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path / "home")) as api:
        assert (await api.client.get("/auth/providers")).json()["providers"] == []
        for method, path in (("GET", "/auth/github/login"), ("POST", "/auth/github/device")):
            answer = await api.client.request(method, path)
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "not_configured"
            assert "OPENINSPECT_GITHUB__CLIENT_ID" in answer.json()["error"]["hint"]


async def test_allow_all_with_a_list_refuses_to_start(tmp_path: Path, fake: FakeGitHub) -> None:
    settings = settings_for(
        tmp_path / "home", fake.settings(), allow_all_users=True, allowed_users=["ada"]
    )
    with pytest.raises(Exception, match="allow_all_users"):
        async with running(settings, fake):
            pass


async def test_the_json_envelope_for_a_refused_browser_sign_in_is_pinned(api: Api) -> None:
    answer = await web_sign_in(api, "eve", accept="application/json")
    assert set(answer.json()) == {"error"}
    assert set(answer.json()["error"]) == {"code", "message", "hint"}
    assert answer.headers["cache-control"] == "no-store"
