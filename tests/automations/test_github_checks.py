"""The acceptance item, end to end: a session opens a pull request on the fake GitHub; a GitHub
Actions check fails on its head and GitHub's signed webhooks reach the server over HTTP; the
session gets a follow-up prompt carrying the check's log excerpt; the scripted model edits a
file; the fake GitHub's repo shows a new commit on the same branch."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn

from openinspect.api.app import create_app
from openinspect.controlplane import ControlPlane
from openinspect.testing.github import FakeGitHub, gitops
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations import github_helpers as gh
from tests.automations.conftest import admin, make, settled

MARKER = "AssertionError: widgets are 3x too slow (zebra-77)"
LOG = (
    "".join(f"2026-12-02T10:00:00Z step {n}\n" for n in range(1000)) + f"\x1b[31m{MARKER}\x1b[0m\n"
)
COMMIT = 'git -c user.name=Agent -c user.email=agent@example.com commit -qam "agent work"'


def bash(command: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "bash", "args": {"command": command}}]}


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    with gh.fake_github(origin) as opened:
        yield opened


@contextlib.asynccontextmanager
async def listening(plane: ControlPlane) -> AsyncIterator[str]:
    """The API on a real socket of this loop (the fake GitHub posts its webhooks there)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(plane.settings, plane), lifespan="off", log_level="warning")
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def test_a_failing_check_on_a_sessions_pull_request_is_fixed_on_the_same_branch(
    tmp_path: Path, llm: ScriptedLLMServer, fake: FakeGitHub
) -> None:
    llm.reset(
        {
            "turns": [
                # The session's first prompt: change, push, open a pull request.
                bash(f"echo '# faster' >> calc.py && {COMMIT} && git push 2>&1; echo exit=$?"),
                {
                    "tool_calls": [
                        {"name": "create_pull_request", "args": {"title": "Speed", "body": "."}}
                    ]
                },
                {"text": "Opened."},
                # The follow-up: the agent reads the log and edits a file (the session commits
                # and pushes it when the prompt ends).
                bash("echo 'SPEED = 3' >> calc.py; echo edited"),
                {"text": "Fixed the speed."},
            ]
        }
    )
    async with gh.github_plane(tmp_path / "home", llm, fake) as (plane, _), listening(plane) as url:
        fake.subscribe_webhooks(f"{url}/webhooks/github")
        made = await make(
            plane,
            gh.repo_url(fake),
            {"kind": "github", "events": ["check_failed"]},
            instructions="Make CI green again.",
        )
        user = admin(plane)
        session = await plane.manager.create(user, repo=gh.repo_url(fake))
        actor = await plane.manager.actor(session.id)
        first = await actor.submit(user, "Make widgets faster and open a PR")
        async with asyncio.timeout(120):
            while (got := await plane.store.prompts.get(first.id)) and got.status in (
                "queued",
                "running",
            ):
                await asyncio.sleep(0.05)
        assert got is not None and got.status == "success", got
        [pull] = await plane.store.pulls.for_session(session.id)
        head_before = fake.branch_sha(gh.REPO, session.branch)
        assert head_before is not None and fake.pull(gh.REPO, pull.number).head_sha == head_before

        # CI fails on the PR's head: GitHub sends check_run and workflow_run, both signed.
        sent = await fake.afail_check(gh.REPO, pull.number, name="tests (3.12)", log=LOG)
        assert [(d.event, d.status_code) for d in sent] == [
            ("check_run", 202),
            ("workflow_run", 202),
        ]
        [run] = await plane.store.automations.runs(made.automation.id, limit=10)
        assert run.follow_up and run.session_id == session.id  # one prompt for both deliveries
        assert run.key == f"fix:{gh.REPO}#{pull.number}:{head_before}"
        done = await settled(plane, run.id)
        assert done.status == "succeeded", done

        # The follow-up prompt in that session carried the log excerpt, as untrusted data.
        prompts = await plane.store.prompts.for_session(session.id)
        assert len(prompts) == 2 and prompts[1].id == done.prompt_id
        fix = prompts[1].content
        assert fix.startswith("Make CI green again.")
        assert "Check: tests (3.12)" in fix and "Conclusion: failure" in fix
        assert MARKER in fix and "\x1b[" not in fix  # the log's end, without terminal escapes
        assert "step 999" in fix and "step 700\n" not in fix  # its last 200 lines at most
        begin = fix.index("BEGIN UNTRUSTED DATA")
        assert begin < fix.index(MARKER) < fix.rindex("END UNTRUSTED DATA")
        assert MARKER in str(llm.requests[-2].body["messages"])  # what the model was sent
        assert len(await plane.store.sessions.list(limit=50)) == 1  # no second session

        # The fix landed on the same branch, on top of the failing head.
        head_after = fake.branch_sha(gh.REPO, session.branch)
        assert head_after not in (None, head_before)
        bare = fake.bare_path(gh.REPO)
        assert gitops.is_ancestor(bare, head_before, head_after)
        shown = gitops.git("show", f"{head_after}:calc.py", cwd=bare)
        assert "SPEED = 3" in shown
        assert fake.pull(gh.REPO, pull.number).state == "open"
