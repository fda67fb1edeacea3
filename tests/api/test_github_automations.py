"""GitHub automations through ``/webhooks/github``: signed deliveries fire matching automations
(a run, a session), others do not, a duplicate delivery makes one run, and a failed check on a
session's pull request prompts that session, at most ``max_fix_attempts`` times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.automations import AutomationRun
from openinspect.testing.asgi import InApp
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations import github_helpers as gh
from tests.automations.conftest import admin, make, settled


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    with gh.fake_github(origin) as opened:
        yield opened


@pytest.fixture
async def opened(
    tmp_path: Path, llm: ScriptedLLMServer, fake: FakeGitHub
) -> AsyncIterator[tuple[ControlPlane, InApp]]:
    llm.reset({"turns": [{"text": "On it."}] * 20})
    async with gh.github_plane(tmp_path / "home", llm, fake) as both:
        yield both


async def runs_of(plane: ControlPlane, automation_id: str) -> list[AutomationRun]:
    return await plane.store.automations.runs(automation_id, limit=100)


async def test_a_matching_pull_request_starts_a_session_and_others_do_not(
    opened: tuple[ControlPlane, InApp], fake: FakeGitHub
) -> None:
    plane, app = opened
    made = await make(
        plane,
        gh.repo_url(fake),
        {"kind": "github", "events": ["pull_request.opened"], "branches": ["main"]},
        instructions="Review the pull request.",
    )
    other = await make(
        plane,
        gh.repo_url(fake),
        {"kind": "github", "events": ["issue_comment"]},
        name="comments",
    )
    secret = fake.webhook_secret

    answer = await gh.deliver(app.http, secret, "pull_request", gh.pull_request("opened"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "processed"
    [run] = await runs_of(plane, made.automation.id)
    assert (run.trigger, run.key, run.follow_up) == ("github", f"pr:12:opened:{gh.SHA}", False)
    assert run.origin_ref == f"github:{gh.REPO}#12"
    done = await settled(plane, run.id)
    assert done.status == "succeeded", done
    assert done.session_id is not None
    session = await plane.store.sessions.get(done.session_id)
    assert session is not None and session.origin == "github"
    prompts = await plane.store.prompts.for_session(done.session_id)
    first = prompts[0].content
    assert first.startswith("Review the pull request.")
    assert "BEGIN UNTRUSTED DATA" in first and "Pull request #12 opened: Faster widgets" in first
    assert await runs_of(plane, other.automation.id) == []

    # Not fired: another action, another repo, a base branch the filter leaves out.
    for event, payload in [
        ("pull_request", gh.pull_request("edited")),
        ("pull_request", gh.pull_request("opened", number=13, repo="acme/other")),
        (
            "pull_request",
            gh.pull_request(
                "opened", number=14, base={"ref": "dev"}, head={"ref": "x", "sha": gh.SHA}
            ),
        ),
        ("push", {"ref": "refs/heads/main", "repository": gh.repository()}),
    ]:
        answer = await gh.deliver(app.http, secret, event, payload)
        assert answer.status_code == 202, answer.text
        assert answer.json()["outcome"] == "ignored", (event, payload["action"])
    assert len(await runs_of(plane, made.automation.id)) == 1

    # A comment fires only the comment automation.
    answer = await gh.deliver(app.http, secret, "issue_comment", gh.issue_comment())
    assert answer.json()["outcome"] == "processed"
    [comment_run] = await runs_of(plane, other.automation.id)
    assert comment_run.key == "comment:9001"
    assert (await settled(plane, comment_run.id)).status == "succeeded"
    assert len(await runs_of(plane, made.automation.id)) == 1


async def test_duplicate_deliveries_make_one_run(
    opened: tuple[ControlPlane, InApp], fake: FakeGitHub
) -> None:
    plane, app = opened
    made = await make(plane, gh.repo_url(fake), {"kind": "github", "events": ["issue_comment"]})
    secret = fake.webhook_secret
    payload = gh.issue_comment(comment_id=77)
    # The same delivery redelivered, and the same comment in new deliveries, in parallel.
    answers = await asyncio.gather(
        *[
            gh.deliver(app.http, secret, "issue_comment", payload, "same-delivery")
            for _ in range(5)
        ],
        *[gh.deliver(app.http, secret, "issue_comment", payload) for _ in range(5)],
    )
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["outcome"] for a in answers).count("duplicate") >= 4
    [run] = await runs_of(plane, made.automation.id)
    assert run.key == "comment:77"
    done = await settled(plane, run.id)
    assert done.status == "succeeded"
    assert len(await plane.store.sessions.list(limit=50)) == 1


async def test_conditions_are_decided_on_the_whole_payload(
    opened: tuple[ControlPlane, InApp], fake: FakeGitHub
) -> None:
    plane, app = opened
    made = await make(
        plane,
        gh.repo_url(fake),
        {"kind": "github", "events": ["issue_comment"]},
        conditions=[{"path": "$.comment.body", "op": "matches", "value": "^/fix"}],
    )
    secret = fake.webhook_secret
    ignored = await gh.deliver(app.http, secret, "issue_comment", gh.issue_comment(1, body="hi"))
    assert ignored.json()["outcome"] == "ignored"
    fired = await gh.deliver(app.http, secret, "issue_comment", gh.issue_comment(2, body="/fix it"))
    assert fired.json()["outcome"] == "processed"
    [run] = await runs_of(plane, made.automation.id)
    assert run.key == "comment:2"
    assert (await settled(plane, run.id)).status == "succeeded"


async def session_with_pull(plane: ControlPlane, fake: FakeGitHub, number: int) -> tuple[str, str]:
    """A session of the admin's with an open pull request record (as opening one saves it)."""
    user = admin(plane)
    session = await plane.manager.create(user, repo=gh.repo_url(fake))
    await plane.store.pulls.save(
        session_id=session.id,
        repo=gh.REPO,
        number=number,
        url=f"{fake.url}/{gh.REPO}/pull/{number}",
        branch=session.branch,
        base="main",
        title="Work",
        state="open",
        draft=False,
        opened_as="app",
        author_login=None,
    )
    return session.id, session.branch


