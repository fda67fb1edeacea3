"""The outbox's ``github`` sender against the fake GitHub, through githubkit: a comment carries
its key and is adopted, not posted again, when a delivery died after GitHub took it; a reaction
sent twice is one; GitHub's refusals become the outbox's retry or failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openinspect.integrations.github.sender import GithubSender, marker
from openinspect.integrations.outbox import PermanentFailure, RetryLater
from openinspect.scm.github import GitHub
from openinspect.store.outbox import OutboxRow
from openinspect.testing.github import FakeGitHub

REPO = "acme/widgets"


@pytest.fixture
def github(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_user("acme")
        gh.add_user("alice")
        gh.create_repo(REPO, source=origin, collaborators={"alice": "push"})
        gh.add_installation([REPO])
        gh.commit(REPO, "feature", {"x.txt": "x\n"})
        gh.open_pull(REPO, "feature", by="alice")
        yield gh


@pytest.fixture
async def sender(github: FakeGitHub) -> AsyncIterator[GithubSender]:
    async with GitHub(github.settings()) as client:
        yield GithubSender(client)


def row(kind: str, target: dict[str, Any], body: dict[str, Any], attempts: int = 0) -> OutboxRow:
    now = datetime.now(UTC)
    return OutboxRow(
        id=1, source="github", key=f"{kind}:k1", session_id=None, kind=kind, target=target,
        body=body, result=None, attempts=attempts, error_code=None, next_attempt_at=None,
        created_at=now, posted_at=None,
    )  # fmt: skip


async def test_a_comment_is_found_again_by_its_key(
    github: FakeGitHub, sender: GithubSender
) -> None:
    comment = row("comment", {"repo": REPO, "number": 1}, {"text": "hi <!-- openinspect:x -->"})
    assert await sender.find(comment) is None
    posted = await sender.send(comment)
    (made,) = github.pull(REPO, 1).comments
    assert made.id == posted["id"] and made.user_is_bot
    assert made.body.endswith(marker("comment:k1"))
    assert "openinspect:x" not in made.body  # a marker in the text is defused
    assert await sender.find(comment) == posted  # what a retry adopts instead of posting


async def test_a_reaction_twice_is_one(github: FakeGitHub, sender: GithubSender) -> None:
    eyes = row("reaction", {"repo": REPO, "subject": "issue", "id": 1}, {"content": "eyes"})
    first, second = await sender.send(eyes), await sender.send(eyes)
    assert first == second
    assert [r.content for r in github.reactions(REPO, "issue:1")] == ["eyes"]


async def test_refusals_become_retries_or_failures(
    github: FakeGitHub, sender: GithubSender
) -> None:
    comment = row("comment", {"repo": REPO, "number": 1}, {"text": "hi"})
    github.inject_failure(r"/issues/1/comments", 502, method="POST", times=2)  # and its retry
    with pytest.raises(RetryLater) as later:
        await sender.send(comment)
    assert later.value.code == "github_unavailable"
    with pytest.raises(PermanentFailure) as gone:
        await sender.send(row("comment", {"repo": REPO, "number": 99}, {"text": "hi"}))
    assert gone.value.code == "github_not_found"
    github.inject_failure(r"/issues/1/comments", 422, method="POST")
    with pytest.raises(PermanentFailure) as refused:
        await sender.send(comment)
    assert refused.value.code == "github_refused_422"


async def test_a_review_posts_once_and_keeps_a_comment_outside_the_diff(
    github: FakeGitHub, sender: GithubSender
) -> None:
    inline = {"path": "x.txt", "line": 1, "side": "RIGHT", "body": "typo"}
    review = row("review", {"repo": REPO, "number": 1}, {"event": "COMMENT", "text": "ok",
                                                        "comments": [inline]})  # fmt: skip
    assert await sender.find(review) is None
    posted = await sender.send(review)
    assert await sender.find(review) == posted  # a retry adopts it
    (made,) = github.reviews(REPO, 1)
    assert made.body.endswith(marker("review:k1")) and made.user_is_bot
    assert [c.path for c in github.review_comments(REPO, 1)] == ["x.txt"]
    outside = {"path": "x.txt", "line": 40, "side": "RIGHT", "body": "far away"}
    again = replace(row("review", {"repo": REPO, "number": 1},
                        {"event": "COMMENT", "text": "two", "comments": [outside]}),
                    key="review:k2")  # fmt: skip
    await sender.send(again)  # GitHub refuses the line (422): the review keeps it in its body
    second = github.reviews(REPO, 1)[1]
    assert "x.txt:40" in second.body and "far away" in second.body


async def test_a_reply_in_a_thread_is_found_again(github: FakeGitHub, sender: GithubSender) -> None:
    asked = github.review_comment(REPO, 1, "why?", by="alice", path="x.txt", line=1)
    reply = row("reply", {"repo": REPO, "number": 1, "comment_id": asked.record.id},
                {"text": "because"})  # fmt: skip
    assert await sender.find(reply) is None
    posted = await sender.send(reply)
    assert await sender.find(reply) == posted
    last = github.review_comments(REPO, 1)[-1]
    assert last.id == posted["id"] and last.body.startswith("because")
