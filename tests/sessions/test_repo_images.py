"""Repo images through the session engine, in real bubblewrap boxes: a build runs setup.sh
once; a session's box starts from the image (what setup.sh made is there, setup.sh does not run
again, start.sh does) on the newest commit of the base branch; a push to the base branch is
rebuilt no sooner than the interval allows; a damaged image is marked bad and the box starts
fresh, visibly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, User
from openinspect.images.builder import ImageBuilder
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.services.images import ImageBuilds
from openinspect.settings import (
    AgentSettings,
    ImageSettings,
    ModelProviderSettings,
    SandboxSettings,
    ServiceSettings,
    SessionSettings,
    Settings,
)
from openinspect.store.images import ImageBuild
from openinspect.store.tables import egress_requests
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.package_index import PackageIndex
from openinspect.testing.repos import git_output
from tests.conftest import MODEL, skip_or_fail
from tests.sessions.bridged import bridged_plane

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(300),
]
INTERVAL_S = 600.0
SETUP = "echo setup >> ../setup-count\necho built-by-setup > built.txt\n"
START = "echo start >> ../start-count\n"
CHECK = "cat ../setup-count; cat ../start-count; cat built.txt; git log -1 --format=head=%H"


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    if (why := probe_bwrap()) is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {why}")
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(
            provider="bwrap", images=ImageSettings(rebuild_interval_s=INTERVAL_S)
        ),
        sessions=SessionSettings(tidy_interval_s=0),
        services=ServiceSettings(image_builds_enabled=False),  # driven by the test
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )
    async with bridged_plane(settings, git_proxy=True) as opened:
        yield opened


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now().astimezone()

    def __call__(self) -> datetime:
        return self.now


def service(plane: ControlPlane, clock: Clock) -> ImageBuilds:
    deps = plane.session_deps
    builder = ImageBuilder(
        settings=plane.settings,
        store=plane.store,
        origins=plane.origins,
        hub=plane.hub,
        provider=deps.provider,
    )
    return ImageBuilds(
        settings=plane.settings,
        store=plane.store,
        origins=plane.origins,
        builder=builder,
        now=clock,
    )


def make_origin(root: Path) -> tuple[Path, Path]:
    """A bare origin whose main has the scripts; (origin, the working clone that pushes)."""
    origin, work = root / "origin.git", root / "work"
    root.mkdir()
    git_output("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=root)
    work.mkdir()
    (work / ".openinspect").mkdir()
    (work / ".openinspect" / "setup.sh").write_text(SETUP)
    (work / ".openinspect" / "start.sh").write_text(START)
    (work / ".gitignore").write_text("built.txt\n")
    git_output("init", "--quiet", "--initial-branch=main", cwd=work)
    push(work, origin, "README.md", "# widgets\n")
    return origin, work


def push(work: Path, origin: Path, name: str, content: str) -> str:
    (work / name).write_text(content)
    git_output("add", ".", cwd=work)
    ident = ["-c", "user.name=Demo", "-c", "user.email=demo@example.com"]
    git_output(*ident, "commit", "--quiet", "-m", f"add {name}", cwd=work)
    git_output("push", "--quiet", str(origin), "main", cwd=work)
    return git_output("rev-parse", "HEAD", cwd=work).strip()


def _admin(plane: ControlPlane) -> User:
    user = plane.bootstrap.user
    assert user is not None
    return user


async def _finished(plane: ControlPlane, prompt: Prompt, timeout_s: float = 240) -> Prompt:
    async with asyncio.timeout(timeout_s):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                return got
            await asyncio.sleep(0.1)


async def _events(plane: ControlPlane, sid: str) -> list[Any]:
    return await plane.store.events.after(sid, 0, 10_000)


def _lines(output: str, *names: str) -> tuple[int, ...]:
    """How many lines of ``output`` are each of ``names``."""
    lines = output.splitlines()
    return tuple(lines.count(name) for name in names)


async def _builds(plane: ControlPlane, repo_id: str) -> list[ImageBuild]:
    return await plane.store.images.of_repo(repo_id)


async def _check_in_session(
    plane: ControlPlane, llm: ScriptedLLMServer, repo: str
) -> tuple[str, str, list[Any]]:
    """A new session's first prompt runs CHECK; (its output, the session id, its events)."""
    user = _admin(plane)
    session = await plane.manager.create(user, repo=repo)
    actor = await plane.manager.actor(session.id)
    llm.reset({"turns": [{"tool_calls": [{"name": "bash", "args": {"command": CHECK}}]}]})
    prompt = await _finished(plane, await actor.submit(user, "what is there?"))
    assert prompt.status == "success", (prompt.error_code, prompt.error_message)
    events = await _events(plane, session.id)
    output = "".join(
        e.output for e in events if e.type == "tool-result" and e.prompt_id == prompt.id
    )
    return output, session.id, events


