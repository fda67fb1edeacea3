"""The hostile client at the REST API (issue 8 item 10): every malformed input gets its
documented 4xx with the error envelope's stable code, never a 5xx, and no answer names a server
path (the home, the mirrors, the temp dirs). In process through the ASGI app, with real SQLite,
real git and the fake GitHub over real HTTP; one test goes over a real socket (uvicorn)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from openinspect.api.app import create_app
from openinspect.api.auth import ADMIN_TOKEN_FILE
from openinspect.api.limits import BODY_MAX_BYTES
from openinspect.settings import SessionSettings
from openinspect.store.tables import sessions
from openinspect.testing.github import FakeGitHub
from openinspect.testing.repos import make_sample_repo
from tests.api.signin_helpers import Api, running, settings_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PROMPT_LIMIT = 50


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    return make_sample_repo(tmp_path / "src")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = settings_for(tmp_path / "home").model_copy(
        update={"sessions": SessionSettings(max_prompt_chars=PROMPT_LIMIT)}
    )
    async with running(settings) as opened:
        yield opened


def refused(response: httpx.Response, status: int, code: str, *paths: Path) -> dict[str, Any]:
    """The answer is ``status`` with the envelope's ``code``, and names none of ``paths``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    for path in paths:
        assert str(path) not in response.text, f"{path} leaked: {response.text}"
    error: dict[str, Any] = body["error"]
    return error


async def _session_count(api: Api) -> int:
    async with api.plane.store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(sessions)
        return int((await conn.execute(query)).scalar_one())


async def _member(api: Api) -> str:
    store = api.plane.store
    user = await store.users.create(name="Mallory", email="m@example.com", role="member")
    return await store.users.create_token(user.id, "hostile")


async def test_unusable_repo_urls_are_422_with_a_hint_and_no_server_paths(
    api: Api, tmp_path: Path
) -> None:
    home = api.plane.settings.home_dir
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    for repo in ("http://127.0.0.1:9/nothing.git", str(plain), "file:///no/such/repo.git"):
        error = refused(
            await api.admin("POST", "/api/sessions", json={"repo": repo}),
            422,
            "repo_unusable",
            home,
            Path.home(),
        )
        assert error["hint"], repo
    assert await _session_count(api) == 0
    # A registered repo whose origin went away answers the same way.
    gone = make_sample_repo(_mkdir(tmp_path / "gone"))
    assert (
        await api.admin("POST", "/api/repos", json={"name": "gone", "url": str(gone)})
    ).is_success
    subprocess.run(["rm", "-rf", str(gone)], check=True)
    refused(
        await api.admin("POST", "/api/sessions", json={"repo": "gone"}), 422, "repo_unusable", home
    )


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