async def test_a_failed_check_on_a_sessions_pull_request_prompts_it_up_to_the_cap(
    opened: tuple[ControlPlane, InApp], fake: FakeGitHub
) -> None:
    plane, app = opened
    made = await make(
        plane,
        gh.repo_url(fake),
        {"kind": "github", "events": ["check_failed"], "max_fix_attempts": 2},
        instructions="Fix CI.",
    )
    session_id, branch = await session_with_pull(plane, fake, 12)
    secret = fake.webhook_secret

    def failed(sha: str, check_id: int) -> dict[str, Any]:
        return gh.check_run(12, branch=branch, head_sha=sha, check_id=check_id)

    first = await gh.deliver(app.http, secret, "check_run", failed("1" * 40, 1))
    assert first.json()["outcome"] == "processed"
    # A second failing check of the same commit: the same fix prompt, not another.
    again = await gh.deliver(app.http, secret, "check_run", failed("1" * 40, 2))
    assert again.json()["outcome"] == "processed"
    [run] = await runs_of(plane, made.automation.id)
    assert run.follow_up and run.session_id == session_id
    assert run.key == f"fix:{gh.REPO}#12:{'1' * 40}"
    assert (await settled(plane, run.id)).status == "succeeded"
    prompts = await plane.store.prompts.for_session(session_id)
    fix = prompts[-1].content
    assert fix.startswith("Fix CI.")
    assert "A check failed on this session's pull request #12" in fix
    assert "Check: tests" in fix and "Conclusion: failure" in fix
    assert "attempt 1 of 2" in fix

    second = await gh.deliver(app.http, secret, "check_run", failed("2" * 40, 3))
    assert second.json()["outcome"] == "processed"
    third = await gh.deliver(app.http, secret, "check_run", failed("3" * 40, 4))
    assert third.json()["outcome"] == "processed"
    runs = sorted(await runs_of(plane, made.automation.id), key=lambda r: r.created_at)
    assert [r.follow_up for r in runs] == [True, True, True]
    assert (await settled(plane, runs[1].id)).status == "succeeded"
    capped = runs[2]
    assert capped.status == "skipped"
    assert capped.reason == "2 fix attempts already made for PR #12 (at most 2)"
    assert len(await plane.store.prompts.for_session(session_id)) == 2
    assert len(await plane.store.sessions.list(limit=50)) == 1  # no new session either


async def test_a_failed_check_elsewhere_starts_a_session(
    opened: tuple[ControlPlane, InApp], fake: FakeGitHub
) -> None:
    plane, app = opened
    made = await make(plane, gh.repo_url(fake), {"kind": "github", "events": ["check_failed"]})
    payload = gh.check_run(99, branch="someone/else", check_id=5)  # no session opened PR #99
    answer = await gh.deliver(app.http, fake.webhook_secret, "check_run", payload)
    assert answer.json()["outcome"] == "processed"
    [run] = await runs_of(plane, made.automation.id)
    assert (run.key, run.follow_up) == ("check:5", False)
    done = await settled(plane, run.id)
    assert done.status == "succeeded" and done.session_id is not None
    [prompt] = await plane.store.prompts.for_session(done.session_id)
    assert "Check 'tests' ended failure" in prompt.content
    assert "No log:" in prompt.content  # not a GitHub Actions check: no job log
