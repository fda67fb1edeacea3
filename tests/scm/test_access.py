"""The repo access check and users' OAuth tokens (refresh, expiry), against the fake GitHub."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from openinspect.domain.models import User
from openinspect.errors import RepoAccessDenied
from openinspect.scm.access import AccessChecker
from openinspect.scm.base import RepoRef
from openinspect.scm.github import GitHub
from openinspect.scm.user_tokens import UserTokens, stored
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.identities import NewUser
from openinspect.testing.github import FakeGitHub

SECRET = RepoRef("acme", "secret")
READ = r"^/api/v3/repos/acme/secret$"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_user("ada")
        gh.add_user("bob")
        gh.add_user("acme")
        gh.create_repo("acme/secret", collaborators={"bob": "pull"})
        yield gh


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", sealer=Sealer(os.urandom(32))
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def github(fake: FakeGitHub) -> AsyncIterator[GitHub]:
    async with GitHub(fake.settings()) as gh:
        yield gh


async def _signed_in(store: Store, github: GitHub, fake: FakeGitHub, login: str) -> User:
    """A user who signed in with GitHub: their identity and a real token of the fake."""
    fake.set_oauth_user(login)
    token = await github.exchange_code(await _code(fake), "http://test/cb")
    rec = fake.state.require_user(login)
    signed = await store.identities.sign_in(
        provider="github",
        subject=str(rec.id),
        login=login,
        avatar_url=None,
        tokens=stored(token),
        new_user=NewUser(login, f"{login}@x.test", login, f"{login}@x.test", "member"),
        make_admin=False,
    )
    return signed.user


async def _code(fake: FakeGitHub) -> str:
    url = f"{fake.url}/login/oauth/authorize?client_id={fake.client_id}&redirect_uri=http://test/cb"
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    return httpx.URL(answer.headers["location"]).params["code"]


async def test_checks_are_cached_for_the_ttl(
    store: Store, github: GitHub, fake: FakeGitHub
) -> None:
    ada, bob = (
        await _signed_in(store, github, fake, "ada"),
        await _signed_in(store, github, fake, "bob"),
    )
    clock = Clock()
    checker = AccessChecker(github, UserTokens(store, github), store, ttl_s=60, clock=clock)
    fake.clear_requests()
    await checker.check(bob, SECRET)
    for _ in range(2):
        with pytest.raises(RepoAccessDenied, match="@ada cannot read acme/secret on GitHub"):
            await checker.check(ada, SECRET)
    await checker.check(bob, SECRET)
    assert [r.login for r in fake.requests_to("GET", READ)] == ["bob", "ada"]
    clock.now += 61
    await checker.check(bob, SECRET)
    assert len(fake.requests_to("GET", READ)) == 3


async def test_an_expired_token_is_refreshed_and_a_dead_one_forgotten(
    store: Store, github: GitHub, fake: FakeGitHub
) -> None:
    fake.set_user_token_ttl(30)  # inside the refresh margin: the next use refreshes it
    bob = await _signed_in(store, github, fake, "bob")
    tokens = UserTokens(store, github)
    before = await store.identities.tokens(bob.id, "github")
    assert before is not None
    fresh = await tokens.github_token(bob.id)
    assert fresh is not None and fresh != before.access_token
    after = await store.identities.tokens(bob.id, "github")
    assert after is not None and after.access_token == fresh
    assert after.refresh_token != before.refresh_token
    checker = AccessChecker(github, tokens, store, ttl_s=60)
    await checker.check(bob, SECRET)

    # The refresh token was spent: a stale copy of it cannot be refreshed, so the user must
    # sign in again, and their tokens are forgotten.
    await store.identities.set_tokens(bob.id, "github", before)
    assert await tokens.github_token(bob.id) is None
    assert await store.identities.tokens(bob.id, "github") is None
    with pytest.raises(RepoAccessDenied, match="has expired") as denied:
        await AccessChecker(github, tokens, store, ttl_s=60).check(bob, SECRET)
    assert denied.value.hint is not None and "Sign in with GitHub" in denied.value.hint


async def test_a_token_github_no_longer_accepts(
    store: Store, github: GitHub, fake: FakeGitHub
) -> None:
    fake.set_user_token_ttl(None)
    bob = await _signed_in(store, github, fake, "bob")
    current = await store.identities.tokens(bob.id, "github")
    assert current is not None and current.expires_at is None
    fake.expire_user_token(current.access_token)  # revoked on GitHub's side
    with pytest.raises(RepoAccessDenied, match="no longer accepts"):
        await AccessChecker(github, UserTokens(store, github), store, ttl_s=60).check(bob, SECRET)
    assert await store.identities.tokens(bob.id, "github") is None


async def test_no_identity(store: Store, github: GitHub) -> None:
    admin = await store.users.create(name="Root", email="r@x.test", role="admin")
    with pytest.raises(RepoAccessDenied, match="no GitHub identity"):
        await AccessChecker(github, UserTokens(store, github), store, ttl_s=60).check(admin, SECRET)