async def test_option_like_values_are_refused_before_git_sees_them(
    api: Api, origin: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    injections = (
        f"--upload-pack=touch {marker};://x",
        f"-u touch {marker} ://x",
        "--help",
    )
    for repo in injections:
        refused(await api.admin("POST", "/api/sessions", json={"repo": repo}), 422, "invalid_input")
        register = {"name": "evil", "url": repo}
        refused(await api.admin("POST", "/api/repos", json=register), 422, "invalid_input")
    for branch in ("-b", "--orphan=x", "--upload-pack=x"):
        create = {"repo": str(origin), "base_branch": branch}
        refused(await api.admin("POST", "/api/sessions", json=create), 422, "invalid_input")
        register = {"name": "calc", "url": str(origin), "default_branch": branch}
        refused(await api.admin("POST", "/api/repos", json=register), 422, "invalid_input")
    assert not marker.exists()
    assert await _session_count(api) == 0


async def test_out_of_range_numbers_are_422(api: Api, origin: Path) -> None:
    created = await api.admin("POST", "/api/sessions", json={"repo": str(origin)})
    session_id = created.json()["session"]["id"]
    events = f"/api/sessions/{session_id}/events"
    for params in (
        {"after_seq": 10**30},
        {"before_seq": 10**30},
        {"after_seq": 2**63},
        {"after_seq": -1},
        {"before_seq": 0},
        {"limit": -1},
        {"limit": 10**30},
        {"after_seq": "1e400"},
    ):
        refused(await api.admin("GET", events, params=params), 422, "invalid_input")
    # The largest number the document allows is answered, not overflowed.
    largest = await api.admin("GET", events, params={"after_seq": 2**63 - 1})
    assert largest.status_code == 200 and largest.json()["events"] == []
    for params in ({"limit": -1}, {"limit": 10**30}, {"mine": "perhaps"}):
        refused(await api.admin("GET", "/api/sessions", params=params), 422, "invalid_input")
    for days in (10**30, -1, 0, 1.5):
        token = {"name": "t", "expires_in_days": days}
        refused(await api.admin("POST", "/api/tokens", json=token), 422, "invalid_input")


async def test_oversize_bodies_are_413_declared_or_chunked(api: Api) -> None:
    big = b'{"repo": "' + b"x" * BODY_MAX_BYTES + b'"}'
    declared = await api.admin(
        "POST", "/api/sessions", content=big, headers={"Content-Type": "application/json"}
    )
    refused(declared, 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent in pieces
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    chunked = await api.admin(
        "POST", "/api/sessions", content=chunks(), headers={"Content-Type": "application/json"}
    )
    refused(chunked, 413, "payload_too_large")
    # A small chunked body still goes through.

    async def small() -> AsyncIterator[bytes]:
        yield b'{"repo": '
        yield b'"/no/such/repo"}'

    answer = await api.admin(
        "POST", "/api/sessions", content=small(), headers={"Content-Type": "application/json"}
    )
    refused(answer, 422, "invalid_input")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The public app over a real socket on 127.0.0.1, with its own lifespan."""
    app = create_app(settings_for(tmp_path / "served"))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    import threading

    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),))
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        loop.close()


def test_chunked_oversize_over_real_http_is_413_and_the_connection_survives(
    served: str, tmp_path: Path
) -> None:
    token = (tmp_path / "served" / ADMIN_TOKEN_FILE).read_text().strip()

    def chunks() -> Iterator[bytes]:
        yield b'{"repo": "'
        for _ in range(BODY_MAX_BYTES // (256 * 1024) + 2):
            yield b"x" * (256 * 1024)
        yield b'"}'

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=served, timeout=30) as client:
        answer = client.post("/api/sessions", content=chunks(), headers=headers)
        assert answer.request.headers.get("transfer-encoding") == "chunked"
        refused(answer, 413, "payload_too_large")
        # The server keeps answering afterwards.
        assert client.get("/healthz").status_code == 200


async def test_wrong_methods_are_405_with_allow(api: Api) -> None:
    for method, path, allowed in (
        ("DELETE", "/api/repos", {"GET", "HEAD", "POST"}),
        ("PUT", "/api/sessions", {"GET", "HEAD", "POST"}),
        ("DELETE", "/api/sessions/ses_x", {"GET", "HEAD", "PATCH"}),
        ("GET", "/api/sessions/ses_x/prompts", {"POST"}),
        ("PATCH", "/api/tokens", {"GET", "HEAD", "POST"}),
        ("GET", "/auth/logout", {"POST"}),
        ("PUT", "/webhooks/github", {"POST"}),
    ):
        answer = await api.admin(method, path)
        refused(answer, 405, "method_not_allowed")
        assert set(answer.headers["allow"].replace(" ", "").split(",")) == allowed, path
    # Unknown API paths stay 404, and the web app's pages still answer GET.
    refused(await api.admin("DELETE", "/api/nothing-here"), 404, "not_found")
    assert (await api.client.get("/")).status_code == 200


async def test_features_that_are_not_configured_are_404_not_configured(
    api: Api, origin: Path
) -> None:
    for method, path, body in (
        ("GET", "/auth/github/login", None),
        ("POST", "/auth/github/device", None),
        ("POST", "/auth/github/device/token", {"device_code": "x"}),
        ("POST", "/webhooks/github", {"zen": "hi"}),
    ):
        error = refused(await api.admin(method, path, json=body), 404, "not_configured")
        assert error["hint"], path


async def test_a_create_whose_prompt_is_refused_leaves_no_session(api: Api, origin: Path) -> None:
    for body, status, code in (
        ({"prompt": "x" * (PROMPT_LIMIT + 1)}, 413, "prompt_too_large"),
        ({"prompt": "   "}, 422, "invalid_input"),
        ({"prompt": "fix it", "model": "nosuch:model"}, 422, "unknown_model"),
        ({"prompt": "fix it", "client_request_id": ""}, 422, "invalid_input"),
        ({"prompt": "fix it", "base_branch": "no-such-branch"}, 422, "invalid_input"),
    ):
        answer = await api.admin("POST", "/api/sessions", json={"repo": str(origin), **body})
        refused(answer, status, code)
    assert await _session_count(api) == 0
    assert (await api.admin("GET", "/api/sessions")).json()["sessions"] == []


async def test_members_see_no_server_paths_of_registered_repos(
    api: Api, origin: Path, tmp_path: Path
) -> None:
    member = await _member(api)
    registered = await api.admin("POST", "/api/repos", json={"name": "calc", "url": str(origin)})
    assert registered.json()["url"] == str(origin)  # the admin registered it and sees it
    listed = await api.as_user(member, "GET", "/api/repos")
    assert listed.status_code == 200
    assert [r["url"] for r in listed.json()["repos"]] == ["local/origin"]
    created = await api.as_user(member, "POST", "/api/sessions", json={"repo": "calc"})
    assert created.status_code == 201, created.text
    session_id = created.json()["session"]["id"]
    for path in (
        "/api/repos",
        "/api/sessions",
        f"/api/sessions/{session_id}",
        f"/api/sessions/{session_id}/events",
    ):
        answer = await api.as_user(member, "GET", path)
        assert answer.status_code == 200, answer.text
        for leaked in (tmp_path, api.plane.settings.home_dir, Path.home()):
            assert str(leaked) not in answer.text, (path, answer.text)
    assert "local/origin" in created.text
    # Admins still see where the repo is.
    seen = await api.admin("GET", f"/api/sessions/{session_id}")
    assert seen.json()["session"]["repo_url"] == str(origin)


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_user("acme")
        gh.add_user("ada")
        gh.create_repo("acme/widgets", source=origin, private=False)
        gh.add_installation(["acme/widgets"])
        yield gh


@pytest.fixture
async def gh_api(tmp_path: Path, fake: FakeGitHub) -> AsyncIterator[Api]:
    # The admin token has no GitHub identity to check access with; the App opens the PR.
    settings = settings_for(tmp_path / "gh", fake.settings(access_check=False))
    async with running(settings, fake) as opened:
        yield opened


async def test_bogus_device_codes_are_4xx(gh_api: Api) -> None:
    for code in ("bogus", "0" * 40, "../../etc/passwd"):
        answer = await gh_api.client.post("/auth/github/device/token", json={"device_code": code})
        error = refused(answer, 422, "sign_in_code_invalid", gh_api.plane.settings.home_dir)
        assert error["hint"]
    refused(
        await gh_api.client.post("/auth/github/device/token", json={"device_code": ""}),
        422,
        "invalid_input",
    )
    refused(
        await gh_api.client.post("/auth/github/device/token", json={"device_code": "x" * 201}),
        422,
        "invalid_input",
    )


async def test_a_pull_request_with_no_commits_is_4xx(gh_api: Api, fake: FakeGitHub) -> None:
    created = await gh_api.admin("POST", "/api/sessions", json={"repo": f"{fake.url}/acme/widgets"})
    assert created.status_code == 201, created.text
    session = created.json()["session"]
    pull = f"/api/sessions/{session['id']}/pull-request"
    # Never pushed: refused before GitHub is asked.
    refused(await gh_api.admin("POST", pull, json={"title": "Fix"}), 409, "session_not_promptable")
    # Pushed (recorded as the git proxy records a push), but with nothing over the base.
    bare = fake.bare_path("acme/widgets")
    git = ["git", "-C", str(bare)]
    subprocess.run([*git, "branch", "--", session["branch"], "main"], check=True)
    sha = subprocess.run([*git, "rev-parse", "main"], check=True, capture_output=True, text=True)
    await gh_api.plane.store.branches.record(session["id"], session["branch"], sha.stdout.strip())
    answer = await gh_api.admin("POST", pull, json={"title": "Fix"})
    error = refused(answer, 422, "pull_request_empty", gh_api.plane.settings.home_dir)
    assert "No commits" in error["message"] and error["hint"]
    listed = await gh_api.admin("GET", f"/api/sessions/{session['id']}/pull-requests")
    assert listed.json()["pull_requests"] == []
