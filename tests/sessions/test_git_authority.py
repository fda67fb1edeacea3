"""The git proxy's authority: a request is one sandbox's, of one session, for that session's repo;
every push attempt becomes events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.api.app import Runtime, open_runtime
from openinspect.domain.models import Session
from openinspect.errors import AuthError, ForbiddenError, NotFoundError
from openinspect.scm.push_rules import RefUpdate
from openinspect.scm.upstream import LocalUpstream
from openinspect.settings import SandboxSettings, Settings

SHA = "1" * 40
ZERO = "0" * 40


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_runtime(settings) as opened:
        yield opened


async def _session(runtime: Runtime, origin: Path) -> Session:
    admin = (await runtime.store.users.list_all())[0]
    return await runtime.manager.create(admin, repo=str(origin))


async def _sandbox(runtime: Runtime, session_id: str, sandbox_id: str, token: str) -> None:
    runtime.hub.register(sandbox_id, token)
    await runtime.store.sandboxes.create(
        sandbox_id=sandbox_id, session_id=session_id, provider="process", token_hash="x"
    )


async def test_only_the_sessions_own_sandbox_reaches_its_repo(
    runtime: Runtime, origin: Path
) -> None:
    mine, other = await _session(runtime, origin), await _session(runtime, origin)
    await _sandbox(runtime, mine.id, "sbx_mine", "token-mine")
    await _sandbox(runtime, other.id, "sbx_other", "token-other")
    authority, (owner, name) = runtime.git_authority, runtime.origins.slug(mine.repo_url)

    grant = await authority.authorize(mine.id, owner, name, "token-mine", "git-upload-pack")
    assert isinstance(grant.upstream, LocalUpstream)
    assert grant.policy.session_branch == mine.branch
    with pytest.raises(AuthError):
        await authority.authorize(mine.id, owner, name, None, "git-upload-pack")
    with pytest.raises(ForbiddenError):
        await authority.authorize(mine.id, owner, name, "token-nobody", "git-upload-pack")
    with pytest.raises(ForbiddenError):  # a real token, of another session's sandbox
        await authority.authorize(mine.id, owner, name, "token-other", "git-receive-pack")
    with pytest.raises(NotFoundError):
        await authority.authorize(mine.id, "acme", "elsewhere", "token-mine", "git-upload-pack")
    runtime.hub.unregister("sbx_mine")  # a destroyed sandbox's token is dead
    with pytest.raises(ForbiddenError):
        await authority.authorize(mine.id, owner, name, "token-mine", "git-upload-pack")


async def test_pushes_become_events_and_owned_branches(runtime: Runtime, origin: Path) -> None:
    session = await _session(runtime, origin)
    await _sandbox(runtime, session.id, "sbx_1", "token-1")
    owner, name = runtime.origins.slug(session.repo_url)
    grant = await runtime.git_authority.authorize(
        session.id, owner, name, "token-1", "git-receive-pack"
    )
    created = RefUpdate(ZERO, SHA, "refs/heads/openinspect/extra")
    await runtime.git_authority.pushed(grant, [created], True, "")
    await runtime.git_authority.pushed(
        grant, [RefUpdate(ZERO, SHA, "refs/heads/main")], False, "no"
    )
    assert await runtime.store.branches.names(session.id) == {"openinspect/extra"}
    events = await runtime.store.events.after(session.id, 0, 500)
    tail = [(e.type, getattr(e, "branch", None) or getattr(e, "code", None)) for e in events[-2:]]
    assert tail == [("git-push", "openinspect/extra"), ("warning", "push_refused")]
