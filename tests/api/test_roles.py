"""Roles at work: what members may start sessions on and see, and the GitHub access check at
session creation (against the fake GitHub, over real HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.store.tables import sessions
from openinspect.testing.github import FakeGitHub
from openinspect.testing.repos import make_sample_repo
from tests.api.signin_helpers import Api, fragment, running, settings_for, web_sign_in

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
READ_REPO = r"^/api/v3/repos/acme/(widgets|secret)$"


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    return make_sample_repo(root)


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        for login in ("ada", "bob", "root"):
            gh.add_user(login)
        gh.add_user("acme")
        gh.create_repo("acme/widgets", source=origin, private=False)
        gh.create_repo("acme/secret", source=origin, collaborators={"bob": "pull"})
        yield gh


@pytest.fixture
async def api(tmp_path: Path, fake: FakeGitHub) -> AsyncIterator[Api]:
    settings = settings_for(
        tmp_path / "home",
        fake.settings(access_cache_ttl_s=60),
        allowed_users=["ada", "bob", "root"],
        admin_users=["root"],
    )
    async with running(settings, fake) as opened:
        yield opened


async def _sessions(api: Api) -> int:
    async with api.plane.store.engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(sessions))).scalar_one()
        )


async def _token(api: Api, login: str) -> str:
    return fragment(await web_sign_in(api, login))["token"]


async def test_members_cannot_register_repos_or_use_local_paths(api: Api, origin: Path) -> None:
    ada = await _token(api, "ada")
    repo = {"name": "calc", "url": str(origin)}
    refused = await api.as_user(ada, "POST", "/api/repos", json=repo)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    for target in (str(origin), f"file://{origin}", "https://gitlab.example/acme/widgets"):
        local = await api.as_user(ada, "POST", "/api/sessions", json={"repo": target})
        assert local.status_code == 403, target
        assert local.json()["error"]["code"] == "forbidden"
        assert "register the repo" in local.json()["error"]["hint"]
    # Probing for paths tells a member nothing: a missing path is refused the same way.
    missing = await api.as_user(ada, "POST", "/api/sessions", json={"repo": "/no/such/dir"})
    assert missing.json()["error"]["code"] == "forbidden"
    assert await _sessions(api) == 0

    # The admin may; and a member may use the repo once an admin registered it.
    assert (await api.admin("POST", "/api/repos", json=repo)).status_code == 201
    assert (await api.admin("POST", "/api/sessions", json={"repo": str(origin)})).status_code == 201
    registered = await api.as_user(ada, "POST", "/api/sessions", json={"repo": "calc"})
    assert registered.status_code == 201, registered.text


async def test_members_see_only_their_sessions(api: Api, fake: FakeGitHub) -> None:
    ada, bob = await _token(api, "ada"), await _token(api, "bob")
    url = f"{fake.url}/acme/widgets"
    made = await api.as_user(ada, "POST", "/api/sessions", json={"repo": url})
    assert made.status_code == 201, made.text
    session_id = made.json()["session"]["id"]
    mine = (await api.as_user(ada, "GET", "/api/sessions")).json()["sessions"]
    assert [s["id"] for s in mine] == [session_id]
    assert (await api.as_user(bob, "GET", "/api/sessions")).json()["sessions"] == []
    for method, path in (
        ("GET", f"/api/sessions/{session_id}"),
        ("GET", f"/api/sessions/{session_id}/events"),
        ("POST", f"/api/sessions/{session_id}/ws-token"),
        ("POST", f"/api/sessions/{session_id}/stop"),
    ):
        hidden = await api.as_user(bob, method, path)
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "session_not_found")
    assert (await api.as_user(ada, "GET", f"/api/sessions/{session_id}")).status_code == 200
    everyone = (await api.admin("GET", "/api/sessions")).json()["sessions"]
    assert [s["id"] for s in everyone] == [session_id]
    assert (await api.admin("GET", f"/api/sessions/{session_id}")).status_code == 200


async def test_access_check_refuses_before_anything_is_created(api: Api, fake: FakeGitHub) -> None:
    ada = await _token(api, "ada")
    secret = f"{fake.url}/acme/secret"
    refused = await api.as_user(ada, "POST", "/api/sessions", json={"repo": secret, "prompt": "x"})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "repo_access_denied"
    assert error["message"] == "@ada cannot read acme/secret on GitHub"
    assert await _sessions(api) == 0
    mirrors = api.plane.settings.mirrors_dir
    assert not mirrors.exists() or not any(mirrors.iterdir())  # nothing was fetched either

    bob = await _token(api, "bob")
    allowed = await api.as_user(bob, "POST", "/api/sessions", json={"repo": secret})
    # bob may read it; the server itself has no credentials for this private repo here, so
    # creating fails later, at the clone, but not at the access check.
    assert allowed.status_code == 201 or allowed.json()["error"]["code"] == "repo_unusable"


async def test_access_results_are_cached(api: Api, fake: FakeGitHub) -> None:
    ada = await _token(api, "ada")
    url = f"{fake.url}/acme/widgets"
    fake.clear_requests()
    for _ in range(2):
        made = await api.as_user(ada, "POST", "/api/sessions", json={"repo": url})
        assert made.status_code == 201, made.text
    checks = [r for r in fake.requests_to("GET", READ_REPO) if r.auth == "user"]
    assert len(checks) == 1 and checks[0].login == "ada"

    secret = f"{fake.url}/acme/secret"
    fake.clear_requests()
    for _ in range(2):
        denied = await api.as_user(ada, "POST", "/api/sessions", json={"repo": secret})
        assert denied.json()["error"]["code"] == "repo_access_denied"
    assert len([r for r in fake.requests_to("GET", READ_REPO) if r.auth == "user"]) == 1
    assert await _sessions(api) == 2


async def test_someone_without_a_github_identity_is_told_to_sign_in(
    api: Api, fake: FakeGitHub
) -> None:
    url = f"{fake.url}/acme/widgets"
    refused = await api.admin("POST", "/api/sessions", json={"repo": url})
    assert refused.json()["error"]["code"] == "repo_access_denied"
    assert "no GitHub identity" in refused.json()["error"]["message"]
    assert "Sign in with GitHub" in refused.json()["error"]["hint"]


async def test_the_check_can_be_switched_off(tmp_path: Path, fake: FakeGitHub) -> None:
    settings = settings_for(
        tmp_path / "home2", fake.settings(access_check=False), allowed_users=["ada"]
    )
    async with running(settings, fake) as api:
        url = f"{fake.url}/acme/widgets"
        fake.clear_requests()
        made = await api.admin("POST", "/api/sessions", json={"repo": url})
        assert made.status_code == 201, made.text
        assert [r for r in fake.requests_to("GET", READ_REPO) if r.auth == "user"] == []
