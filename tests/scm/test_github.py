"""``scm.github.GitHub`` through githubkit against the fake GitHub, over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from githubkit.exception import RequestError, RequestTimeout
from pydantic import SecretStr

from openinspect.errors import (
    ConfigError,
    NotConfigured,
    ScmAuthFailed,
    ScmError,
    ScmNotFound,
    ScmRateLimited,
    ScmUnavailable,
)
from openinspect.scm.base import RepoRef, ReviewComment, UserEmail
from openinspect.scm.github import GitHub
from openinspect.scm.github_errors import map_github_error
from openinspect.settings import GitHubSettings
from openinspect.testing.github import FakeGitHub
from tests.scm.conftest import REF, REPO

MINT = r"/app/installations/\d+/access_tokens$"


def mints(fake: FakeGitHub) -> int:
    return len(fake.requests_to("POST", MINT))


# ---------------------------------------------------------------------- the App


@pytest.mark.parametrize("key_format", ["pkcs1", "pkcs8"])
async def test_installation_token_with_either_pem_format(fake: FakeGitHub, key_format: str) -> None:
    pem = fake.app_private_key_pem(key_format)  # type: ignore[arg-type]
    assert ("BEGIN RSA PRIVATE KEY" in pem) == (key_format == "pkcs1")
    assert ("BEGIN PRIVATE KEY" in pem) == (key_format == "pkcs8")
    async with GitHub(fake.settings(app_private_key=SecretStr(pem))) as gh:
        token = await gh.installation_token(REF)
    assert token.token.startswith("ghs_")
    assert 3500 < token.seconds_left() <= 3600
    assert token.token not in repr(token)
    # The App JWT found the installation, then minted a token scoped to the one repository.
    calls = [(r.method, r.auth) for r in fake.requests if r.surface == "api"]
    assert calls == [("GET", "app"), ("POST", "app")]
    assert fake.state.data.installation_tokens[token.token].repos == ["acme/widgets"]


async def test_private_key_from_a_file(fake: FakeGitHub, tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text(fake.app_private_key_pem("pkcs8"))
    settings = fake.settings(app_private_key=None, app_private_key_path=key)
    async with GitHub(settings) as gh:
        assert (await gh.installation_token(REF)).token.startswith("ghs_")


async def test_tokens_are_cached_and_the_installation_looked_up_once(
    fake: FakeGitHub, github: GitHub
) -> None:
    first = await github.installation_token(REF)
    assert (await github.installation_token(REF)).token == first.token
    assert mints(fake) == 1
    assert len(fake.requests_to("GET", r"/repos/acme/widgets/installation$")) == 1


async def test_a_token_closer_to_expiry_than_the_margin_is_replaced(fake: FakeGitHub) -> None:
    fake.set_installation_token_ttl(120)  # GitHub's are an hour; the margin here is 5 minutes
    async with GitHub(fake.settings(token_refresh_margin_s=300)) as gh:
        first = await gh.installation_token(REF)
        second = await gh.installation_token(REF)
    assert first.token != second.token
    assert mints(fake) == 2


async def test_concurrent_callers_share_one_mint(fake: FakeGitHub, github: GitHub) -> None:
    tokens = await asyncio.gather(*(github.installation_token(REF) for _ in range(8)))
    assert len({t.token for t in tokens}) == 1
    assert mints(fake) == 1


async def test_configured_installation_id_skips_the_lookup(fake: FakeGitHub) -> None:
    inst = next(iter(fake.state.data.installations))
    async with GitHub(fake.settings(installation_id=inst)) as gh:
        await gh.installation_token(REF)
    assert fake.requests_to("GET", "/installation$") == []


async def test_installation_repos(fake: FakeGitHub, github: GitHub) -> None:
    fake.create_repo("acme/gadgets")
    fake.add_installation(["acme/gadgets"])
    fake.create_repo("acme/secret")  # not installed
    assert await github.installation_repos() == [
        RepoRef("acme", "gadgets"),
        RepoRef("acme", "widgets"),
    ]


async def test_installation_repos_follows_pagination(fake: FakeGitHub) -> None:
    names = [f"acme/r{i:03}" for i in range(101)]  # our client asks for 100 a page
    for name in names:
        fake.create_repo(name)
    inst = fake.add_installation(names)
    async with GitHub(fake.settings(installation_id=inst)) as gh:
        repos = await gh.installation_repos()
    assert [r.slug for r in repos] == names
    assert len(fake.requests_to("GET", "/installation/repositories$")) == 2


async def test_not_installed_is_scm_not_found_saying_so(fake: FakeGitHub, github: GitHub) -> None:
    fake.create_repo("acme/elsewhere")
    with pytest.raises(ScmNotFound, match="not installed on acme/elsewhere") as info:
        await github.installation_token(RepoRef("acme", "elsewhere"))
    assert "Not Found" in info.value.message  # GitHub's own message is kept
    assert isinstance(info.value.__cause__, ScmNotFound)


async def test_a_key_that_is_not_the_apps_is_scm_auth_failed(fake: FakeGitHub) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    async with GitHub(fake.settings(app_private_key=SecretStr(pem))) as gh:
        with pytest.raises(ScmAuthFailed, match="A JSON web token could not be decoded") as info:
            await gh.installation_token(REF)
    assert info.value.status == 502
    assert info.value.details["github_status"] == 401
    assert info.value.__cause__ is not None


async def test_a_wrong_app_id_is_scm_auth_failed(fake: FakeGitHub) -> None:
    async with GitHub(fake.settings(app_id=4242)) as gh:
        with pytest.raises(ScmAuthFailed, match="Integration not found"):
            await gh.installation_token(REF)


async def test_an_unreadable_or_non_rsa_key_is_a_config_error(fake: FakeGitHub) -> None:
    async with GitHub(fake.settings(app_private_key=SecretStr("not a key"))) as gh:
        with pytest.raises(ConfigError, match="cannot be read"):
            await gh.installation_token(REF)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    async with GitHub(fake.settings(app_private_key=SecretStr(ec_pem))) as gh:
        with pytest.raises(ConfigError, match="must be an RSA key"):
            await gh.installation_token(REF)


async def test_without_an_app_it_is_not_configured(fake: FakeGitHub) -> None:
    async with GitHub(GitHubSettings(web_url=fake.url)) as gh:
        with pytest.raises(NotConfigured, match="App is not configured") as info:
            await gh.installation_token(REF)
    assert "OPENINSPECT_GITHUB__APP_ID" in (info.value.hint or "")


# ---------------------------------------------------------------------- users


async def test_user_identity_emails_and_orgs(fake: FakeGitHub, github: GitHub) -> None:
    token = fake.user_token("alice")
    user = await github.get_user(token)
    assert (user.login, user.name, user.email) == ("alice", "Alice Liddell", "alice@acme.test")
    assert user.id == fake.state.require_user("alice").id
    assert await github.user_emails(token) == [UserEmail("alice@acme.test", True, True)]
    assert await github.user_orgs(token) == ["acme"]
    bob = fake.user_token("bob")
    assert await github.user_emails(bob) == [UserEmail("bob@else.test", False, True)]
    assert await github.user_orgs(bob) == []


async def test_user_can_read(fake: FakeGitHub, github: GitHub) -> None:
    alice, bob = fake.user_token("alice"), fake.user_token("bob")
    assert await github.user_can_read(alice, REF) is True
    assert await github.user_can_read(bob, REF) is False  # private, and bob is no collaborator
    assert await github.user_can_read(alice, RepoRef("acme", "missing")) is False
    fake.create_repo("acme/open", private=False)
    assert await github.user_can_read(bob, RepoRef("acme", "open")) is True
    # The check is made with the user's own token, never the App's.
    checks = fake.requests_to("GET", r"^/api/v3/repos/acme/(widgets|missing|open)$")
    assert {r.auth for r in checks} == {"user"}
    assert [r.login for r in checks] == ["alice", "bob", "alice", "bob"]


async def test_a_dead_user_token_is_scm_auth_failed(fake: FakeGitHub, github: GitHub) -> None:
    token = fake.user_token("alice")
    fake.expire_user_token(token)
    with pytest.raises(ScmAuthFailed, match="Bad credentials"):
        await github.user_can_read(token, REF)
    with pytest.raises(ScmAuthFailed, match="Bad credentials"):
        await github.get_user("gho_" + "x" * 36)


async def test_an_installation_token_is_not_a_user(fake: FakeGitHub, github: GitHub) -> None:
    token = await github.installation_token(REF)
    with pytest.raises(ScmError, match="Resource not accessible by integration") as info:
        await github.get_user(token.token)
    assert info.value.details["github_status"] == 403


# ---------------------------------------------------------------------- pull requests


async def test_pull_request_as_the_user(fake: FakeGitHub, github: GitHub) -> None:
    fake.commit(REPO, "openinspect/s1")
    alice = fake.user_token("alice")
    pull = await github.create_pull(
        REF,
        head="openinspect/s1",
        base="main",
        title="Fix add",
        body="It added.",
        draft=True,
        user_token=alice,
    )
    assert (pull.number, pull.state, pull.draft, pull.author_login) == (1, "open", True, "alice")
    assert (pull.head, pull.base, pull.title, pull.body) == (
        "openinspect/s1",
        "main",
        "Fix add",
        "It added.",
    )
    assert pull.url == f"{fake.url}/acme/widgets/pull/1"
    assert httpx.get(pull.url).status_code == 200
    [opened] = fake.requests_to("POST", "/pulls$")
    assert (opened.auth, opened.login) == ("user", "alice")

    assert await github.find_pull(REF, "openinspect/s1") == pull
    assert await github.find_pull(REF, "openinspect/other") is None
    updated = await github.update_pull(REF, 1, body="It added, now it sums.", user_token=alice)
    assert (updated.title, updated.body) == ("Fix add", "It added, now it sums.")
    assert (await github.get_pull(REF, 1)).body == "It added, now it sums."

    fake.merge_pull(REPO, 1)
    assert (await github.get_pull(REF, 1)).state == "merged"
    assert (await github.find_pull(REF, "openinspect/s1", token=alice)).state == "merged"  # type: ignore[union-attr]


async def test_pull_request_as_the_app_without_a_user_token(
    fake: FakeGitHub, github: GitHub
) -> None:
    fake.commit(REPO, "openinspect/s2")
    pull = await github.create_pull(REF, head="openinspect/s2", base="main", title="T", body="B")
    assert pull.author_login == "openinspect-fake[bot]"
    [opened] = fake.requests_to("POST", "/pulls$")
    assert opened.auth == "installation"


async def test_one_open_pull_per_branch(fake: FakeGitHub, github: GitHub) -> None:
    fake.commit(REPO, "feature")
    await github.create_pull(REF, head="feature", base="main", title="A", body="")
    with pytest.raises(ScmError, match="A pull request already exists for acme:feature") as info:
        await github.create_pull(REF, head="feature", base="main", title="B", body="")
    assert info.value.details["github_status"] == 422
    fake.close_pull(REPO, 1)
    second = await github.create_pull(REF, head="feature", base="main", title="B", body="")
    assert second.number == 2
    assert (await github.find_pull(REF, "feature")) == second  # the open one wins
    fake.close_pull(REPO, 2)
    assert (await github.find_pull(REF, "feature")).number == 2  # type: ignore[union-attr]


async def test_pull_request_needs_the_head_branch(github: GitHub) -> None:
    with pytest.raises(ScmError, match="Validation Failed: head is invalid"):
        await github.create_pull(REF, head="nope", base="main", title="T", body="")
    with pytest.raises(ScmError, match="No commits between main and main"):
        await github.create_pull(REF, head="main", base="main", title="T", body="")


async def test_a_missing_pull_is_scm_not_found_with_githubs_message(github: GitHub) -> None:
    with pytest.raises(
        ScmNotFound, match=r"getting PR #99 of acme/widgets \(HTTP 404\): Not Found"
    ):
        await github.get_pull(REF, 99)


async def test_review_and_comment_as_the_app(fake: FakeGitHub, github: GitHub) -> None:
    fixed = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n'
    fake.commit(REPO, "feature", {"calc.py": fixed}, by="alice")
    alice = fake.user_token("alice")
    await github.create_pull(REF, head="feature", base="main", title="T", body="", user_token=alice)
    review = await github.create_review(
        REF, 1, "Two notes.", "REQUEST_CHANGES", [ReviewComment("calc.py", "Use +", line=3)]
    )
    comment = await github.create_issue_comment(REF, 1, "Thanks!")
    assert review.url.endswith(f"/acme/widgets/pull/1#pullrequestreview-{review.id}")
    assert comment.url.endswith(f"/acme/widgets/pull/1#issuecomment-{comment.id}")
    pull = fake.pull(REPO, 1)
    [stored] = pull.reviews
    assert (stored.state, stored.body, stored.user_login) == (
        "CHANGES_REQUESTED",
        "Two notes.",
        "openinspect-fake[bot]",
    )
    [inline] = pull.review_comments
    assert (inline.path, inline.line, inline.side, inline.body, inline.review_id) == (
        "calc.py",
        3,
        "RIGHT",
        "Use +",
        stored.id,
    )
    assert [c.body for c in pull.comments] == ["Thanks!"]


# ---------------------------------------------------------------------- error mapping


async def test_rate_limit_says_when_it_resets(fake: FakeGitHub, github: GitHub) -> None:
    reset = int(time.time()) + 120
    fake.inject_failure(
        "/repos/acme/widgets$",
        403,
        "API rate limit exceeded for user ID 1001.",
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )
    with pytest.raises(ScmRateLimited, match="API rate limit exceeded") as info:
        await github.user_can_read(fake.user_token("alice"), REF)
    assert "resets at" in info.value.message
    assert "(in 1" in info.value.message  # ~120 s


async def test_secondary_rate_limit_says_when_to_retry(fake: FakeGitHub, github: GitHub) -> None:
    fake.inject_failure(
        "/user$", 429, "You have exceeded a secondary rate limit.", headers={"Retry-After": "30"}
    )
    with pytest.raises(ScmRateLimited, match="retry after 30 s"):
        await github.get_user(fake.user_token("alice"))


async def test_server_errors_are_unavailable(fake: FakeGitHub, github: GitHub) -> None:
    fake.inject_failure("/pulls/1$", 502, "Server Error")
    with pytest.raises(ScmUnavailable, match="HTTP 502"):
        await github.get_pull(REF, 1)


async def test_one_server_error_is_retried(fake: FakeGitHub) -> None:
    fake.inject_failure("/user$", 503, "Unavailable")
    async with GitHub(fake.settings()) as gh:  # retry_server_errors defaults to on
        assert (await gh.get_user(fake.user_token("bob"))).login == "bob"
    assert [r.status for r in fake.requests_to("GET", "/user$")] == [503, 200]


async def test_an_unreachable_github_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = GitHubSettings(web_url=f"http://127.0.0.1:{port}", request_timeout_s=5)
    async with GitHub(settings) as gh:
        with pytest.raises(
            ScmUnavailable, match=f"Cannot reach GitHub at http://127.0.0.1:{port}/api/v3"
        ):
            await gh.get_user("gho_x")


def test_timeouts_and_odd_failures_map_to_the_tree() -> None:
    request = httpx.Request("GET", "https://api.github.com/user")
    timeout = RequestTimeout(httpx.ReadTimeout("slow", request=request))
    assert isinstance(map_github_error(timeout, "getting a user", "API"), ScmUnavailable)
    unknown = map_github_error(RequestError(ValueError("no")), "getting a user", "API")
    assert type(unknown) is ScmAuthFailed  # raised while preparing the request: the key
    assert type(map_github_error(KeyError("x"), "x", "API")) is ScmError