async def test_a_session_starts_from_the_image_and_a_push_is_rebuilt_after_the_interval(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path
) -> None:
    origin, work = make_origin(tmp_path / "upstream")
    repo = await plane.store.repos.create(
        name="acme/widgets", url=str(origin), default_branch="main", created_by=_admin(plane).id
    )
    await plane.store.images.put_settings(repo.id, enabled=True, updated_by=None)
    clock = Clock()
    builds = service(plane, clock)

    await builds.run_once()  # no image yet: built at once
    [first] = await _builds(plane, repo.id)
    assert first.status == "succeeded" and first.good, first.error
    built_at = git_output("rev-parse", "HEAD", cwd=work).strip()
    assert (first.trigger, first.commit_sha) == ("first", built_at)
    detail = await plane.store.images.get(repo.id, first.id)
    assert detail is not None and detail.log is not None
    assert "running .openinspect/setup.sh" in detail.log
    assert str(plane.settings.home_dir) not in detail.log
    # The build box and its workspace are gone; its archive is kept.
    assert not list(plane.settings.workspaces_dir.glob("image-*"))
    assert first.data is not None
    assert (plane.settings.home_dir / "snapshots" / first.data.key).is_file()

    newer = push(work, origin, "later.txt", "pushed after the build\n")
    output, _, events = await _check_in_session(plane, llm, "acme/widgets")
    # setup.sh ran once (in the build), start.sh in the session's box; its file is there and
    # the checkout is at the commit pushed after the build.
    assert _lines(output, "setup", "start") == (1, 1), output
    assert "built-by-setup" in output and f"head={newer}" in output
    ready = [e for e in events if e.type == "sandbox-status" and e.status == "ready"]
    assert ready and (ready[0].message or "").startswith(f"started from repo image {first.id}")
    assert any(e.type == "sandbox-log" and f"repo image {first.id}" in e.line for e in events)

    # The base branch moved: not rebuilt before the interval, rebuilt after it.
    clock.now = (first.started_at or clock.now) + timedelta(seconds=INTERVAL_S - 5)
    await builds.run_once()
    assert len(await _builds(plane, repo.id)) == 1
    clock.now += timedelta(seconds=10)
    await builds.run_once()
    second, _ = await _builds(plane, repo.id)
    assert (second.status, second.trigger, second.commit_sha) == ("succeeded", "moved", newer)
    # Nothing moved since: no build, however long after.
    clock.now += timedelta(seconds=INTERVAL_S * 3)
    await builds.run_once()
    assert len(await _builds(plane, repo.id)) == 2
    # A box from the new image has nothing to fetch (its provider sends no bundle then).
    output, _, events = await _check_in_session(plane, llm, "acme/widgets")
    assert _lines(output, "setup", "start") == (1, 1) and f"head={newer}" in output, output
    assert any(e.type == "sandbox-log" and "is at the newest main" in e.line for e in events)


