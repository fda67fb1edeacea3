"""Recovery after a crash: a push the origin took but the log never recorded is recorded once,
and only when the origin's tip is the session's own work. The origin is really left ahead of the
log (a real push to a real bare repo, no git-push event), then the real recovery runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.domain.events import GitCommit
from openinspect.domain.models import Author, Prompt, Session
from openinspect.settings import SandboxSettings, Settings
from openinspect.testing.repos import git_output
from tests.store.records import prompt_record


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as opened:
        yield opened


async def running_prompt(plane: ControlPlane, session: Session, author: Author) -> Prompt:
    """A prompt that the dead server was running."""
    prompt = prompt_record(session.id, author, "fix it")
    await plane.store.prompts.create(prompt, "print")
    assert await plane.store.prompts.set_status(prompt.id, "running", only_if=("queued",))
    return prompt


async def restart(plane: ControlPlane) -> None:
    """What a restart does to the sessions: the server stops (its actors close, its leases are
    freed), the next one takes over the sessions that have work."""
    await plane.manager.close()
    await plane.manager.recover()


def push_commit(origin: Path, work: Path, branch: str, name: str) -> str:
    """Commit ``name`` in ``work`` and push it to ``branch`` of the origin; the new sha."""
    (work / name).write_text(f"{name}\n")
    git_output("add", name, cwd=work)
    git_output("-c", "user.name=A", "-c", "user.email=a@e", "commit", "-qm", name, cwd=work)
    git_output("push", "-q", str(origin), f"HEAD:refs/heads/{branch}", cwd=work)
    return git_output("rev-parse", "HEAD", cwd=work).strip()


async def pushes(plane: ControlPlane, session_id: str) -> list[tuple[str, str | None]]:
    events = await plane.store.events.after(session_id, 0, 1000)
    return [(e.sha, e.prompt_id) for e in events if e.type == "git-push"]


async def test_a_push_that_landed_before_the_crash_is_recorded_once(
    plane: ControlPlane, origin: Path, tmp_path: Path
) -> None:
    admin = (await plane.store.users.list_all())[0]
    author = Author.of(admin)
    session = await plane.manager.create(admin, repo=str(origin))
    work = tmp_path / "work"
    git_output("clone", "-q", str(origin), str(work), cwd=tmp_path)

    # The prompt committed (the log has it), the origin took the push, the server died.
    prompt = await running_prompt(plane, session, author)
    sha = push_commit(origin, work, session.branch, "fix.txt")
    await plane.manager.deps.events.append(
        GitCommit(
            session_id=session.id,
            prompt_id=prompt.id,
            sha=sha,
            branch=session.branch,
            message="fix it",
            author=author,
            files_changed=1,
        )
    )
    assert await pushes(plane, session.id) == []

    await restart(plane)

    assert await pushes(plane, session.id) == [(sha, prompt.id)]
    events = await plane.store.events.after(session.id, 0, 1000)
    assert [e.type for e in events[-2:]] == ["git-push", "prompt-finished"]
    assert events[-1].status == "interrupted"  # type: ignore[union-attr]
    assert await plane.store.branches.head(session.id, session.branch) == sha

    # The next crash finds the log in step with the origin: nothing is recorded twice.
    await running_prompt(plane, session, author)
    await restart(plane)
    assert await pushes(plane, session.id) == [(sha, prompt.id)]

    # Someone pushed to the branch outside openinspect: that is not the session's push.
    push_commit(origin, work, session.branch, "human.txt")
    await running_prompt(plane, session, author)
    await restart(plane)
    assert await pushes(plane, session.id) == [(sha, prompt.id)]


async def test_a_branch_missing_on_the_origin_records_nothing(
    plane: ControlPlane, origin: Path
) -> None:
    admin = (await plane.store.users.list_all())[0]
    session = await plane.manager.create(admin, repo=str(origin))
    prompt = await running_prompt(plane, session, Author.of(admin))
    await restart(plane)
    assert await pushes(plane, session.id) == []
    events = await plane.store.events.after(session.id, 0, 1000)
    assert events[-1].type == "prompt-finished" and events[-1].prompt_id == prompt.id
