"""``submit_review``, the whole path: a GitHub user opens a pull request on the fake GitHub, which
sends the real signed webhook to the real API on loopback; the review session really runs (the
scripted model calls ``submit_review``); the decided outbox review is posted by the ``github``
sender as the App, through the outbox service.

A pull request opened by a writer → a review by the App with an inline comment on a changed
line and an applyable suggestion, and the comment aimed outside the diff in the body (no 422).
"""

from __future__ import annotations

from typing import Any

from openinspect.controlplane import ControlPlane
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.integrations.github.test_fixes import REPO, finished, turn, until
from tests.integrations.github.test_review_bot import github, plane  # noqa: F401 - fixtures

CHANGED = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


def review_turns(note: str) -> dict[str, Any]:
    return {
        "turns": [
            turn(
                "submit_review",
                event="REQUEST_CHANGES",
                body=f"The sign is wrong in add. {note}",
                comments=[
                    {
                        "path": "calc.py",
                        "line": 2,
                        "body": "This subtracts.",
                        "suggestion": "    return a + b",
                    },
                    {"path": "calc.py", "line": 40, "body": "Unrelated: rename this file."},
                ],
            ),
            {"text": "Reviewed: one change requested."},
        ]
    }


async def _sessions(opened: ControlPlane) -> list[Any]:
    return [s for s in await opened.store.sessions.list(limit=500) if s.origin == "github"]


async def test_an_opened_pr_gets_one_review_with_an_inline_suggestion_and_the_rest_in_the_body(
    plane: ControlPlane,  # noqa: F811
    llm: ScriptedLLMServer,
    github: FakeGitHub,  # noqa: F811
) -> None:
    llm.reset(review_turns("Please fix."))
    github.commit(REPO, "feature", {"calc.py": CHANGED}, by="alice")
    pull = (await github.aopen_pull(REPO, "feature", by="alice", title="Add sub")).record

    async def decided() -> list[Any]:
        found = await _sessions(plane)
        if not found:
            return []
        rows = await plane.store.outbox.for_session(found[0].id, "github")
        return [r for r in rows if r.kind == "review"]

    (row,) = await until(decided, "the decided review")

    async def reviewed() -> list[Any]:
        return [r for r in github.reviews(REPO, pull.number) if r.user_is_bot]

    (review,) = await until(reviewed, "the App's review")
    eyes = github.reactions(REPO, f"issue:{pull.number}")
    assert [(r.content, r.user_login) for r in eyes] == [("eyes", github.bot_login)]
    assert review.state == "CHANGES_REQUESTED"
    assert "The sign is wrong in add." in review.body
    assert "calc.py, line 40" in review.body and "Unrelated: rename this file." in review.body
    (inline,) = [c for c in github.review_comments(REPO, pull.number) if c.review_id == review.id]
    assert (inline.path, inline.line, inline.side) == ("calc.py", 2, "RIGHT")
    assert "```suggestion\n    return a + b\n```" in inline.body

    sessions = await _sessions(plane)
    assert len(sessions) == 1 and sessions[0].origin_ref == f"github:{REPO}#{pull.number}"
    prompt = (await plane.store.prompts.for_session(sessions[0].id))[0]
    done = await finished(plane, prompt.id)
    assert done.status == "success"
    assert "BEGIN UNTRUSTED DATA" in prompt.content and "return a - b" in prompt.content
    assert review.body.rstrip().endswith(f"<!-- openinspect:{row.key} -->")
    assert row.body["commit_id"] == github.pull(REPO, pull.number).head_sha
    sent = await plane.store.outbox.get(row.key)
    assert sent is not None and sent.posted_at is not None
    assert len([r for r in github.reviews(REPO, pull.number) if r.user_is_bot]) == 1
