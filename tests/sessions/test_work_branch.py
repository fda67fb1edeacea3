"""Sessions that do not start a branch of their own from their base: one that works on an
existing branch (a same-repo pull request's head), and one whose own branch starts at a fork's
pull request head. The session really runs (the runtime in-process, the scripted model, git
through the proxy to a local origin)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import StartSession
from openinspect.domain.ids import session_branch
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, User
from openinspect.errors import BranchNotFound, InvalidInput
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations.conftest import plane_settings
from tests.sessions.bridged import bridged_plane

FEATURE = "feature/login"
PROMPT_TIMEOUT_S = 120.0


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit_on(origin: Path, ref: str, name: str) -> str:
    """A commit over ``main`` adding ``name``, pushed to ``ref`` of ``origin``."""
    work = origin.parent / f"work-{name}"
    git(origin.parent, "clone", "--quiet", str(origin), str(work))
    (work / name).write_text(f"{name}\n")
    git(work, "add", name)
    git(work, "-c", "user.name=Pat", "-c", "user.email=pat@example.com", "commit", "-qm", name)
    git(work, "push", "--quiet", "origin", f"HEAD:{ref}")
    return git(work, "rev-parse", "HEAD")


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    settings = plane_settings(tmp_path / "home", llm)
    async with bridged_plane(settings, git_proxy=True, in_process=True) as opened:
        yield opened


@pytest.fixture
async def ada(plane: ControlPlane, origin: Path) -> User:
    """A member, and the origin registered as ``calc`` (which members may use)."""
    admin = plane.bootstrap.user
    assert admin is not None
    await plane.store.repos.create(
        name="calc", url=str(origin), default_branch="main", created_by=admin.id
    )
    return await plane.store.users.create(name="Ada", email="ada@example.com", role="member")


def bash(command: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "bash", "args": {"command": command}}]}


async def finished(plane: ControlPlane, prompt: Prompt) -> Prompt:
    async with asyncio.timeout(PROMPT_TIMEOUT_S):
        while True:
            found = await plane.store.prompts.get(prompt.id)
            assert found is not None
            if found.status in FINISHED_PROMPT_STATUSES:
                return found
            await asyncio.sleep(0.05)


async def start(plane: ControlPlane, user: User, origin: Path, **fields: Any) -> Any:
    command = StartSession(repo="calc", base_branch="main", prompt="fix it", **fields)
    return await plane.commands.handle(user, command, origin="github")


async def test_a_session_on_an_existing_branch_commits_there_as_the_asker(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path, ada: User
) -> None:
    before = commit_on(origin, FEATURE, "login.txt")
    llm.reset({"turns": [bash("echo '# fixed' >> calc.py"), {"text": "Fixed."}]})
    started = await start(plane, ada, origin, work_branch=FEATURE)
    session = started.session
    assert (session.branch, session.base_branch) == (FEATURE, "main")
    assert session.works_on_existing_branch
    assert await plane.store.branches.head(session.id, FEATURE) == before  # its push record
    done = await finished(plane, started.prompt)
    assert done.status == "success", done

    after = git(origin, "rev-parse", f"refs/heads/{FEATURE}")
    assert git(origin, "rev-parse", f"{after}^") == before  # a fast-forward of the PR's head
    assert git(origin, "log", "-1", "--format=%an <%ae>|%cn", after) == (
        "Ada <ada@example.com>|openinspect"
    )
    assert git(origin, "branch", "--list", session_branch(session.id)) == ""  # none of its own
    pushes = [e for e in await plane.store.events.after(session.id, 0, 500) if e.type == "git-push"]
    assert [(p.branch, p.sha) for p in pushes] == [(FEATURE, after)]  # type: ignore[attr-defined]

    # It never opens a pull request of its own (the branch has one).
    actor = await plane.manager.actor(session.id)
    with pytest.raises(InvalidInput, match="existing pull request"):
        await actor.open_pull_request(None, ada, title="T", body="", draft=False)


async def test_a_session_started_at_a_forks_head_has_its_own_branch_from_there(
    plane: ControlPlane, llm: ScriptedLLMServer, origin: Path, ada: User
) -> None:
    head = commit_on(origin, "refs/pull/7/head", "fork.txt")
    llm.reset({"turns": [bash("cat fork.txt && echo '# fixed' >> calc.py"), {"text": "Fixed."}]})
    started = await start(plane, ada, origin, start_ref="refs/pull/7/head")
    session = started.session
    own = session_branch(session.id)
    assert session.branch == own and not session.works_on_existing_branch
    assert git(origin, "rev-parse", f"refs/heads/{own}") == head  # made before it started
    assert await plane.store.branches.head(session.id, own) == head
    assert await plane.store.branches.owner(session.repo_url, own) == session.id
    done = await finished(plane, started.prompt)
    assert done.status == "success", done
    after = git(origin, "rev-parse", f"refs/heads/{own}")
    assert git(origin, "rev-parse", f"{after}^") == head  # the sandbox started at the fork's head
    events = await plane.store.events.after(session.id, 0, 500)
    pushes = [(e.sha, e.prompt_id) for e in events if e.type == "git-push"]  # type: ignore[attr-defined]
    assert pushes == [(head, None), (after, started.prompt.id)]


async def test_branches_that_are_not_there_or_not_allowed_are_refused(
    plane: ControlPlane, origin: Path, ada: User
) -> None:
    with pytest.raises(BranchNotFound):
        await start(plane, ada, origin, work_branch="gone")
    with pytest.raises(InvalidInput, match="base branch"):
        await start(plane, ada, origin, work_branch="main")
    with pytest.raises(BranchNotFound):
        await start(plane, ada, origin, start_ref="refs/pull/404/head")
    with pytest.raises(InvalidInput, match="refs/pull"):
        await start(plane, ada, origin, start_ref="refs/heads/main")
    with pytest.raises(InvalidInput, match="not both"):
        await start(plane, ada, origin, work_branch="main", start_ref="refs/pull/1/head")
    assert await plane.store.sessions.list(limit=10) == []


async def test_the_proxy_grants_only_fast_forwards_of_the_given_branch(
    plane: ControlPlane, origin: Path, ada: User
) -> None:
    commit_on(origin, FEATURE, "login.txt")
    session = (
        await plane.commands.handle(
            ada, StartSession(repo="calc", work_branch=FEATURE), origin="github"
        )
    ).session
    plane.hub.register("sbx_1", "token-1")
    await plane.store.sandboxes.create(
        sandbox_id="sbx_1", session_id=session.id, provider="process", token_hash="x"
    )
    owner, name = plane.origins.slug(session.repo_url)
    grant = await plane.git_authority.authorize(
        session.id, owner, name, "token-1", "git-receive-pack"
    )
    assert grant.policy.granted and grant.policy.session_branch == FEATURE
    assert grant.fast_forward is not None
