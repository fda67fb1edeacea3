"""The REST API of a PR's conversation: its files (the diff), reviews, review comments and
replies, issue comments, reactions, and a collaborator's permission.

What people do here reaches the webhook as on GitHub, queued after the answer: each comment
of a review as ``pull_request_review_comment`` ``created``, then the review as
``pull_request_review`` ``submitted`` (a single comment or a reply is a review of its own, so it
sends both); an issue comment as ``issue_comment`` ``created``. Reactions send nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from openinspect.testing.github import diffs, pulls, reactions, review_shapes, reviews
from openinspect.testing.github.api import Ctx, Handler, ok, paged
from openinspect.testing.github.records import PullRec, RepoRec, ReviewCommentRec, ReviewRec
from openinspect.testing.github.state import Identity, not_found

Table = list[tuple[str, Handler, list[str]]]


def _pull(ctx: Ctx) -> tuple[RepoRec, PullRec]:
    repo = ctx.repo()
    pull = pulls.get(repo, int(ctx.params["number"]))
    pulls.refresh_head(ctx.core.state, repo, pull)
    return repo, pull


# ---------------------------------------------------------------------- the diff


def list_files(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    path = ctx.core.state.bare_path(repo)
    files = diffs.pull_files(path, pull.base_sha, pull.head_sha)
    site = ctx.core.site
    return paged(ctx, [review_shapes.diff_entry(site, repo, pull.head_sha, f) for f in files])


# ---------------------------------------------------------------------- reviews


def announce_review(
    ctx: Ctx, repo: RepoRec, pull: PullRec, review: ReviewRec, made: list[ReviewCommentRec]
) -> None:
    if review.state == "PENDING":
        return
    views, sender = ctx.core.views, ctx.sender()
    for rec in made:
        event = views.review_comment_event(repo, pull, rec, sender)
        ctx.core.emit("pull_request_review_comment", event, sync=False)
    ctx.core.emit("pull_request_review", views.review_event(repo, pull, review, sender), sync=False)


def create_review(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    review, made = reviews.create(ctx.core.state, ctx.identity, repo, pull.number, ctx.json_body())
    announce_review(ctx, repo, pull, review, made)
    return ok(ctx.core.views.review(repo, pull, review))


def list_reviews(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    login = ctx.identity.login or ""
    shown = [
        r
        for r in list(pull.reviews)
        if r.state != "PENDING" or r.user_login.lower() == login.lower()
    ]
    return paged(ctx, [ctx.core.views.review(repo, pull, r) for r in shown])


def get_review(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    review = reviews.find_review(pull, int(ctx.params["review_id"]))
    return ok(ctx.core.views.review(repo, pull, review))


def list_review_comments_of(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    review_id = reviews.find_review(pull, int(ctx.params["review_id"])).id
    made = [c for c in list(pull.review_comments) if c.review_id == review_id]
    return paged(ctx, [ctx.core.views.review_comment(repo, pull, c) for c in made])


# ---------------------------------------------------------------------- review comments


def list_review_comments(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    shown = reviews.visible(pull)
    return paged(ctx, [ctx.core.views.review_comment(repo, pull, c) for c in shown])


def get_review_comment(ctx: Ctx) -> Response:
    repo = ctx.repo()
    pull, rec = reviews.find_comment(repo, int(ctx.params["comment_id"]))
    return ok(ctx.core.views.review_comment(repo, pull, rec))


def create_review_comment(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    review, rec = reviews.comment(ctx.core.state, ctx.identity, repo, pull.number, ctx.json_body())
    announce_review(ctx, repo, pull, review, [rec])
    return ok(ctx.core.views.review_comment(repo, pull, rec), 201)


def create_reply(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    review, rec = reviews.reply(
        ctx.core.state,
        ctx.identity,
        repo,
        pull.number,
        int(ctx.params["comment_id"]),
        ctx.json_body(),
    )
    announce_review(ctx, repo, pull, review, [rec])
    return ok(ctx.core.views.review_comment(repo, pull, rec), 201)


# ---------------------------------------------------------------------- issue comments


def list_issue_comments(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    views = ctx.core.views
    return paged(ctx, [views.issue_comment(repo, pull, c) for c in list(pull.comments)])


def create_issue_comment(ctx: Ctx) -> Response:
    repo, pull = _pull(ctx)
    rec = pulls.comment(ctx.core.state, ctx.identity, repo, pull.number, ctx.json_body())
    views = ctx.core.views
    event = views.issue_comment_event(repo, pull, rec, ctx.sender())
    ctx.core.emit("issue_comment", event, sync=False)
    return ok(views.issue_comment(repo, pull, rec), 201)


def get_issue_comment(ctx: Ctx) -> Response:
    repo = ctx.repo()
    wanted = int(ctx.params["comment_id"])
    for pull in list(repo.pulls.values()):
        for rec in list(pull.comments):
            if rec.id == wanted:
                return ok(ctx.core.views.issue_comment(repo, pull, rec))
    raise not_found()


# ---------------------------------------------------------------------- reactions


def _subject(kind: str, key: str) -> Callable[[Ctx], str]:
    return lambda ctx: f"{kind}:{int(ctx.params[key])}"


def reactions_of(subject: Callable[[Ctx], str]) -> tuple[Handler, Handler]:
    """The POST and GET handlers of one ``…/reactions`` endpoint."""

    def create(ctx: Ctx) -> Response:
        repo = ctx.repo()
        rec, new = reactions.react(
            ctx.core.state, ctx.identity, repo, subject(ctx), ctx.json_body().get("content")
        )
        user = ctx.core.views.login(rec.user_login, rec.user_is_bot)
        return ok(review_shapes.reaction(rec, user), 201 if new else 200)

    def listing(ctx: Ctx) -> Response:
        repo = ctx.repo()
        found = reactions.of(repo, subject(ctx), ctx.query.get("content"))
        views = ctx.core.views
        return paged(
            ctx,
            [review_shapes.reaction(r, views.login(r.user_login, r.user_is_bot)) for r in found],
        )

    return create, listing


# ---------------------------------------------------------------------- permission


def collaborator_permission(ctx: Ctx) -> Response:
    repo = ctx.repo()
    state = ctx.core.state
    user = state.user(ctx.params["username"])
    if user is None or user.type != "User":
        raise not_found()
    level = state.level(Identity("user", login=user.login), repo)
    return ok(review_shapes.permission(level, ctx.core.site.user(user)))


issue_reactions = reactions_of(_subject("issue", "number"))
issue_comment_reactions = reactions_of(_subject("issue_comment", "comment_id"))
review_comment_reactions = reactions_of(_subject("pull_comment", "comment_id"))

REPO = "/repos/{owner}/{repo}"
PULL = REPO + "/pulls/{number:int}"
TABLE: Table = [
    (PULL + "/files", list_files, ["GET"]),
    (PULL + "/reviews", create_review, ["POST"]),
    (PULL + "/reviews", list_reviews, ["GET"]),
    (PULL + "/reviews/{review_id:int}", get_review, ["GET"]),
    (PULL + "/reviews/{review_id:int}/comments", list_review_comments_of, ["GET"]),
    (PULL + "/comments", list_review_comments, ["GET"]),
    (PULL + "/comments", create_review_comment, ["POST"]),
    (PULL + "/comments/{comment_id:int}/replies", create_reply, ["POST"]),
    (REPO + "/pulls/comments/{comment_id:int}", get_review_comment, ["GET"]),
    (REPO + "/pulls/comments/{comment_id:int}/reactions", review_comment_reactions[0], ["POST"]),
    (REPO + "/pulls/comments/{comment_id:int}/reactions", review_comment_reactions[1], ["GET"]),
    (REPO + "/issues/{number:int}/comments", list_issue_comments, ["GET"]),
    (REPO + "/issues/{number:int}/comments", create_issue_comment, ["POST"]),
    (REPO + "/issues/comments/{comment_id:int}", get_issue_comment, ["GET"]),
    (REPO + "/issues/{number:int}/reactions", issue_reactions[0], ["POST"]),
    (REPO + "/issues/{number:int}/reactions", issue_reactions[1], ["GET"]),
    (REPO + "/issues/comments/{comment_id:int}/reactions", issue_comment_reactions[0], ["POST"]),
    (REPO + "/issues/comments/{comment_id:int}/reactions", issue_comment_reactions[1], ["GET"]),
    (REPO + "/collaborators/{username}/permission", collaborator_permission, ["GET"]),
]
