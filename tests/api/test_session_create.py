"""``POST /api/sessions``: the session records the door it came through (shown wherever the
session is), and creation is idempotent by key: a retry returns the same session with 200, a
different body under the same key is a 409, and concurrent creates make one session — on SQLite
and on Postgres, where the unique index decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openinspect.api.app import create_app
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.settings import SandboxSettings, SessionSettings, Settings
from tests.store.test_migrations import pg_url  # noqa: F401 - a fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
    )


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with open_control_plane(_settings(tmp_path)) as opened:
        yield opened


def _client(plane: ControlPlane) -> httpx.AsyncClient:
    app = create_app(plane.settings, plane)
    headers = {"Authorization": f"Bearer {plane.bootstrap.token}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(plane) as c:
        yield c


async def _create(
    client: httpx.AsyncClient, repo: Path, key: str | None = None, **body: Any
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post("/api/sessions", json={"repo": str(repo), **body}, headers=headers)


async def test_the_origin_is_recorded_and_shown(client: httpx.AsyncClient, origin: Path) -> None:
    plain = await _create(client, origin)
    web = await _create(client, origin, origin="web")
    assert plain.status_code == web.status_code == 201, web.text
    assert plain.json()["session"]["origin"] == "api"  # a client that says nothing
    assert web.json()["session"]["origin"] == "web"
    assert web.json()["session"]["origin_ref"] is None
    sid = web.json()["session"]["id"]
    shown = (await client.get(f"/api/sessions/{sid}")).json()["session"]
    assert shown["origin"] == "web"
    listed = {s["id"]: s["origin"] for s in (await client.get("/api/sessions")).json()["sessions"]}
    assert listed == {sid: "web", plain.json()["session"]["id"]: "api"}
    events = (await client.get(f"/api/sessions/{sid}/events")).json()["events"]
    assert events[0]["type"] == "session-created" and events[0]["origin"] == "web"


async def test_without_a_base_branch_a_session_starts_from_the_repos_own_default(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A repo made with a plain ``git init`` may have only ``master``: a session that names no
    base branch starts from the origin's default, not from a ``main`` it lacks."""
    repo = tmp_path / "plain"
    repo.mkdir()
    for args in (
        ["init", "-q", "-b", "master"],
        ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "i"],
    ):
        proc = await asyncio.create_subprocess_exec("git", *args, cwd=repo)
        assert await proc.wait() == 0
    made = await _create(client, repo)
    assert made.status_code == 201, made.text
    assert made.json()["session"]["base_branch"] == "master"
    missing = await _create(client, repo, base_branch="main")  # asked for: still checked
    assert missing.status_code == 422 and "main" in missing.json()["error"]["message"]


@pytest.mark.parametrize("where", ["header", "body"])
async def test_a_retried_create_returns_the_same_session_with_200(
    client: httpx.AsyncClient, plane: ControlPlane, origin: Path, where: str
) -> None:
    def send() -> Any:
        if where == "header":
            return _create(client, origin, "retry-1", title="T", prompt="fix it")
        return _create(client, origin, title="T", prompt="fix it", idempotency_key="retry-1")

    first = await send()
    again = await send()
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["session"]["id"] == first.json()["session"]["id"]
    assert again.json()["prompt"]["id"] == first.json()["prompt"]["id"]
    sessions = await plane.store.sessions.list(limit=10)
    assert len(sessions) == 1
    assert len(await plane.store.prompts.for_session(sessions[0].id)) == 1


async def test_a_reused_key_with_another_body_is_a_409(
    client: httpx.AsyncClient, plane: ControlPlane, origin: Path
) -> None:
    assert (await _create(client, origin, "k1", title="One")).status_code == 201
    answer = await _create(client, origin, "k1", title="Two")
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "idempotency_key_reused" and error["hint"]
    assert len(await plane.store.sessions.list(limit=10)) == 1


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Idempotency-Key": "k" * 129}, {}),
        ({}, {"idempotency_key": "k" * 129}),
        ({}, {"idempotency_key": ""}),
        ({"Idempotency-Key": "a"}, {"idempotency_key": "b"}),  # two different keys
    ],
)
async def test_bad_keys_are_refused(
    client: httpx.AsyncClient,
    plane: ControlPlane,
    origin: Path,
    headers: dict[str, str],
    body: dict[str, Any],
) -> None:
    answer = await client.post("/api/sessions", json={"repo": str(origin), **body}, headers=headers)
    assert answer.status_code == 422, answer.text
    assert "k" * 100 not in answer.text  # the key is not echoed back
    assert await plane.store.sessions.list(limit=10) == []


async def _concurrent_creates_make_one_session(plane: ControlPlane, origin: Path) -> None:
    async with _client(plane) as client:
        answers = await asyncio.gather(
            *(_create(client, origin, "same", prompt="go") for _ in range(5))
        )
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert len({a.json()["session"]["id"] for a in answers}) == 1
    assert len({a.json()["prompt"]["id"] for a in answers}) == 1
    sessions = await plane.store.sessions.list(limit=10)
    assert len(sessions) == 1
    assert len(await plane.store.prompts.for_session(sessions[0].id)) == 1
    created = await plane.store.events.after(sessions[0].id, 0, 100)
    assert [e.type for e in created].count("session-created") == 1
    # Past the route's own look-up: creates that all race to the insert still make one.
    user = plane.bootstrap.user
    assert user is not None
    raced = await asyncio.gather(
        *(
            plane.manager.create(user, repo=str(origin), idempotency_key="raw", fingerprint="f")
            for _ in range(4)
        )
    )
    assert len({s.id for s in raced}) == 1
    assert len(await plane.store.sessions.list(limit=10)) == 2


async def test_concurrent_creates_make_one_session_on_sqlite(
    plane: ControlPlane, origin: Path
) -> None:
    await _concurrent_creates_make_one_session(plane, origin)


@pytest.mark.postgres
async def test_concurrent_creates_make_one_session_on_postgres(
    tmp_path: Path,
    origin: Path,
    pg_url: str,  # noqa: F811 - the fixture
) -> None:
    async with open_control_plane(_settings(tmp_path, pg_url)) as plane:
        await _concurrent_creates_make_one_session(plane, origin)
