"""The git proxy's authority: a request is one sandbox's, of one session, for that session's repo;
every push attempt becomes events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.domain.models import Session
from openinspect.errors import AuthError, ForbiddenError, NotFoundError
from openinspect.scm.gitproxy import ProxyGrant
from openinspect.scm.push_rules import RefUpdate
from openinspect.scm.upstream import LocalUpstream
from openinspect.settings import SandboxSettings, Settings

SHA = "1" * 40
ZERO = "0" * 40


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as opened:
        yield opened


async def _session(plane: ControlPlane, origin: Path) -> Session:
    admin = (await plane.store.users.list_all())[0]
    return await plane.manager.create(admin, repo=str(origin))


async def _sandbox(plane: ControlPlane, session_id: str, sandbox_id: str, token: str) -> None:
    plane.hub.register(sandbox_id, token)
    await plane.store.sandboxes.create(
        sandbox_id=sandbox_id, session_id=session_id, provider="process", token_hash="x"
    )


async def test_only_the_sessions_own_sandbox_reaches_its_repo(
    plane: ControlPlane, origin: Path
) -> None:
    mine, other = await _session(plane, origin), await _session(plane, origin)
    await _sandbox(plane, mine.id, "sbx_mine", "token-mine")
    await _sandbox(plane, other.id, "sbx_other", "token-other")
    authority, (owner, name) = plane.git_authority, plane.origins.slug(mine.repo_url)

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
    plane.hub.unregister("sbx_mine")  # a destroyed sandbox's token is dead
    with pytest.raises(ForbiddenError):
        await authority.authorize(mine.id, owner, name, "token-mine", "git-upload-pack")


async def test_pushes_become_events_and_owned_branches(plane: ControlPlane, origin: Path) -> None:
    session = await _session(plane, origin)
    await _sandbox(plane, session.id, "sbx_1", "token-1")
    owner, name = plane.origins.slug(session.repo_url)
    grant = await plane.git_authority.authorize(
        session.id, owner, name, "token-1", "git-receive-pack"
    )
    created = RefUpdate(ZERO, SHA, "refs/heads/openinspect/extra")
    await plane.git_authority.pushed(grant, [created], True, "")
    await plane.git_authority.pushed(grant, [RefUpdate(ZERO, SHA, "refs/heads/main")], False, "no")
    assert await plane.store.branches.names(session.id) == {"openinspect/extra"}
    events = await plane.store.events.after(session.id, 0, 500)
    tail = [(e.type, getattr(e, "branch", None) or getattr(e, "code", None)) for e in events[-2:]]
    assert tail == [("git-push", "openinspect/extra"), ("warning", "push_refused")]


async def test_a_session_owns_its_branch_name_from_creation(
    plane: ControlPlane, origin: Path
) -> None:
    mine, other = await _session(plane, origin), await _session(plane, origin)
    branches = plane.store.branches
    assert await branches.owner(mine.repo_url, mine.branch) == mine.id
    assert not await branches.claim(other.id, mine.repo_url, mine.branch)
    assert await branches.claim(mine.id, mine.repo_url, mine.branch)  # already its own
    # The same name in another repo is a different name.
    assert await branches.claim(other.id, "/elsewhere", mine.branch)


async def test_the_push_policy_comes_from_the_claims(plane: ControlPlane, origin: Path) -> None:
    mine, other = await _session(plane, origin), await _session(plane, origin)
    await _sandbox(plane, mine.id, "sbx_mine", "token-mine")
    await _sandbox(plane, other.id, "sbx_other", "token-other")
    authority, (owner, name) = plane.git_authority, plane.origins.slug(mine.repo_url)
    branches = plane.store.branches
    # Before names were strict, the other session took one under mine's name, and both pushed
    # a branch of a third name (mine first).
    squatted = f"{mine.branch}-docs"
    assert await branches.claim(other.id, other.repo_url, squatted)
    for session in (mine, other):
        assert await branches.claim(session.id, session.repo_url, "openinspect/legacy") is (
            session is mine
        )
        await branches.record(session.id, "openinspect/legacy", SHA)

    async def grant(sid: str, token: str) -> ProxyGrant:
        return await authority.authorize(sid, owner, name, token, "git-receive-pack")

    policy = (await grant(mine.id, "token-mine")).policy
    assert policy.foreign_branches == {squatted}
    assert policy.created_branches == {"openinspect/legacy"}
    assert not policy.decide(RefUpdate(ZERO, SHA, f"refs/heads/{squatted}")).allowed
    assert policy.decide(RefUpdate(ZERO, SHA, f"refs/heads/{mine.branch}-api")).allowed
    # Its own branch exists nowhere yet: it may create it, not move an existing one.
    assert policy.decide(RefUpdate(ZERO, SHA, f"refs/heads/{mine.branch}")).allowed
    assert not policy.decide(RefUpdate(SHA, "2" * 40, f"refs/heads/{mine.branch}")).allowed

    others = (await grant(other.id, "token-other")).policy
    assert others.created_branches == frozenset()  # the legacy name is mine's
    assert not others.decide(RefUpdate(SHA, ZERO, "refs/heads/openinspect/legacy")).allowed

    # Once its branch landed, the session may move it.
    mine_grant = await grant(mine.id, "token-mine")
    landed = RefUpdate(ZERO, SHA, f"refs/heads/{mine.branch}")
    await authority.pushed(mine_grant, [landed], True, "")
    policy = (await grant(mine.id, "token-mine")).policy
    assert policy.decide(RefUpdate(SHA, "2" * 40, f"refs/heads/{mine.branch}")).allowed


async def test_a_replica_that_lost_the_session_records_no_push(
    plane: ControlPlane, origin: Path
) -> None:
    """The push events go under the owner's fence: once another replica took the session
    over (the lease was taken from under the actor), this one writes nothing of them."""
    session = await _session(plane, origin)
    actor = await plane.manager.actor(session.id)
    assert actor.lease is not None and plane.manager.lease_of(session.id) == actor.lease
    await _sandbox(plane, session.id, "sbx_1", "token-1")
    owner, name = plane.origins.slug(session.repo_url)
    grant = await plane.git_authority.authorize(
        session.id, owner, name, "token-1", "git-receive-pack"
    )
    before = await plane.store.events.after(session.id, 0, 500)
    # Another replica takes the session: the lease ends here and is taken again elsewhere.
    assert await plane.store.leases.release(actor.lease)
    taken = await plane.store.leases.acquire(actor.lease.name, "replica-b", 30.0)
    assert taken is not None
    await plane.git_authority.pushed(grant, [RefUpdate(ZERO, SHA, "refs/heads/x")], True, "")
    await plane.git_authority.pushed(grant, [RefUpdate(ZERO, SHA, "refs/heads/y")], False, "no")
    assert await plane.store.events.after(session.id, 0, 500) == before
