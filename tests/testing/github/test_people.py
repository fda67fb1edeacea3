"""People acting on PRs: each action delivers GitHub's webhook, signed, in githubkit's webhook
shapes, before the call returns (also through the control endpoints)."""

from __future__ import annotations

import json

import httpx
import pytest
from githubkit_schemas.latest import models
from pydantic import TypeAdapter

from openinspect.scm.webhooks import verify_signature
from openinspect.testing.github import ApiError, Delivery
from tests.testing.github.conftest import FIXED_CALC, Repo
from tests.testing.test_github_server import Receiver


def signed(hook: Receiver, delivery: Delivery, secret: str) -> dict[str, object]:
    """The body the receiver got for ``delivery``, after checking its headers."""
    headers, body = next((h, b) for h, b in hook.received if h["x-github-delivery"] == delivery.id)
    assert headers["x-github-event"] == delivery.event
    verify_signature(secret.encode(), body, headers["x-hub-signature-256"])
    payload: dict[str, object] = json.loads(body)
    return payload


def test_opening_a_draft_marking_it_ready_and_asking_the_bot_for_a_review(
    repo: Repo, hook: Receiver
) -> None:
    fake, name = repo.fake, repo.full_name
    fake.commit(name, "feature", {"calc.py": FIXED_CALC}, by="alice")
    opened = fake.open_pull(
        name, "feature", by="alice", title="Fix add", body="It adds.", draft=True
    )
    assert opened.delivery is not None and opened.delivery.status_code == 202
    payload = signed(hook, opened.delivery, fake.webhook_secret)
    event = TypeAdapter(models.WebhookPullRequestOpened).validate_python(payload)
    pr = event.pull_request
    assert (pr.number, pr.title, pr.body, pr.draft, pr.state) == (
        1,
        "Fix add",
        "It adds.",
        True,
        "open",
    )
    assert (pr.user.login if pr.user else None, event.sender.login) == ("alice", "alice")
    assert (pr.head.ref, pr.head.sha, pr.head.label) == (
        "feature",
        fake.branch_sha(name, "feature"),
        "acme:feature",
    )
    assert pr.head.repo is not None and (pr.head.repo.full_name, pr.head.repo.fork) == (name, False)
    assert pr.base.ref == "main" and pr.base.repo.full_name == name
    assert event.installation is not None and event.installation.id == repo.installation_id
    assert event.repository.private is True and event.repository.owner.login == "acme"

    ready = fake.ready_for_review(name, 1)
    assert ready.delivery is not None
    ready_event = TypeAdapter(models.WebhookPullRequestReadyForReview).validate_python(
        ready.delivery.payload
    )
    assert (ready_event.action, ready_event.pull_request.draft) == ("ready_for_review", False)
    with pytest.raises(ValueError, match="not a draft"):
        fake.ready_for_review(name, 1)

    asked = fake.request_review(name, 1)
    assert asked.delivery is not None
    requested = TypeAdapter(models.WebhookPullRequestReviewRequestedOneof0).validate_python(
        asked.delivery.payload
    )
    assert requested.action == "review_requested"
    assert requested.requested_reviewer is not None
    assert (requested.requested_reviewer.login, requested.requested_reviewer.type) == (
        "openinspect-fake[bot]",
        "Bot",
    )
    assert [r.login for r in requested.pull_request.requested_reviewers if hasattr(r, "login")] == [
        "openinspect-fake[bot]"
    ]
    assert fake.pull(name, 1).requested_reviewers == ["openinspect-fake[bot]"]


