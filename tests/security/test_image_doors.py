"""A repo's image over the REST API: everyone signed in reads it and its builds, only admins turn
it on or off and ask for a build; bad input is refused with a code; a build's error and log
name no server path (nor a local repo's path, which members never see); a backend without
snapshots refuses images with a code and a hint."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.errors import ForbiddenError
from openinspect.images.builder import ImageBuilder
from openinspect.sessions.egress_authority import SessionEgressAuthority
from openinspect.settings import SandboxSettings, ServiceSettings, SessionSettings, Settings
from openinspect.testing.asgi import InApp


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    """A plane on the bwrap backend (which keeps snapshots); no box is started here."""
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="bwrap"),
        sessions=SessionSettings(tidy_interval_s=0),
        services=ServiceSettings(image_builds_enabled=False),
    )
    async with open_control_plane(settings) as opened:
        yield opened


async def test_admins_turn_a_repos_image_on_and_ask_for_builds_members_read(
    api: InApp, calc: str
) -> None:
    admin = api.admin()
    shown = await admin.call("GET", f"/api/repos/{calc}/image")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["enabled"], body["supported"], body["current"], body["pending"]) == (
        False,
        True,
        None,
        None,
    )
    refused = await admin.call("POST", f"/api/repos/{calc}/image/builds")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "conflict")

    member = await api.member("bob")
    for method, path, json in (
        ("PUT", f"/api/repos/{calc}/image", {"enabled": True}),
        ("POST", f"/api/repos/{calc}/image/builds", None),
    ):
        denied = await member.call(method, path, json=json)
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "forbidden")
    assert (await member.call("GET", f"/api/repos/{calc}/image")).json()["enabled"] is False

    on = await admin.call("PUT", f"/api/repos/{calc}/image", json={"enabled": True})
    assert on.status_code == 200 and on.json()["enabled"] is True, on.text
    queued = await admin.call("POST", f"/api/repos/{calc}/image/builds")
    assert queued.status_code == 202, queued.text
    build = queued.json()
    assert (build["status"], build["trigger"], build["good"]) == ("queued", "manual", False)
    again = await admin.call("POST", f"/api/repos/{calc}/image/builds")
    assert again.json()["id"] == build["id"]  # one pending build per repo

    seen = await member.call("GET", f"/api/repos/{calc}/image")
    assert seen.json()["pending"]["id"] == build["id"]
    listed = await member.call("GET", f"/api/repos/{calc}/image/builds")
    assert [b["id"] for b in listed.json()["builds"]] == [build["id"]]
    one = await member.call("GET", f"/api/repos/{calc}/image/builds/{build['id']}")
    assert one.status_code == 200 and one.json()["log"] == "", one.text


async def test_bad_image_requests_are_refused(api: InApp, calc: str) -> None:
    admin = api.admin()
    for body in ({"enabled": "yes"}, {"enabled": True, "interval": 5}, {}, ["x"]):
        bad = await admin.call("PUT", f"/api/repos/{calc}/image", json=body)
        assert bad.status_code == 422, (body, bad.text)
    for path in (
        f"/api/repos/{calc}/image/builds/not-an-id",
        f"/api/repos/{calc}/image/builds/img_{'0' * 60}",
        f"/api/repos/{calc}/image/builds?limit=0",
        f"/api/repos/{calc}/image/builds?limit=101",
        f"/api/repos/{calc}/image/builds?before={'x' * 41}",
    ):
        bad = await admin.call("GET", path)
        assert bad.status_code == 422, (path, bad.text)
    missing = await admin.call("GET", f"/api/repos/{calc}/image/builds/img_0123456789abcdef")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "image_build_not_found")
    gone = await admin.call("GET", "/api/repos/nope/image")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "repo_not_found")


async def test_a_builds_error_names_no_server_or_repo_path(
    api: InApp, plane: ControlPlane, tmp_path: Path
) -> None:
    missing = tmp_path / "gone" / "repo.git"
    missing.mkdir(parents=True)
    made = await api.admin().call("POST", "/api/repos", json={"name": "ghost", "url": str(missing)})
    assert made.status_code == 201, made.text
    shutil.rmtree(missing)  # the build cannot fetch it: git's error names its path
    await api.admin().call("PUT", "/api/repos/ghost/image", json={"enabled": True})
    [repo] = [r for r in await plane.store.images.enabled_repos() if r.name == "ghost"]
    build, _ = await plane.store.images.queue(repo.repo_id, "main", trigger="first")
    builder = ImageBuilder(
        settings=plane.settings,
        store=plane.store,
        origins=plane.origins,
        hub=plane.hub,
        provider=plane.session_deps.provider,
    )
    finished = await builder.build(build, repo)
    assert finished is not None and finished.status == "failed"
    member = await api.member("bob")
    shown = await member.call("GET", f"/api/repos/ghost/image/builds/{build.id}")
    text = shown.text
    assert shown.json()["error"] and "build failed" in shown.json()["log"]
    for path in (str(tmp_path), str(plane.settings.home_dir), str(missing)):
        assert path not in text


async def test_a_backend_without_snapshots_refuses_images(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
    )
    async with open_control_plane(settings) as plane, InApp.open(plane) as api:
        assert plane.services.names.count("image_builds") == 0
        admin = api.admin()
        origin = tmp_path / "o"
        origin.mkdir()
        made = await admin.call("POST", "/api/repos", json={"name": "p", "url": str(origin)})
        assert made.status_code == 201, made.text
        assert (await admin.call("GET", "/api/repos/p/image")).json()["supported"] is False
        for method, path, json in (
            ("PUT", "/api/repos/p/image", {"enabled": True}),
            ("POST", "/api/repos/p/image/builds", None),
        ):
            refused = await admin.call(method, path, json=json)
            error = refused.json()["error"]
            assert (refused.status_code, error["code"]) == (409, "images_unsupported"), error
            assert "snapshots" in error["message"] and error["hint"]
        off = await admin.call("PUT", "/api/repos/p/image", json={"enabled": False})
        assert off.status_code == 200


async def test_a_build_box_is_no_sessions_for_the_git_proxy_and_only_its_repos_for_egress(
    api: InApp, plane: ControlPlane, calc: str
) -> None:
    repo = await plane.store.repos.find(calc)
    assert repo is not None
    await plane.store.egress.set_repo_entries(repo.id, ["pypi.internal:3141"], updated_by=None)
    build, _ = await plane.store.images.queue(repo.id, "main", trigger="first")
    await plane.store.images.start(build.id, sandbox_id="sbx_build", commit_sha="a" * 40)
    plane.hub.register("sbx_build", "token-build")
    owner, name = plane.origins.slug(repo.url)
    for session_id in ("ses_0123456789abcdef", "ses_fedcba9876543210"):
        with pytest.raises(ForbiddenError):
            await plane.git_authority.authorize(
                session_id, owner, name, "token-build", "git-upload-pack"
            )
    authority = SessionEgressAuthority(
        store=plane.store, events=plane.events, hub=plane.hub, allow=["pypi.org"]
    )
    grant = await authority.grant("token-build")
    assert grant is not None and grant.session_id is None and grant.repo == calc
    assert grant.allow.judge("pypi.internal", 3141, tunnel=True).entry is not None
    assert grant.allow.judge("evil.example", 443, tunnel=True).entry is None
    await plane.store.images.finish(build.id, data=None, error="x", log="", keep=1)
    after = await authority.grant("token-build")  # its build ended: the server's list only
    assert after is not None
    assert after.allow.judge("pypi.internal", 3141, tunnel=True).entry is None
