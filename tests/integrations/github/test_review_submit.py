"""The review bot, the whole path: a GitHub user opens a pull request on the fake GitHub, which
sends the real signed webhook to the real API on loopback; the review session really runs (the
scripted model calls ``submit_review``); the App posts one review through the outbox.

- a pull request opened by a writer → 👀, then a review by the App with an inline comment on a
  changed line and an applyable suggestion, and the comment aimed outside the diff in the body
  (no 422);
- a draft, or an opener who may not write, → no review;
- the repo's own setting turns auto-review off; a review requested from the bot still reviews.
"""

from __future__ import annotations

from typing import Any

from openinspect.controlplane import ControlPlane
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.integrations.github.test_fixes import (  # noqa: F401 - the fixtures
    REPO,
    finished,
    github,
    plane,
    turn,
    until,
)

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

    async def eyes() -> list[Any]:
        return github.reactions(REPO, f"issue:{pull.number}")

    (reaction,) = await until(eyes, "the 👀 on the pull request")
    assert reaction.content == "eyes" and reaction.user_is_bot

    async def reviewed() -> list[Any]:
        return [r for r in github.reviews(REPO, pull.number) if r.user_is_bot]

    (review,) = await until(reviewed, "the App's review")
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
    posted = await plane.store.outbox.for_session(sessions[0].id, "github")
    assert [r.kind for r in posted] == ["review"] and posted[0].posted_at is not None
    assert review.body.endswith(f"<!-- openinspect:{posted[0].key} -->")


async def test_drafts_readers_and_repos_with_auto_review_off_are_not_reviewed_unless_asked(
    plane: ControlPlane,  # noqa: F811
    llm: ScriptedLLMServer,
    github: FakeGitHub,  # noqa: F811
) -> None:
    github.commit(REPO, "draft", {"calc.py": CHANGED}, by="alice")
    github.commit(REPO, "reader", {"calc.py": CHANGED + "# more\n"}, by="alice")
    await github.aopen_pull(REPO, "draft", by="alice", draft=True)
    await github.aopen_pull(REPO, "reader", by="carol")  # carol may only read
    admin = await plane.store.users.create(name="root", email="root@example.com", role="admin")
    repo = await plane.store.repos.create(
        name="widgets",
        url=f"{plane.settings.github.web_url}/{REPO}.git",
        default_branch="main",
        created_by=admin.id,
    )
    await plane.store.review_settings.put(
        repo.id, auto_review=False, instructions="Check the signs.", model=None, updated_by=None
    )
    github.commit(REPO, "off", {"calc.py": CHANGED + "# off\n"}, by="alice")
    off = (await github.aopen_pull(REPO, "off", by="alice")).record
    assert plane.github_inbox is not None
    await plane.github_inbox.idle()
    assert await _sessions(plane) == []

    # Asked for explicitly, the bot reviews a repo whose auto-review is off.
    llm.reset(review_turns("Asked for."))
    await github.arequest_review(REPO, off.number, by="alice")

    async def reviewed() -> list[Any]:
        return [r for r in github.reviews(REPO, off.number) if r.user_is_bot]

    await until(reviewed, "the requested review")
    (session,) = await _sessions(plane)
    prompt = (await plane.store.prompts.for_session(session.id))[0]
    assert "Check the signs." in prompt.content  # the repo's review instructions
