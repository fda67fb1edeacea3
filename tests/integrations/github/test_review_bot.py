"""The review bot's triggers, the whole path: GitHub users act on the fake GitHub, which sends the
real signed webhooks to the real API on loopback; the review sessions really start (the runtime
in-process, the scripted model).

- a pull request opened → 👀 on it by the App, and one review session on its head with the diff
  fenced as untrusted data;
- a draft is skipped; ready for review → a review;
- a review requested from the bot → a review;
- a mention (not a fix request) → 👀 on the comment and an answering session, whose final
  message is posted as the App's reply on the pull request;
- a reply in a review thread the App started → an answer in that thread; a reply in someone
  else's thread → nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import Session
from openinspect.scm.base import RepoRef, ReviewComment
from openinspect.settings import GitHubBotSettings
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.integrations.github.test_fixes import REPO, bot_plane, github, until

__all__ = ["github"]  # the fixture, shared with the fix-request tests


@pytest.fixture
async def plane(
    tmp_path: Path, llm: ScriptedLLMServer, github: FakeGitHub
) -> AsyncIterator[ControlPlane]:
    async with bot_plane(tmp_path, llm, github, GitHubBotSettings()) as opened:
        yield opened


async def sessions(cp: ControlPlane, number: int) -> list[Session]:
    ref = f"github:{REPO}#{number}"
    return [s for s in await cp.store.sessions.list(limit=200) if s.origin_ref == ref]


async def started(cp: ControlPlane, number: int, what: str) -> list[Session]:
    """The sessions on pull request ``number``, once there is one."""
    return list(await until(lambda: sessions(cp, number), what))


async def first_prompt(cp: ControlPlane, session: Session) -> str:
    async def queued() -> list[Any]:
        return await cp.store.prompts.for_session(session.id)

    (prompt, *_) = await until(queued, "the session's prompt")
    return str(prompt.content)


async def test_a_pr_opened_is_acknowledged_and_reviewed_in_a_session(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    llm.reset({"turns": [{"text": "Looks fine."}]})
    github.commit(REPO, "feature", {"calc.py": "def add(a, b):\n    return a - b\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol", title="Add")).record

    async def eyes() -> Any:
        return await plane.store.outbox.get(f"reaction:{REPO}:issue:{pull.number}")

    reaction = await until(eyes, "the 👀 on the pull request, decided")
    assert reaction.body == {"content": "eyes"}

    (session,) = await started(plane, pull.number, "the review session")
    assert session.origin == "github"
    content = await first_prompt(plane, session)
    assert "submit_review" in content
    assert "return a - b" in content  # the diff, at hand
    assert "untrusted" in content.lower()


async def test_a_draft_is_skipped_until_it_is_ready(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    llm.reset({"turns": [{"text": "Looks fine."}]})
    github.commit(REPO, "feature", {"calc.py": "x = 1\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol", title="WIP", draft=True)).record
    assert plane.github_inbox is not None
    await plane.github_inbox.idle()
    assert await sessions(plane, pull.number) == []
    await github.aready_for_review(REPO, pull.number, by="carol")

    await started(plane, pull.number, "the review session once ready")


async def test_a_mention_is_acknowledged_on_the_comment_and_answered(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    llm.reset({"turns": [{"text": "It adds two numbers."}]})
    github.commit(REPO, "feature", {"calc.py": "x = 1\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol", title="WIP", draft=True)).record
    slug = github.bot_login.removesuffix("[bot]")
    acted = await github.acomment(REPO, pull.number, f"@{slug} what does this do?", by="alice")

    async def eyes() -> Any:
        return await plane.store.outbox.get(f"reaction:{REPO}:issue_comment:{acted.record.id}")

    await until(eyes, "the 👀 on the comment, decided")

    (session,) = await started(plane, pull.number, "the answering session")
    assert "what does this do?" in await first_prompt(plane, session)

    async def answered() -> list[str]:
        comments = github.pull(REPO, pull.number).comments
        return [c.body for c in comments if c.user_login == github.bot_login]

    (answer,) = await until(answered, "the App's answer on the pull request")
    assert answer.startswith("It adds two numbers.") and f"/sessions/{session.id}" in answer


async def test_a_reply_in_the_bots_review_thread_is_answered_in_that_thread(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    llm.reset({"turns": [{"text": "Because x must start at one."}]})
    github.commit(REPO, "feature", {"calc.py": "x = 1\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol", title="WIP", draft=True)).record
    app = plane.people.github
    assert app is not None
    line = ReviewComment(path="calc.py", body="Why one?", line=1)
    await app.create_review(RepoRef.parse(REPO), pull.number, "A question.", "COMMENT", [line])
    (root,) = github.review_comments(REPO, pull.number)
    theirs = await github.areview_comment(
        REPO, pull.number, "Nobody knows.", by="alice", path="calc.py", line=1
    )
    await github.areview_comment(
        REPO, pull.number, "Me neither", by="alice", in_reply_to=theirs.record.id
    )
    reply = await github.areview_comment(
        REPO, pull.number, "It has to, see the spec", by="alice", in_reply_to=root.id
    )

    # One session: none for the reply in alice's own thread.
    (session,) = await started(plane, pull.number, "the answering session")
    assert "It has to, see the spec" in await first_prompt(plane, session)

    async def answered() -> list[Any]:
        return [
            c
            for c in github.review_comments(REPO, pull.number)
            if c.user_login == github.bot_login and c.in_reply_to_id is not None
        ]

    (answer,) = await until(answered, "the App's answer in its thread")
    assert answer.in_reply_to_id == root.id
    assert answer.body.startswith("Because x must start at one.")
    eyes = github.reactions(REPO, f"pull_comment:{reply.record.id}")
    assert [r.content for r in eyes] == ["eyes"]
    assert plane.github_inbox is not None
    await plane.github_inbox.idle()
    assert len(await sessions(plane, pull.number)) == 1


async def test_a_non_writers_mention_starts_nothing(
    plane: ControlPlane, llm: ScriptedLLMServer, github: FakeGitHub
) -> None:
    github.commit(REPO, "feature", {"calc.py": "x = 1\n"})
    pull = (await github.aopen_pull(REPO, "feature", by="carol", title="WIP", draft=True)).record
    slug = github.bot_login.removesuffix("[bot]")
    await github.acomment(REPO, pull.number, f"@{slug} review this", by="carol")
    assert plane.github_inbox is not None
    await plane.github_inbox.idle()
    assert await sessions(plane, pull.number) == []
