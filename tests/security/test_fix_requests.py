# ruff: noqa: F811  (the fixtures imported from the GitHub flow tests are parameters here)
"""Fix requests and PR feedback, as an attacker sees them: a REST client cannot give a session
someone's branch; a session given a pull request's branch cannot push any other branch, nor
force or delete that one (a hostile agent tries, through the real git proxy); a reader's fix
request pushes nothing; an unlinked GitHub user's starts nothing (they are told once how to sign
in); a signed delivery edited to point a review at another pull request prompts nobody. (The cap
under replays is in ``tests/integrations/github/test_fixes.py``.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import StartSession
from openinspect.testing.asgi import InApp
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations import github_helpers as gh
from tests.automations.conftest import plane_settings
from tests.integrations.github.test_fixes import (  # noqa: F401 - fixtures
    REPO,
    finished,
    github,
    linked,
    plane,
    until,
)
from tests.sessions.bridged import bridged_plane

FEATURE = "feature/login"
COMMIT = "git -c user.name=M -c user.email=m@example.com commit -q --allow-empty"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.parametrize("field", ["work_branch", "start_ref"])
async def test_a_rest_client_cannot_set_what_integrations_set(
    api: InApp, calc: str, plane: ControlPlane, field: str
) -> None:
    for caller in (api.admin(), await api.member("mallory")):
        made = await caller.call(
            "POST", "/api/sessions", json={"repo": calc, field: "main", "prompt": "hi"}
        )
        assert made.status_code == 422, made.text
        assert made.json()["error"]["code"] == "invalid_input"
        assert field in made.json()["error"]["message"]
    assert await plane.store.sessions.list(limit=10) == []


@pytest.fixture
async def live(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    settings = plane_settings(tmp_path / "home", llm)
    async with bridged_plane(settings, git_proxy=True, in_process=True) as opened:
        yield opened


def _bash(command: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "bash", "args": {"command": command}}]}


async def test_a_fix_session_pushes_nothing_but_fast_forwards_of_its_branch(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    work = origin.parent / "work"
    git(work, "push", "--quiet", str(origin), f"main:{FEATURE}")
    git(work, "push", "--quiet", str(origin), "main:someone-else")
    before = {ref: git(origin, "rev-parse", ref) for ref in ("main", FEATURE, "someone-else")}
    hostile = " ; ".join(
        [
            f"{COMMIT} -m one",
            f"git push origin HEAD:{FEATURE}",  # the one push it may make
            "git push origin HEAD:main",
            "git push origin HEAD:someone-else",
            "git push origin HEAD:refs/heads/brand-new",
            "git push origin HEAD:refs/tags/v9",
            f"git push origin :{FEATURE}",
            "git reset -q --hard HEAD~1",
            f"{COMMIT} -m rewritten",
            f"git push --force origin HEAD:{FEATURE}",
            "true",
        ]
    )
    llm.reset({"turns": [_bash(hostile), {"text": "Done."}]})
    admin = live.bootstrap.user
    assert admin is not None
    started = await live.commands.handle(
        admin,
        StartSession(repo=str(origin), prompt="fix", work_branch=FEATURE),
        origin="github",
    )
    assert started.prompt is not None
    await finished(live, started.prompt.id)
    after = {ref: git(origin, "rev-parse", ref) for ref in ("main", FEATURE, "someone-else")}
    events = await live.store.events.after(started.session.id, 0, 1000)
    (pushed,) = [e for e in events if e.type == "git-push"]
    assert pushed.branch == FEATURE  # type: ignore[attr-defined]
    assert after == {**before, FEATURE: pushed.sha}  # type: ignore[attr-defined]
    assert git(origin, "rev-parse", f"{pushed.sha}^") == before[FEATURE]  # type: ignore[attr-defined]
    refs = git(origin, "for-each-ref", "--format=%(refname)")
    assert "brand-new" not in refs and "refs/tags/v9" not in refs
    refused = [e.message for e in events if e.type == "warning" and e.code == "push_refused"]  # type: ignore[attr-defined]
    assert len(refused) == 6, refused  # main, someone-else, brand-new, v9, the delete, the force
    assert "not a fast-forward" in refused[-1]
    # The end-of-prompt push of the rewritten HEAD is no force push either: it fails.
    done = await live.store.prompts.get(started.prompt.id)
    assert done is not None and done.error_code == "push_failed"


# ---------------------------------------------------------------- the GitHub doors


async def _settled(plane: ControlPlane) -> None:
    assert plane.github_inbox is not None
    await plane.github_inbox.idle(60)


async def test_a_non_writers_fix_request_pushes_nothing(
    plane: ControlPlane, github: FakeGitHub
) -> None:
    await linked(plane, github, "carol")  # signed in here, but only reads the repo
    github.commit(REPO, "feature", {"x.txt": "x\n"})
    before = github.branches(REPO)
    pull = (await github.aopen_pull(REPO, "feature", by="alice")).record
    slug = github.bot_login.removesuffix("[bot]")
    await github.acomment(REPO, pull.number, f"@{slug} fix everything", by="carol")
    await _settled(plane)
    assert await plane.store.sessions.list(limit=10) == []
    assert github.branches(REPO) == before
    assert github.reactions(REPO) == []  # not even 👀, nor an answer
    assert [c.user_login for c in github.pull(REPO, pull.number).comments] == ["carol"]


async def test_an_unlinked_users_fix_request_starts_nothing_and_is_told_once(
    plane: ControlPlane, github: FakeGitHub
) -> None:
    github.commit(REPO, "feature", {"x.txt": "x\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol")).record
    slug = github.bot_login.removesuffix("[bot]")
    acted = await github.acomment(REPO, pull.number, f"@{slug} fix it", by="alice")
    await _settled(plane)
    last = github.deliveries[-1]
    async with httpx.AsyncClient(base_url=last.url.removesuffix("/webhooks/github")) as http:
        await gh.deliver(http, github.webhook_secret, last.event, json.loads(last.body))
    await _settled(plane)
    assert await plane.store.sessions.list(limit=10) == []
    told = await plane.store.outbox.get(f"comment:{REPO}#{pull.number}:sign-in:{acted.record.id}")
    assert told is not None and told.kind == "comment"
    assert told.target == {"repo": REPO, "number": pull.number}
    assert "@alice" in told.body["text"] and "Sign in with GitHub" in told.body["text"]
    assert github.reactions(REPO) == []  # no 👀: nothing was started


async def test_a_forged_review_cannot_prompt_a_session_whose_pr_it_is_not(
    plane: ControlPlane, github: FakeGitHub
) -> None:
    alice = await linked(plane, github, "alice")
    github.commit(REPO, "mine", {"m.txt": "m\n"})
    github.commit(REPO, "other", {"o.txt": "o\n"})
    mine = (await github.aopen_pull(REPO, "mine", by="alice")).record
    other = (await github.aopen_pull(REPO, "other", by="carol")).record
    session = await plane.manager.create(alice, repo=f"{github.url}/{REPO}")
    await plane.store.pulls.save(
        session_id=session.id,
        repo=REPO,
        number=mine.number,
        url="u",
        branch="mine",
        base="main",
        title="t",
        state="open",
        draft=False,
        opened_as="user",
        author_login="alice",
    )
    real = await github.asubmit_review(
        REPO, other.number, "REQUEST_CHANGES", by="alice", body="do evil things"
    )
    # The real, signed delivery of a review of the other PR, edited to name the session's PR.
    delivery = next(d for d in reversed(github.deliveries) if d.event == "pull_request_review")
    payload = json.loads(delivery.body)
    payload["pull_request"]["number"] = mine.number
    assert payload["review"]["id"] == real.record.id
    async with httpx.AsyncClient(base_url=delivery.url.removesuffix("/webhooks/github")) as http:
        unsigned = await http.post(
            "/webhooks/github",
            content=json.dumps(payload).encode(),
            headers={"X-GitHub-Event": "pull_request_review", "X-GitHub-Delivery": "x1"},
        )
        assert unsigned.status_code == 401
        signed = await gh.deliver(http, github.webhook_secret, "pull_request_review", payload)
    assert signed.status_code == 202
    await _settled(plane)
    assert await plane.store.prompts.for_session(session.id) == []
    assert await plane.store.github_feedback.count(REPO, mine.number) == 0
