"""Sign-in through ``GitHub``: the OAuth web flow, token refresh and the device flow, against
the fake's OAuth endpoints."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from openinspect.errors import NotConfigured, ScmAuthFailed, ScmError, SignInCodeInvalid
from openinspect.scm.github import GitHub
from openinspect.settings import GitHubSettings
from openinspect.testing.github import FakeGitHub

CALLBACK = "http://127.0.0.1:9/auth/github/callback"


def sign_in_at_github(url: str) -> dict[str, str]:
    """What the browser does: open the authorize page, follow GitHub's redirect to us."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_web_flow(fake: FakeGitHub, github: GitHub) -> None:
    fake.set_oauth_user("alice")
    url = github.authorize_url("st4te", CALLBACK)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{fake.url}/login/oauth/authorize?")
    assert query["client_id"] == [fake.client_id]
    assert query["redirect_uri"] == [CALLBACK]
    back = sign_in_at_github(url)
    assert back["state"] == "st4te"
    token = await github.exchange_code(back["code"], CALLBACK)
    assert token.access_token.startswith("ghu_")
    assert token.expires_at is not None
    assert token.refresh_token is not None
    assert token.refresh_expires_at is not None
    assert token.access_token not in repr(token)
    assert (await github.get_user(token.access_token)).login == "alice"
    # A code works once.
    with pytest.raises(ScmAuthFailed, match="incorrect or expired") as info:
        await github.exchange_code(back["code"], CALLBACK)
    assert "bad_verification_code" in info.value.message
    assert [r.surface for r in fake.requests_to("POST", "/login/oauth/access_token")] == [
        "oauth",
        "oauth",
    ]


async def test_the_redirect_uri_must_match(fake: FakeGitHub, github: GitHub) -> None:
    fake.set_oauth_user("alice")
    back = sign_in_at_github(github.authorize_url("s", CALLBACK))
    with pytest.raises(ScmError, match="redirect_uri_mismatch") as info:
        await github.exchange_code(back["code"], CALLBACK + "/other")
    assert "callback URL" in (info.value.hint or "")


async def test_the_person_can_refuse(fake: FakeGitHub, github: GitHub) -> None:
    fake.set_oauth_user("alice", deny=True)
    back = sign_in_at_github(github.authorize_url("s", CALLBACK))
    assert back["error"] == "access_denied"
    assert back["state"] == "s"
    assert "code" not in back


async def test_the_authorize_page_lists_users_when_nobody_is_signed_in(
    fake: FakeGitHub, github: GitHub
) -> None:
    page = httpx.get(github.authorize_url("s", CALLBACK))
    assert page.status_code == 200
    assert "Sign in as alice" in page.text
    assert "Sign in as bob" in page.text


async def test_refresh_rotates_the_token(fake: FakeGitHub, github: GitHub) -> None:
    fake.set_oauth_user("bob")
    back = sign_in_at_github(github.authorize_url("s", CALLBACK))
    first = await github.exchange_code(back["code"], CALLBACK)
    assert first.refresh_token is not None
    second = await github.refresh_user_token(first.refresh_token)
    assert second.access_token != first.access_token
    assert (await github.get_user(second.access_token)).login == "bob"
    with pytest.raises(ScmAuthFailed, match="Bad credentials"):
        await github.get_user(first.access_token)
    with pytest.raises(ScmAuthFailed, match="bad_refresh_token"):
        await github.refresh_user_token(first.refresh_token)


async def test_non_expiring_tokens_have_no_refresh_token(fake: FakeGitHub, github: GitHub) -> None:
    fake.set_user_token_ttl(None)
    fake.set_oauth_user("alice")
    back = sign_in_at_github(github.authorize_url("s", CALLBACK))
    token = await github.exchange_code(back["code"], CALLBACK)
    assert token.access_token.startswith("gho_")
    assert (token.expires_at, token.refresh_token) == (None, None)


async def test_a_wrong_client_secret_is_scm_auth_failed(fake: FakeGitHub) -> None:
    fake.set_oauth_user("alice")
    async with GitHub(fake.settings(client_secret=SecretStr("wrong"))) as gh:
        back = sign_in_at_github(gh.authorize_url("s", CALLBACK))
        with pytest.raises(ScmAuthFailed, match="incorrect_client_credentials") as info:
            await gh.exchange_code(back["code"], CALLBACK)
    assert "CLIENT_SECRET" in (info.value.hint or "")


async def test_device_flow(fake: FakeGitHub, github: GitHub) -> None:
    fake.set_device_flow(interval_s=0)
    code = await github.start_device_flow()
    assert code.verification_uri == f"{fake.url}/login/device"
    assert len(code.user_code) == 9
    assert code.expires_in_s == 900
    assert (await github.poll_device_flow(code.device_code)).status == "pending"
    fake.approve_device(code.user_code, "alice")
    done = await github.poll_device_flow(code.device_code)
    assert done.status == "ok"
    assert done.token is not None
    assert (await github.get_user(done.token.access_token)).login == "alice"
    with pytest.raises(SignInCodeInvalid, match="incorrect_device_code"):  # a 4xx: client input
        await github.poll_device_flow(code.device_code)  # a device code gives one token


async def test_device_flow_slow_down_denied_and_expired(fake: FakeGitHub, github: GitHub) -> None:
    fake.set_device_flow(interval_s=30)
    code = await github.start_device_flow()
    assert code.interval_s == 30
    assert (await github.poll_device_flow(code.device_code)).status == "pending"
    slow = await github.poll_device_flow(code.device_code)  # polled again at once
    assert (slow.status, slow.interval_s) == ("slow_down", 35)
    fake.set_device_flow(interval_s=0)
    denied = await github.start_device_flow()
    fake.deny_device(denied.user_code)
    assert (await github.poll_device_flow(denied.device_code)).status == "denied"
    fake.set_device_flow(expires_s=0)
    expired = await github.start_device_flow()
    assert (await github.poll_device_flow(expired.device_code)).status == "expired"


async def test_oauth_not_configured(fake: FakeGitHub) -> None:
    async with GitHub(GitHubSettings(web_url=fake.url)) as gh:
        with pytest.raises(NotConfigured, match="sign-in is not configured") as info:
            gh.authorize_url("s", CALLBACK)
        assert "OPENINSPECT_GITHUB__CLIENT_ID" in (info.value.hint or "")
        with pytest.raises(NotConfigured):
            await gh.start_device_flow()
        with pytest.raises(NotConfigured):
            await gh.exchange_code("c", CALLBACK)


async def test_a_web_url_that_is_not_github_says_so(fake: FakeGitHub) -> None:
    settings = fake.settings(web_url=f"{fake.url}/api/v3")
    async with GitHub(settings) as gh:
        with pytest.raises(ScmError, match="/login/device/code"):
            await gh.start_device_flow()
