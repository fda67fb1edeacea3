"""Fix requests and PR feedback, the whole path: GitHub users act on the fake GitHub, which
sends the real signed webhooks to the real API on loopback; the sessions really run (the runtime
in-process, the scripted model, git through the proxy to the fake GitHub).

- "@bot fix …" on a same-repo pull request → a commit on that pull request's branch, by the
  person who asked;
- on a fork's pull request → a new branch and a new pull request into the same base;
- changes requested on a session's pull request → one follow-up prompt in that session; past the
  cap of 3, a review makes no prompt, and one "cap reached" comment is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import StartSession
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, User
from openinspect.integrations.github.deps import BotDeps
from openinspect.integrations.github.fixes import ANSWER, FIX_BRANCH, FIX_PR, FixReplies
from openinspect.integrations.github.fixes import CONSUMER as FIXES_CONSUMER
from openinspect.settings import GitHubBotSettings, ServerSettings
from openinspect.store.github_feedback import ATTEMPT_LIMIT, PROMPTED, feedback_key
from openinspect.store.identities import NewUser
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations import github_helpers as gh
from tests.automations.conftest import plane_settings
from tests.integrations.slack.conftest import _free_port
from tests.integrations.slack.test_acceptance import served
from tests.sessions.bridged import bridged_plane

REPO = "acme/widgets"
WAIT_S = 120.0


@pytest.fixture
def github(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        for login in ("acme", "alice", "carol", "dave"):
            gh.add_user(login)
        gh.create_repo(
            REPO, source=origin, collaborators={"alice": "push", "carol": "pull", "dave": "pull"}
        )
        gh.add_installation([REPO])
        yield gh


@contextlib.asynccontextmanager
async def bot_plane(
    tmp_path: Path, llm: ScriptedLLMServer, github: FakeGitHub, bot: GitHubBotSettings
) -> AsyncIterator[ControlPlane]:
    """A served control plane with the GitHub bot ``bot``, subscribed to ``github``'s hooks."""
    port = _free_port()
    settings = plane_settings(tmp_path / "home", llm)
    gh_settings = github.settings(client_id=None, client_secret=None, access_check=False)
    settings = settings.model_copy(
        update={
            "github": gh_settings.model_copy(update={"bot": bot}),
            "server": ServerSettings(host="127.0.0.1", port=port),
        }
    )
    async with (
        bridged_plane(settings, git_proxy=True, in_process=True) as opened,
        served(opened, port) as url,
    ):
        github.subscribe_webhooks(f"{url}/webhooks/github")
        yield opened


@pytest.fixture
async def plane(
    tmp_path: Path, llm: ScriptedLLMServer, github: FakeGitHub
) -> AsyncIterator[ControlPlane]:
    # No auto-review here: a review session would take the scripted model's turns.
    async with bot_plane(tmp_path, llm, github, GitHubBotSettings(auto_review=False)) as opened:
        yield opened


async def linked(plane: ControlPlane, github: FakeGitHub, login: str) -> User:
    """``login``'s openinspect account, signed in with their GitHub account."""
    gh_user = github.state.require_user(login)
    signed = await plane.store.identities.sign_in(
        provider="github",
        subject=str(gh_user.id),
        login=login,
        avatar_url=None,
        tokens=None,
        new_user=NewUser(login, f"{login}@example.com", login, f"{login}@example.com", "member"),
        make_admin=False,
    )
    return signed.user


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = WAIT_S) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            while not (found := await check()):
                await asyncio.sleep(0.05)
            return found
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout_s:g} s") from None


async def finished(plane: ControlPlane, prompt_id: str) -> Prompt:
    async def done() -> Prompt | None:
        found = await plane.store.prompts.get(prompt_id)
        return found if found and found.status in FINISHED_PROMPT_STATUSES else None

    prompt: Prompt = await until(done, f"end of prompt {prompt_id}")
    return prompt


