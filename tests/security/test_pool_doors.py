"""The warm pool's doors: a repo's pool size over the REST API (everyone signed in reads it,
only admins set it, sizes out of range are refused with a code), and an unclaimed pooled box,
which belongs to no session: its token opens the git proxy for no session, and its egress is
its repo's allow-list with no session to act for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.errors import ForbiddenError
from openinspect.sessions.egress_authority import SessionEgressAuthority
from openinspect.settings import PoolSettings, SandboxSettings, SessionSettings, Settings
from openinspect.testing.asgi import InApp
from tests.sessions.bridged import bridged_plane


async def test_admins_set_a_repos_pool_size_and_members_read_it(api: InApp, calc: str) -> None:
    admin = api.admin()
    shown = await admin.call("GET", f"/api/repos/{calc}/pool")
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "repo": "calc",
        "size": 0,
        "max_size": 10,
        "base_branch": "main",
        "ready": 0,
        "booting": 0,
    }
    member = await api.member("bob")
    refused = await member.call("PUT", f"/api/repos/{calc}/pool", json={"size": 1})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert (await member.call("GET", f"/api/repos/{calc}/pool")).json()["size"] == 0

    put = await admin.call("PUT", f"/api/repos/{calc}/pool", json={"size": 3})
    assert put.status_code == 200, put.text
    assert put.json()["size"] == 3
    assert (await member.call("GET", f"/api/repos/{calc}/pool")).json()["size"] == 3
    off = await admin.call("PUT", f"/api/repos/{calc}/pool", json={"size": 0})
    assert off.json()["size"] == 0 and off.json()["ready"] == 0 and off.json()["booting"] == 0


async def test_pool_sizes_out_of_range_are_refused(api: InApp, calc: str) -> None:
    admin = api.admin()
    over = await admin.call("PUT", f"/api/repos/{calc}/pool", json={"size": 11})
    assert (over.status_code, over.json()["error"]["code"]) == (422, "invalid_input"), over.text
    assert "10" in over.json()["error"]["message"] and "/" not in over.json()["error"]["message"]
    for body in (
        {"size": -1},
        {"size": 1001},
        {"size": "2"},
        {"size": 1.5},
        {"size": True},
        {"size": None},
        {},
        {"size": 1, "repo": "other"},
        [1],
    ):
        bad = await admin.call("PUT", f"/api/repos/{calc}/pool", json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["error"]["code"] in ("invalid_input", "validation_error"), bad.text
    assert (await admin.call("GET", f"/api/repos/{calc}/pool")).json()["size"] == 0
    missing = await admin.call("PUT", "/api/repos/nope/pool", json={"size": 1})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "repo_not_found")
    missing = await admin.call("GET", "/api/repos/nope/pool")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "repo_not_found")


@pytest.fixture
async def bridged(tmp_path: Path) -> ControlPlane:  # type: ignore[misc]
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process", pool=PoolSettings(refill_interval_s=0.2)),
        sessions=SessionSettings(tidy_interval_s=0),
    )
    async with bridged_plane(settings, git_proxy=True, in_process=True) as opened:
        yield opened


async def test_an_unclaimed_pooled_box_can_do_nothing_for_a_session(
    bridged: ControlPlane, origin: Path
) -> None:
    plane = bridged
    admin = plane.bootstrap.user
    assert admin is not None and plane.session_deps.pool is not None
    pool = plane.session_deps.pool
    repo = await plane.store.repos.create(
        name="calc", url=str(origin), default_branch="main", created_by=admin.id
    )
    await plane.store.egress.set_repo_entries(repo.id, ["pkgs.internal.example"], updated_by=None)
    # Sessions of the repo that exist before the pool: none of them took a box.
    sessions = [await plane.manager.create(admin, repo="calc") for _ in range(2)]
    await plane.store.pools.set_size(repo.id, 1, updated_by=None)
    async with asyncio.timeout(60):
        while not pool.ready(repo.id):
            await asyncio.sleep(0.05)
    box = pool._repos[repo.id].ready[0]
    assert plane.hub.identify(box.token) == box.sandbox_id  # a live, registered box
    assert await plane.store.sandboxes.session_of(box.sandbox_id) is None

    owner, name = plane.origins.slug(str(origin))
    for session in sessions:
        for service in ("git-upload-pack", "git-receive-pack"):
            with pytest.raises(ForbiddenError):
                await plane.git_authority.authorize(session.id, owner, name, box.token, service)

    egress = SessionEgressAuthority(
        store=plane.store,
        events=plane.events,
        hub=plane.hub,
        allow=plane.settings.sandbox.egress.allow,
        pool_repo_of=pool.repo_of,
    )
    grant = await egress.grant(box.token)
    assert grant is not None and grant.session_id is None and grant.repo == "calc"
    assert "pkgs.internal.example" in {str(e) for e in grant.allow.entries}
    assert await egress.grant("not-a-token") is None