async def test_a_damaged_image_is_marked_bad_and_the_box_starts_fresh_visibly(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path
) -> None:
    origin, _ = make_origin(tmp_path / "upstream")
    repo = await plane.store.repos.create(
        name="acme/gadgets", url=str(origin), default_branch="main", created_by=_admin(plane).id
    )
    await plane.store.images.put_settings(repo.id, enabled=True, updated_by=None)
    await service(plane, Clock()).run_once()
    [image] = await _builds(plane, repo.id)
    assert image.good and image.data is not None
    archive = plane.settings.home_dir / "snapshots" / image.data.key
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0x55
    archive.write_bytes(bytes(data))

    output, _, events = await _check_in_session(plane, llm, "acme/gadgets")
    warnings = [e for e in events if e.type == "warning" and e.code == "image_corrupt"]
    assert len(warnings) == 1 and image.id in warnings[0].message
    # A fresh box: setup.sh ran in it (the session's own), then start.sh.
    assert _lines(output, "setup", "start") == (1, 1), output
    [bad] = await _builds(plane, repo.id)
    assert bad.status == "bad" and not bad.good
    assert await plane.store.images.newest_good(repo.id, "main") is None


async def test_a_failing_setup_fails_the_build_and_no_box_starts_from_it(
    plane: ControlPlane, tmp_path: Path
) -> None:
    origin, work = make_origin(tmp_path / "upstream")
    (work / ".openinspect" / "setup.sh").write_text("echo about to fail\nexit 3\n")
    push(work, origin, "x.txt", "x\n")
    repo = await plane.store.repos.create(
        name="acme/broken", url=str(origin), default_branch="main", created_by=_admin(plane).id
    )
    await plane.store.images.put_settings(repo.id, enabled=True, updated_by=None)
    await service(plane, Clock()).run_once()
    [failed] = await _builds(plane, repo.id)
    assert failed.status == "failed" and not failed.good
    assert failed.error is not None and "setup.sh exited with 3" in failed.error
    detail = await plane.store.images.get(repo.id, failed.id)
    assert detail is not None and "about to fail" in (detail.log or "")
    assert str(plane.settings.home_dir) not in (detail.log or "") + failed.error
    assert not list(plane.settings.workspaces_dir.glob("image-*"))


async def test_a_builds_setup_installs_through_the_egress_proxy_with_its_repos_list(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path
) -> None:
    with PackageIndex({"eggtest": 42}) as index:
        origin, work = make_origin(tmp_path / "upstream")
        (work / ".openinspect" / "setup.sh").write_text(
            "set -e\nNO_PROXY= no_proxy= python3 -m pip install --quiet --no-cache-dir "
            f"--disable-pip-version-check --target ../deps --index-url {index.url}/simple/ "
            "eggtest\necho setup >> ../setup-count\n"
        )
        push(work, origin, "x.txt", "x\n")
        repo = await plane.store.repos.create(
            name="acme/eggs", url=str(origin), default_branch="main", created_by=_admin(plane).id
        )
        await plane.store.egress.set_repo_entries(
            repo.id, [f"127.0.0.1:{index.port}"], updated_by=None
        )
        await plane.store.images.put_settings(repo.id, enabled=True, updated_by=None)
        await service(plane, Clock()).run_once()
        [build] = await _builds(plane, repo.id)
        assert build.status == "succeeded", build.error
        assert any("/files/eggtest-1.0-py3-none-any.whl" in p for p in index.requests)
        async with plane.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(egress_requests.c.session_id, egress_requests.c.allowed).where(
                        egress_requests.c.sandbox_id == build.sandbox_id
                    )
                )
            ).all()
        assert rows and all(session is None and allowed for session, allowed in rows)
    # The session's box has what setup.sh installed, without running it (the index is gone).
    user = _admin(plane)
    session = await plane.manager.create(user, repo="acme/eggs")
    actor = await plane.manager.actor(session.id)
    command = (
        "cat ../setup-count; PYTHONPATH=../deps python3 -c 'import eggtest as e; print(e.VALUE)'"
    )
    llm.reset({"turns": [{"tool_calls": [{"name": "bash", "args": {"command": command}}]}]})
    prompt = await _finished(plane, await actor.submit(user, "is it installed?"))
    assert prompt.status == "success", (prompt.error_code, prompt.error_message)
    events = await _events(plane, session.id)
    output = "".join(e.output for e in events if e.type == "tool-result")
    assert _lines(output, "setup", "42") == (1, 1), output