def test_comments_review_comments_replies_and_reviews_by_people(repo: Repo, hook: Receiver) -> None:
    fake, name = repo.fake, repo.full_name
    number = repo.open_fix(by="alice")
    said = fake.comment(name, number, "@openinspect-fake please review", by="carol")
    assert said.delivery is not None
    comment = TypeAdapter(models.WebhookIssueCommentCreated).validate_python(
        signed(hook, said.delivery, fake.webhook_secret)
    )
    assert comment.comment.id == said.record.id
    assert comment.comment.body == "@openinspect-fake please review"
    assert comment.comment.user is not None and comment.comment.user.login == "carol"
    assert comment.issue.number == number and comment.issue.pull_request is not None
    assert comment.issue.user is not None and comment.issue.user.login == "alice"

    thread = fake.review_comment(name, number, "why?", by="carol", path="calc.py", line=3)
    events = [d.event for d in thread.deliveries]
    assert events == ["pull_request_review_comment", "pull_request_review"]
    inline = TypeAdapter(models.WebhookPullRequestReviewCommentCreated).validate_python(
        thread.deliveries[0].payload
    )
    assert (inline.comment.path, inline.comment.line, inline.comment.side) == (
        "calc.py",
        3,
        "RIGHT",
    )
    assert inline.comment.diff_hunk.endswith("+    return a + b")
    assert inline.comment.pull_request_review_id == thread.record.review_id
    assert "in_reply_to_id" not in thread.deliveries[0].payload["comment"]

    answer = fake.review_comment(name, number, "because", by="alice", in_reply_to=thread.record.id)
    reply = answer.deliveries[0].payload["comment"]
    assert (reply["in_reply_to_id"], reply["path"], reply["line"]) == (
        thread.record.id,
        "calc.py",
        3,
    )
    with pytest.raises(ApiError) as info:
        fake.review_comment(name, number, "off", by="carol", path="calc.py", line=30)
    assert info.value.status == 422

    review = fake.submit_review(
        name,
        number,
        "REQUEST_CHANGES",
        by="carol",
        body="Please add a test.",
        comments=[{"path": "calc.py", "line": 3, "body": "and here"}],
    )
    assert [d.event for d in review.deliveries] == [
        "pull_request_review_comment",
        "pull_request_review",
    ]
    submitted = TypeAdapter(models.WebhookPullRequestReviewSubmitted).validate_python(
        signed(hook, review.deliveries[1], fake.webhook_secret)
    )
    assert (submitted.review.state, submitted.review.body) == (
        "changes_requested",
        "Please add a test.",
    )
    assert submitted.review.user is not None and submitted.review.user.login == "carol"
    assert submitted.review.commit_id == fake.pull(name, number).head_sha
    assert submitted.review.html_url.endswith(f"#pullrequestreview-{review.record.id}")
    assert submitted.sender.login == "carol"
    with pytest.raises(ApiError, match="Unprocessable Entity") as info:
        fake.submit_review(name, number, "APPROVE", by="alice")
    assert info.value.errors == ["Can not approve your own pull request"]
    # The App acting through the same calls (its review reaches the webhook too).
    bot = fake.submit_review(name, number, "COMMENT", by=fake.bot_login, body="noted")
    assert bot.delivery is not None
    assert bot.delivery.payload["sender"]["type"] == "Bot"
    assert bot.delivery.payload["review"]["user"]["login"] == "openinspect-fake[bot]"


def test_the_control_endpoints_make_people_act(repo: Repo) -> None:
    fake, name = repo.fake, repo.full_name
    fake.commit(name, "ctl", {"calc.py": FIXED_CALC}, by="alice")
    base = f"{fake.url}/_fake"
    pulls = f"{base}/pulls/{name}"
    opened = httpx.post(pulls, json={"head": "ctl", "by": "alice", "draft": True})
    assert opened.status_code == 200, opened.text
    number = opened.json()["record"]["number"]
    [sent] = opened.json()["deliveries"]
    assert (sent["event"], sent["action"], sent["status_code"]) == ("pull_request", "opened", 202)
    calls = [
        ("ready", {}, ["ready_for_review"]),
        ("request-review", {}, ["review_requested"]),
        ("comments", {"body": "hi", "by": "carol"}, ["created"]),
        (
            "review-comments",
            {"body": "here", "by": "carol", "path": "calc.py", "line": 3},
            ["created", "submitted"],
        ),
        (
            "reviews",
            {
                "event": "COMMENT",
                "by": "carol",
                "body": "ok",
                "comments": [{"path": "calc.py", "line": 2, "body": "c"}],
            },
            ["created", "submitted"],
        ),
    ]
    for path, body, actions in calls:
        answer = httpx.post(f"{pulls}/{number}/{path}", json=body)
        assert answer.status_code == 200, (path, answer.text)
        assert [d["action"] for d in answer.json()["deliveries"]] == actions
    refused = httpx.post(
        f"{pulls}/{number}/review-comments",
        json={"body": "x", "by": "carol", "path": "calc.py", "line": 99},
    )
    assert refused.status_code == 422
    assert refused.json()["message"] == "Validation Failed"
    shown = httpx.get(f"{pulls}/{number}").json()
    assert [c["body"] for c in shown["comments"]] == ["hi"]
    assert [c["body"] for c in shown["review_comments"]] == ["here", "c"]
    assert [r["state"] for r in shown["reviews"]] == ["COMMENTED", "COMMENTED"]
    assert len(fake.review_comments(name, number)) == 2
    reactions = httpx.get(f"{base}/repos/{name}/reactions")
    assert reactions.json() == []
    unknown = httpx.post(f"{pulls}/{number}/comments", json={"body": "x", "by": "nobody"})
    assert unknown.status_code == 400