def turn(tool: str, **args: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "args": args}]}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_a_fix_on_a_same_repo_pr_is_a_commit_on_its_branch_by_the_asker(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    alice = await linked(plane, github, "alice")
    before = github.commit(REPO, "feature", {"calc.py": "def add(a, b):\n    return a - b\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol", title="Add things")).record
    llm.reset(
        {
            "turns": [
                turn("bash", command="sed -i 's/a - b/a + b/' calc.py"),
                {"text": "Fixed the sign in add."},
            ]
        }
    )
    slug = github.bot_login.removesuffix("[bot]")
    acted = await github.acomment(REPO, pull.number, f"@{slug} fix the failing test", by="alice")
    comment_id = acted.record.id

    async def decided() -> Any:
        return await plane.store.github_feedback.get(f"comment:{REPO}:{comment_id}")

    decision = await until(decided, "fix decision")
    assert decision.outcome == FIX_BRANCH and decision.prompt_id is not None
    done = await finished(plane, decision.prompt_id)
    assert done.status == "success", done
    session = await plane.store.sessions.get(decision.session_id)
    assert session is not None
    assert (session.branch, session.base_branch, session.origin) == ("feature", "main", "github")
    assert session.creator_id == alice.id
    assert session.origin_ref == f"github:{REPO}#{pull.number}"

    head = github.branch_sha(REPO, "feature")
    bare = github.bare_path(REPO)
    assert head != before and git(bare, "rev-parse", f"{head}^") == before  # a fast-forward
    assert git(bare, "log", "-1", "--format=%an <%ae>|%cn", head) == (
        "alice <alice@example.com>|openinspect"
    )
    assert "a + b" in git(bare, "show", f"{head}:calc.py")
    assert [p.number for p in github.pulls(REPO)] == [pull.number]  # no new pull request

    # 👀 on the comment, decided once (the outbox delivers it).
    eyes = await plane.store.outbox.get(f"reaction:{REPO}:issue_comment:{comment_id}")
    assert eyes is not None and eyes.body == {"content": "eyes"}

    async def reacted() -> list[Any] | None:
        return github.reactions(REPO, f"issue_comment:{comment_id}") or None

    (posted,) = await until(reacted, "👀 on GitHub")
    assert (posted.content, posted.user_login) == ("eyes", github.bot_login)


async def test_a_fix_on_a_forks_pr_is_a_new_branch_and_pr_and_reviews_feed_back_capped(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    await linked(plane, github, "alice")
    fork = github.fork(REPO, "dave")
    github.commit(fork.full_name, "idea", {"idea.txt": "from the fork\n"}, by="dave")
    pull = (await github.aopen_pull(REPO, "dave:idea", by="dave", title="An idea")).record
    feedback = [{"text": f"Addressed review {i}."} for i in range(1, 4)]
    llm.reset(
        {
            "turns": [
                turn("bash", command="cat idea.txt && echo '# fixed' >> calc.py"),
                turn("create_pull_request", title="Fix for the idea", body=f"Fixes #{pull.number}"),
                {"text": "Opened a pull request with the fix."},
                *feedback,
            ]
        }
    )
    slug = github.bot_login.removesuffix("[bot]")
    acted = await github.acomment(REPO, pull.number, f"@{slug} fix the idea", by="alice")

    async def decided() -> Any:
        return await plane.store.github_feedback.get(f"comment:{REPO}:{acted.record.id}")

    decision = await until(decided, "fix decision")
    assert decision.outcome == FIX_PR
    done = await finished(plane, decision.prompt_id)
    assert done.status == "success", done
    session = await plane.store.sessions.get(decision.session_id)
    assert session is not None and not session.works_on_existing_branch
    (opened,) = await plane.store.pulls.for_session(session.id)
    new = github.pull(REPO, opened.number)
    assert (new.head, new.base, new.head_repo) == (session.branch, "main", None)
    bare = github.bare_path(REPO)
    assert git(bare, "show", f"{session.branch}:idea.txt") == "from the fork"  # from its head

    # Changes requested on the session's pull request: one follow-up prompt each, up to 3.
    async def review(i: int) -> None:
        await github.asubmit_review(
            REPO, opened.number, "REQUEST_CHANGES", by="alice", body=f"Please change {i}"
        )

    async def prompts() -> list[Prompt]:
        return await plane.store.prompts.for_session(session.id)

    for i in range(1, 4):
        await review(i)
        found = await until(lambda i=i: _has(prompts, i + 1), f"feedback prompt {i}")
        await finished(plane, found[-1].id)
        assert f"Please change {i}" in found[-1].content
        assert "@alice reviewed the pull request you opened" in found[-1].content
        assert "BEGIN UNTRUSTED DATA" in found[-1].content
    await review(4)
    ledger = plane.store.github_feedback

    async def limited() -> int:
        return await ledger.count(REPO, opened.number, ATTEMPT_LIMIT)

    await until(limited, "the cap's decision")
    assert await ledger.count(REPO, opened.number, PROMPTED) == 3
    assert len(await prompts()) == 4  # the fix, then three feedback prompts

    cap = await plane.store.outbox.get(f"comment:{REPO}#{opened.number}:attempt_limit")
    assert cap is not None and "3 times already" in cap.body["text"]
    # The same review again under a new delivery id (a replay): nothing new is decided.
    last = github.deliveries[-1]
    assert last.event == "pull_request_review"
    async with httpx.AsyncClient(base_url=last.url.removesuffix("/webhooks/github")) as http:
        again = await gh.deliver(http, github.webhook_secret, last.event, json.loads(last.body))
    assert again.status_code == 202 and again.json()["outcome"] == "ignored", again.text
    await review(5)
    await until(lambda: _count(ledger, opened.number, 2), "the second refused review")
    assert len(await prompts()) == 4

    # One comment by the App on the pull request, however many reviews came (the github sender
    # posted it; a second decision would have been a second row, and a second post).
    async def posted() -> list[str] | None:
        found = [
            c.body
            for c in github.pull(REPO, opened.number).comments
            if c.user_login == github.bot_login and "3 times already" in c.body
        ]
        return found or None

    assert len(await until(posted, "the cap's comment on GitHub")) == 1


async def _has(prompts: Callable[[], Awaitable[list[Prompt]]], n: int) -> list[Prompt] | None:
    found = await prompts()
    return found if len(found) >= n else None


async def _count(ledger: Any, number: int, n: int) -> bool:
    return bool(await ledger.count(REPO, number, ATTEMPT_LIMIT) >= n)


async def test_a_fix_asked_in_a_review_comment_gets_the_line_and_its_hunk(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    await linked(plane, github, "alice")
    github.commit(REPO, "feature", {"calc.py": "def add(a, b):\n    return a - b\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol")).record
    llm.reset({"turns": [{"text": "Nothing to change."}]})
    slug = github.bot_login.removesuffix("[bot]")
    acted = await github.areview_comment(
        REPO, pull.number, f"@{slug} fix this sign", by="alice", path="calc.py", line=2
    )

    async def decided() -> Any:
        return await plane.store.github_feedback.get(f"review-comment:{REPO}:{acted.record.id}")

    decision = await until(decided, "fix decision")
    assert decision.outcome == FIX_BRANCH
    prompt = await finished(plane, decision.prompt_id)
    assert prompt.content.startswith("@alice asked on GitHub")
    assert "(about calc.py, line 2)" in prompt.content and "return a - b" in prompt.content
    assert "fix this sign" in prompt.content.split("BEGIN UNTRUSTED DATA")[0]

    eyes = await plane.store.outbox.get(f"reaction:{REPO}:review_comment:{acted.record.id}")
    assert eyes is not None
    # Its review (GitHub sends one for a lone comment) is on a PR no session opened: no prompt.
    assert len(await plane.store.prompts.for_session(decision.session_id)) == 1


async def test_an_answer_decided_after_its_prompt_ended_is_posted_once(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    """The race a quick prompt runs: it ends, and the feed passes its end, before the decision
    that it answers a comment is in the store. Recording the decision then answers it, and the
    feed and a replayed catch-up do not answer again."""
    llm.reset({"turns": [{"text": "Forty-two."}]})
    github.commit(REPO, "feature", {"calc.py": "x = 1\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol", title="WIP")).record
    asked = await github.acomment(REPO, pull.number, "What is it?", by="alice")
    user = await linked(plane, github, "alice")
    command = StartSession(
        repo=f"{github.url}/{REPO}", base_branch="main", title="Q", prompt="What is it?"
    )
    started = await plane.commands.handle(user, command, origin="github")
    assert started.prompt is not None
    await finished(plane, started.prompt.id)
    head = await plane.store.feed.head()

    async def passed() -> bool:
        return await plane.store.feed.cursor(FIXES_CONSUMER) >= head

    await until(passed, "the feed past the prompt's end")
    recorded = await plane.store.github_feedback.record(
        key=feedback_key(ANSWER, REPO, asked.record.id),
        repo=REPO,
        number=pull.number,
        outcome=ANSWER,
        session_id=started.session.id,
        prompt_id=started.prompt.id,
    )
    assert plane.people.github is not None
    deps = BotDeps(plane.settings, plane.store, plane.bus, plane.commands, plane.people.github)
    replies = FixReplies(deps)
    await replies.catch_up(recorded.feedback)
    await replies.catch_up(recorded.feedback)

    async def answered() -> list[Any]:
        return [
            c
            for c in github.pull(REPO, pull.number).comments
            if c.user_login == github.bot_login and c.body.startswith("Forty-two.")
        ]

    key = f"comment:{started.session.id}:{started.prompt.id}"

    async def posted() -> bool:
        row = await plane.store.outbox.get(key)
        return row is not None and row.posted_at is not None

    await until(posted, "the answer marked posted")
    assert len(await answered()) == 1
