"""Reviews through githubkit: every comment is checked against the PR's diff like GitHub does
(one miss refuses the whole review and stores nothing), reviews and comments read back in
githubkit's models, single comments and replies, and the webhooks a review sends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from githubkit.exception import RequestFailed
from githubkit_schemas.latest import models
from pydantic import TypeAdapter

from tests.testing.github.conftest import Repo

BIG = "".join(f"line {n}\n" for n in range(1, 31))
CHANGED = BIG.replace("line 5\n", "line five\n").replace("line 25\n", "line 25\nline 25.5\n")
"""Two hunks: ``@@ -2,7 +2,7 @@`` (line 5 changed) and ``@@ -22,7 +22,8 @@`` (26 added)."""


def open_two_hunks(repo: Repo, *, by: str = "alice") -> int:
    fake, name = repo.fake, repo.full_name
    fake.commit(name, "main", {"big.txt": BIG}, by=by)
    fake.commit(name, "two-hunks", {"big.txt": CHANGED}, by=by)
    return fake.open_pull(name, "two-hunks", by=by).record.number


def post(repo: Repo, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    token = token or repo.fake.mint_installation_token(repo.installation_id).token
    return httpx.post(
        f"{repo.fake.api_url}/repos/{repo.full_name}{path}",
        json=body,
        headers={"Authorization": f"token {token}"},
    )


async def test_a_review_with_comments_on_the_diff_reads_back_in_githubs_models(
    repo: Repo,
) -> None:
    number = open_two_hunks(repo)
    head = repo.fake.pull(repo.full_name, number).head_sha
    gh = repo.app()
    made = await gh.rest.pulls.async_create_review(
        repo.owner,
        repo.name,
        number,
        body="Two notes.",
        event="REQUEST_CHANGES",
        comments=[
            {"path": "big.txt", "line": 5, "body": "why five?"},
            {"path": "big.txt", "start_line": 3, "line": 5, "side": "RIGHT", "body": "range"},
            {"path": "big.txt", "line": 5, "side": "LEFT", "body": "the old line"},
            {"path": "big.txt", "line": 26, "body": "```suggestion\nline 25 and a half\n```"},
            {"path": "big.txt", "position": 1, "body": "legacy position"},
        ],
    )
    review = made.parsed_data
    assert isinstance(review, models.PullRequestReview)
    assert (review.state, review.body, review.commit_id) == (
        "CHANGES_REQUESTED",
        "Two notes.",
        head,
    )
    assert review.user is not None and (review.user.login, review.user.type) == (
        "openinspect-fake[bot]",
        "Bot",
    )
    assert review.html_url.endswith(
        f"/{repo.full_name}/pull/{number}#pullrequestreview-{review.id}"
    )
    listed = (await gh.rest.pulls.async_list_reviews(repo.owner, repo.name, number)).parsed_data
    assert [r.id for r in listed] == [review.id]
    shown = await gh.rest.pulls.async_get_review(repo.owner, repo.name, number, review.id)
    assert shown.parsed_data.state == "CHANGES_REQUESTED"
    of_review = await gh.rest.pulls.async_list_comments_for_review(
        repo.owner, repo.name, number, review.id
    )
    assert [c.body for c in of_review.parsed_data][:1] == ["why five?"]
    comments = (
        await gh.rest.pulls.async_list_review_comments(repo.owner, repo.name, number)
    ).parsed_data
    anchors = [(c.path, c.start_line, c.line, c.side, c.position) for c in comments]
    assert anchors == [
        ("big.txt", None, 5, "RIGHT", 5),
        ("big.txt", 3, 5, "RIGHT", 5),
        ("big.txt", None, 5, "LEFT", 4),
        ("big.txt", None, 26, "RIGHT", 13),
        ("big.txt", None, 2, "RIGHT", 1),
    ]
    first = comments[0]
    assert (
        first.diff_hunk == "@@ -2,7 +2,7 @@ line 1\n line 2\n line 3\n line 4\n-line 5\n+line five"
    )
    assert (first.commit_id, first.original_commit_id, first.original_line) == (head, head, 5)
    assert first.pull_request_review_id == review.id
    assert first.user is not None and first.user.type == "Bot"
    one = await gh.rest.pulls.async_get_review_comment(repo.owner, repo.name, first.id)
    assert one.parsed_data.html_url.endswith(f"/pull/{number}#discussion_r{first.id}")
    # GitHub sends each comment, then the review, with the App's bot as the sender.
    [submitted] = repo.wait("pull_request_review", "submitted")
    created = repo.wait("pull_request_review_comment", "created", count=5)
    assert submitted.payload["sender"]["login"] == "openinspect-fake[bot]"
    assert submitted.payload["review"]["state"] == "changes_requested"
    event = TypeAdapter(models.WebhookPullRequestReviewSubmitted).validate_python(submitted.payload)
    assert event.review.id == review.id
    for delivery in created:
        TypeAdapter(models.WebhookPullRequestReviewCommentCreated).validate_python(delivery.payload)
    assert [d.payload["comment"]["id"] for d in created] == [c.id for c in comments]


@pytest.mark.parametrize(
    ("comment", "words"),
    [
        ({"path": "big.txt", "line": 15}, "Line could not be resolved"),
        ({"path": "big.txt", "line": 40}, "Line could not be resolved"),
        ({"path": "calc.py", "line": 1}, "Path could not be resolved"),
        ({"path": "big.txt", "line": 29, "side": "LEFT"}, "Line could not be resolved"),
        ({"path": "big.txt", "position": 99}, "Line could not be resolved"),
        (
            {"path": "big.txt", "start_line": 5, "line": 25},
            "Pull request review thread start line must be part of the same hunk as the line.",
        ),
        (
            {"path": "big.txt", "start_line": 5, "line": 5},
            "Pull request review thread start line must precede the end line.",
        ),
    ],
)
def test_a_comment_outside_the_diff_refuses_the_whole_review(
    repo: Repo, comment: dict[str, Any], words: str
) -> None:
    number = open_two_hunks(repo)
    good = {"path": "big.txt", "line": 5, "body": "fine"}
    before = len(repo.fake.deliveries)
    answer = post(
        repo,
        f"/pulls/{number}/reviews",
        {"event": "COMMENT", "body": "b", "comments": [good, comment | {"body": "x"}]},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"] == "Unprocessable Entity"
    assert answer.json()["errors"] == [words]
    assert repo.fake.reviews(repo.full_name, number) == []
    assert repo.fake.review_comments(repo.full_name, number) == []
    assert repo.deliveries("pull_request_review", records=repo.fake.deliveries[before:]) == []


def test_malformed_comments_are_refused_and_problems_are_joined(repo: Repo) -> None:
    number = open_two_hunks(repo)
    url = f"/pulls/{number}/reviews"
    as_text = post(
        repo, url, {"event": "COMMENT", "comments": [{"path": "big.txt", "line": "5", "body": "x"}]}
    )
    assert as_text.status_code == 422
    assert as_text.json()["message"].startswith("Invalid request.")
    assert "'properties/line', a string is not an integer" in as_text.json()["message"]
    side = post(
        repo,
        url,
        {
            "event": "COMMENT",
            "comments": [{"path": "big.txt", "line": 5, "side": "UP", "body": "x"}],
        },
    )
    assert side.status_code == 422
    both = post(
        repo,
        url,
        {
            "event": "COMMENT",
            "comments": [
                {"path": "big.txt", "line": 15, "body": "x"},
                {"path": "nope.txt", "line": 1, "body": "y"},
            ],
        },
    )
    assert both.json()["errors"] == ["Line could not be resolved and Path could not be resolved"]
    empty = post(repo, url, {"event": "REQUEST_CHANGES"})
    assert empty.status_code == 422
    assert empty.json()["errors"] == ['Review body is required when event is "REQUEST_CHANGES"']
    assert repo.fake.reviews(repo.full_name, number) == []


def test_an_author_cannot_approve_or_request_changes_on_their_own_pull(repo: Repo) -> None:
    fake, name = repo.fake, repo.full_name
    fake.commit(name, "by-bot", {"calc.py": "x = 1\n"})
    number = fake.open_pull(name, "by-bot", by=fake.bot_login).record.number
    assert fake.pull(name, number).user_login == "openinspect-fake[bot]"
    for event, words in (
        ("APPROVE", "Can not approve your own pull request"),
        ("REQUEST_CHANGES", "Can not request changes on your own pull request"),
    ):
        answer = post(repo, f"/pulls/{number}/reviews", {"event": event, "body": "b"})
        assert (answer.status_code, answer.json()["errors"]) == (422, [words])
    assert (
        post(repo, f"/pulls/{number}/reviews", {"event": "COMMENT", "body": "b"}).status_code == 200
    )
    # A user on someone else's PR may approve; on their own they may not.
    alice = fake.user_token("alice")
    assert post(repo, f"/pulls/{number}/reviews", {"event": "APPROVE"}, alice).status_code == 200
    own = repo.open_fix(by="alice")
    refused = post(repo, f"/pulls/{own}/reviews", {"event": "APPROVE"}, alice)
    assert refused.status_code == 422


async def test_single_comments_and_replies(repo: Repo) -> None:
    number = open_two_hunks(repo)
    head = repo.fake.pull(repo.full_name, number).head_sha
    gh = repo.app()
    made = await gh.rest.pulls.async_create_review_comment(
        repo.owner,
        repo.name,
        number,
        body="look",
        commit_id=head,
        path="big.txt",
        line=26,
        side="RIGHT",
    )
    root = made.parsed_data
    assert (root.line, root.side) == (26, "RIGHT")
    assert "in_reply_to_id" not in made.json()  # GitHub leaves it out of a thread's root
    assert made.status_code == 201
    reply = await gh.rest.pulls.async_create_reply_for_review_comment(
        repo.owner, repo.name, number, root.id, body="seen"
    )
    assert (reply.parsed_data.in_reply_to_id, reply.parsed_data.line) == (root.id, 26)
    nested = post(
        repo, f"/pulls/{number}/comments", {"body": "again", "in_reply_to": reply.parsed_data.id}
    )
    assert nested.status_code == 201
    assert nested.json()["in_reply_to_id"] == root.id  # joins the thread of its root
    reviews = repo.fake.reviews(repo.full_name, number)
    assert [(r.state, r.body) for r in reviews] == [("COMMENTED", "")] * 3
    assert len(repo.wait("pull_request_review_comment", "created", count=3)) == 3
    # Off the diff: GitHub's "Validation Failed" with the failing field.
    off = post(
        repo,
        f"/pulls/{number}/comments",
        {"body": "x", "commit_id": head, "path": "big.txt", "line": 15},
    )
    assert off.status_code == 422
    assert off.json()["message"] == "Validation Failed"
    assert off.json()["errors"] == [
        {
            "resource": "PullRequestReviewComment",
            "code": "custom",
            "field": "pull_request_review_thread.line",
            "message": "pull_request_review_thread.line must be part of the diff",
        },
        {
            "resource": "PullRequestReviewComment",
            "code": "missing_field",
            "field": "pull_request_review_thread.diff_hunk",
        },
    ]
    no_commit = post(repo, f"/pulls/{number}/comments", {"body": "x", "path": "big.txt", "line": 5})
    assert no_commit.json()["errors"][0]["field"] == "commit_id"
    with pytest.raises(RequestFailed) as info:
        await gh.rest.pulls.async_create_reply_for_review_comment(
            repo.owner, repo.name, number, 123456789, body="nobody"
        )
    assert info.value.response.status_code == 404
    assert len(repo.fake.review_comments(repo.full_name, number)) == 3


def test_a_pending_review_is_its_authors_draft(repo: Repo) -> None:
    number = open_two_hunks(repo)
    before = len(repo.fake.deliveries)
    draft = post(
        repo,
        f"/pulls/{number}/reviews",
        {"comments": [{"path": "big.txt", "line": 5, "body": "later"}]},
    )
    assert draft.status_code == 200 and draft.json()["state"] == "PENDING"
    assert draft.json()["submitted_at"] is None
    again = post(repo, f"/pulls/{number}/reviews", {"body": "more"})
    assert again.json()["errors"] == ["User can only have one pending review per pull request"]
    alice = repo.fake.user_token("alice")
    listed = httpx.get(
        f"{repo.fake.api_url}/repos/{repo.full_name}/pulls/{number}/comments",
        headers={"Authorization": f"token {alice}"},
    )
    assert listed.json() == []
    assert repo.deliveries("pull_request_review", records=repo.fake.deliveries[before:]) == []
