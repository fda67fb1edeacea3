"""Reviews and review comments, checked against the PR's diff as GitHub checks them.

Each comment of ``POST /pulls/{n}/reviews`` (``{path, body, line, side?, start_line?,
start_side?}`` or the legacy ``{path, body, position}``) must anchor inside a hunk of that
file's diff at the review's commit, on its side; a multi-line comment's ``start_line`` must
come before ``line`` in the same hunk. One bad comment refuses the whole review (422, nothing
stored) with GitHub's words: ``Line could not be resolved``, ``Path could not be resolved``,
``Pull request review thread start line must be part of the same hunk as the line.`` …
(several joined with "and"). A ``line`` that is not an integer is refused as a malformed
request (422 ``Invalid request``).

``POST /pulls/{n}/comments`` (one comment with ``commit_id``, or ``in_reply_to``) answers the
same problems as ``Validation Failed`` with ``pull_request_review_thread.line must be part of
the diff`` … in ``errors``. A single comment or a reply gets a review of its own (COMMENTED,
empty body), as on GitHub. A reply joins the thread of the comment it answers (its root).

A PR's author can neither approve nor request changes on it. Comments never go outdated here:
``original_line`` is ``line`` and ``original_position`` is ``position``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from openinspect.testing.github import diffs, gitops
from openinspect.testing.github.pulls import author_of, get, may_write_pulls, too_long
from openinspect.testing.github.records import PullRec, RepoRec, ReviewCommentRec, ReviewRec
from openinspect.testing.github.state import (
    ApiError,
    FakeState,
    Identity,
    not_found,
    validation_failed,
)

REVIEW_STATES = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}
SIDES = ("LEFT", "RIGHT")
COMMENTS_MAX = 1000
JSON_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    type(None): "null",
}
RESOURCE = "PullRequestReviewComment"


@dataclass(frozen=True)
class Problem:
    """Why a comment cannot anchor: ``field``/``code``/``detail`` as ``POST …/comments`` says
    it, ``words`` as ``POST …/reviews`` says it."""

    field: str
    code: str
    detail: str | None
    words: str


PATH = Problem("pull_request_review_thread.path", "invalid", None, "Path could not be resolved")
LINE = Problem(
    "pull_request_review_thread.line",
    "custom",
    "pull_request_review_thread.line must be part of the diff",
    "Line could not be resolved",
)
START_HUNK = Problem(
    "pull_request_review_thread.start_line",
    "custom",
    "pull_request_review_thread.start_line must be part of the same hunk as the line.",
    "Pull request review thread start line must be part of the same hunk as the line.",
)
START_ORDER = Problem(
    "pull_request_review_thread.start_line",
    "custom",
    "pull_request_review_thread.start_line must precede the end line.",
    "Pull request review thread start line must precede the end line.",
)
BLANK_HUNK = Problem(
    "pull_request_review_thread.diff_hunk",
    "missing_field",
    None,
    "Pull request review thread diff hunk can't be blank",
)


@dataclass(frozen=True)
class Anchor:
    path: str
    line: int
    side: diffs.Side
    start_line: int | None
    start_side: diffs.Side | None
    position: int
    diff_hunk: str


Note = tuple[str, Anchor, int | None]
"""A comment to store: its body, where it anchors, the comment it replies to."""


def _invalid(prop: str, value: Any, kind: str) -> ApiError:
    """GitHub's refusal of a malformed request (naming the value's JSON type, not the value)."""
    shown = JSON_TYPES.get(type(value), "an object")
    return ApiError(422, f"Invalid request.\n\nFor 'properties/{prop}', {shown} is not {kind}.")


def _int(spec: dict[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(key, value, "an integer")
    return value


def _side(spec: dict[str, Any], key: str, default: diffs.Side | None) -> diffs.Side | None:
    value = spec.get(key)
    if value is None:
        return default
    if value not in SIDES:
        raise _invalid(key, value, 'one of "LEFT" or "RIGHT"')
    side: diffs.Side = value
    return side


def _text(spec: dict[str, Any], key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str):
        raise _invalid(key, value, "a string")
    return value


def anchor(
    files: dict[str, diffs.FileDiff], spec: dict[str, Any]
) -> tuple[Anchor | None, list[Problem]]:
    """Where ``spec`` (one comment of a request) lands in the diff, or why it cannot."""
    path = _text(spec, "path")
    position = _int(spec, "position")
    line = _int(spec, "line")
    side = _side(spec, "side", "RIGHT")
    start_line = _int(spec, "start_line")
    start_side = _side(spec, "start_side", side if start_line is not None else None)
    found = files.get(path)
    if found is None or found.patch is None:
        return None, [PATH]
    if position is not None and line is None:
        entry = found.at(position)
        if entry is None or entry.kind not in (" ", "+", "-"):
            return None, [LINE]
        side = "LEFT" if entry.kind == "-" else "RIGHT"
        line = entry.old if side == "LEFT" else entry.new
        assert line is not None
    elif line is None or side is None:
        return None, [LINE]
    entry = found.find(line, side)
    if entry is None:
        return None, [LINE]
    if start_line is not None:
        start = found.find(start_line, start_side or side)
        if start is None:
            return None, [LINE]
        if start.position >= entry.position:
            return None, [START_ORDER]
        if start.hunk != entry.hunk:
            return None, [START_HUNK]
    return Anchor(
        path=path,
        line=line,
        side=side,
        start_line=start_line,
        start_side=start_side if start_line is not None else None,
        position=entry.position,
        diff_hunk=found.hunk_up_to(entry),
    ), []


def files_at(
    state: FakeState, repo: RepoRec, pull: PullRec, commit: str
) -> dict[str, diffs.FileDiff]:
    path = state.bare_path(repo)
    return {f.filename: f for f in diffs.pull_files(path, pull.base_sha, commit)}


def joined(words: list[str]) -> str:
    """GitHub's list of errors in one sentence: "a", "a and b", "a, b, and c"."""
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + ", and " + words[-1]


def _commit(state: FakeState, repo: RepoRec, pull: PullRec, body: dict[str, Any]) -> str:
    given = body.get("commit_id")
    if given is None:
        return pull.head_sha
    if not isinstance(given, str) or not gitops.ref_sha(state.bare_path(repo), given):
        raise ApiError(422, "Unprocessable Entity", errors=["Commit could not be resolved"])
    return gitops.ref_sha(state.bare_path(repo), given) or given


def create(
    state: FakeState, identity: Identity, repo: RepoRec, number: int, body: dict[str, Any]
) -> tuple[ReviewRec, list[ReviewCommentRec]]:
    """``POST /pulls/{n}/reviews``: the review and its comments, all or nothing."""
    pull = get(repo, number)
    if not may_write_pulls(state, identity, repo):
        raise ApiError(403, "Resource not accessible by integration")
    event = body.get("event") or "PENDING"
    if event != "PENDING" and event not in REVIEW_STATES:
        raise validation_failed(resource="PullRequestReview", field="event", code="invalid")
    text = body.get("body") or ""
    if not isinstance(text, str):
        raise _invalid("body", text, "a string")
    too_long("PullRequestReview", text)
    specs = body.get("comments") or []
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise _invalid("comments", specs, "an array of objects")
    if len(specs) > COMMENTS_MAX:
        raise ApiError(422, "Unprocessable Entity", errors=["Too many review comments"])
    if event in ("REQUEST_CHANGES", "COMMENT") and not text and not specs:
        raise ApiError(
            422,
            "Unprocessable Entity",
            errors=[f'Review body is required when event is "{event}"'],
        )
    login, is_bot = author_of(state, identity)
    own = login.lower() == pull.user_login.lower()
    if own and event == "APPROVE":
        raise ApiError(
            422, "Unprocessable Entity", errors=["Can not approve your own pull request"]
        )
    if own and event == "REQUEST_CHANGES":
        raise ApiError(
            422, "Unprocessable Entity", errors=["Can not request changes on your own pull request"]
        )
    if event == "PENDING" and any(
        r.state == "PENDING" and r.user_login.lower() == login.lower() for r in pull.reviews
    ):
        raise ApiError(
            422,
            "Unprocessable Entity",
            errors=["User can only have one pending review per pull request"],
        )
    commit = _commit(state, repo, pull, body)
    files = files_at(state, repo, pull, commit) if specs else {}
    anchors: list[Anchor] = []
    problems: list[str] = []
    for spec in specs:
        too_long(RESOURCE, _text(spec, "body"))
        found, why = anchor(files, spec)
        if found is None:
            problems += [p.words for p in why if p.words not in problems]
        else:
            anchors.append(found)
    if problems:
        raise ApiError(422, "Unprocessable Entity", errors=[joined(problems)])
    notes: list[Note] = [
        (str(spec["body"]), found, None) for spec, found in zip(specs, anchors, strict=True)
    ]
    return _store(
        state, pull, (login, is_bot), text, REVIEW_STATES.get(event, "PENDING"), commit, notes
    )


def _store(
    state: FakeState,
    pull: PullRec,
    author: tuple[str, bool],
    body: str,
    review_state: str,
    commit: str,
    notes: list[Note],
) -> tuple[ReviewRec, list[ReviewCommentRec]]:
    """Keep a review and its comments on the PR."""
    login, is_bot = author
    now = time.time()
    with state.change():
        review = ReviewRec(
            id=state.next_id(),
            user_login=login,
            user_is_bot=is_bot,
            body=body,
            state=review_state,
            commit_id=commit,
            submitted_at=None if review_state == "PENDING" else now,
        )
        made = [
            ReviewCommentRec(
                id=state.next_id(),
                review_id=review.id,
                user_login=login,
                user_is_bot=is_bot,
                body=text,
                path=where.path,
                line=where.line,
                side=where.side,
                start_line=where.start_line,
                start_side=where.start_side,
                position=where.position,
                commit_id=commit,
                diff_hunk=where.diff_hunk,
                in_reply_to_id=in_reply_to,
                created_at=now,
            )
            for text, where, in_reply_to in notes
        ]
        pull.reviews.append(review)
        pull.review_comments.extend(made)
        pull.updated_at = now
        return review, made


def comment(
    state: FakeState, identity: Identity, repo: RepoRec, number: int, body: dict[str, Any]
) -> tuple[ReviewRec, ReviewCommentRec]:
    """``POST /pulls/{n}/comments``: one comment on the diff, or a reply (``in_reply_to``)."""
    pull = get(repo, number)
    if not may_write_pulls(state, identity, repo):
        raise ApiError(403, "Resource not accessible by integration")
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise validation_failed(resource=RESOURCE, field="body", code="missing_field")
    too_long(RESOURCE, text)
    target = _int(body, "in_reply_to")
    if target is not None:
        return reply(state, identity, repo, number, target, {"body": text})
    if not isinstance(body.get("commit_id"), str):
        raise validation_failed(resource=RESOURCE, field="commit_id", code="missing_field")
    if not isinstance(body.get("path"), str):
        raise validation_failed(resource=RESOURCE, field="path", code="missing_field")
    commit = _commit(state, repo, pull, body)
    found, why = anchor(files_at(state, repo, pull, commit), body)
    if found is None:
        if why[0] in (PATH, LINE):
            why = [*why, BLANK_HUNK]
        errors = [
            {"resource": RESOURCE, "code": p.code, "field": p.field}
            | ({"message": p.detail} if p.detail else {})
            for p in why
        ]
        raise ApiError(422, "Validation Failed", errors=errors)
    return _single(state, identity, pull, text, found, commit, None)


def _single(
    state: FakeState,
    identity: Identity,
    pull: PullRec,
    text: str,
    where: Anchor,
    commit: str,
    in_reply_to: int | None,
) -> tuple[ReviewRec, ReviewCommentRec]:
    """A single comment or a reply, in a review of its own (COMMENTED, no body)."""
    author = author_of(state, identity)
    review, [rec] = _store(
        state, pull, author, "", "COMMENTED", commit, [(text, where, in_reply_to)]
    )
    return review, rec


def reply(
    state: FakeState,
    identity: Identity,
    repo: RepoRec,
    number: int,
    comment_id: int,
    body: dict[str, Any],
) -> tuple[ReviewRec, ReviewCommentRec]:
    """``POST /pulls/{n}/comments/{id}/replies``: a reply in the thread of comment ``id``."""
    pull = get(repo, number)
    if not may_write_pulls(state, identity, repo):
        raise ApiError(403, "Resource not accessible by integration")
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise validation_failed(resource=RESOURCE, field="body", code="missing_field")
    too_long(RESOURCE, text)
    target = next((c for c in visible(pull) if c.id == comment_id), None)
    if target is None:
        raise not_found()
    root = next((c for c in pull.review_comments if c.id == target.in_reply_to_id), target)
    where = Anchor(
        path=root.path,
        line=root.line or 0,
        side=root.side,
        start_line=root.start_line,
        start_side=root.start_side,
        position=root.position,
        diff_hunk=root.diff_hunk,
    )
    return _single(state, identity, pull, text, where, root.commit_id, root.id)


def visible(pull: PullRec) -> list[ReviewCommentRec]:
    """Comments of submitted reviews (a pending review's are its author's draft)."""
    pending = {r.id for r in pull.reviews if r.state == "PENDING"}
    return [c for c in pull.review_comments if c.review_id not in pending]


def find_comment(repo: RepoRec, comment_id: int) -> tuple[PullRec, ReviewCommentRec]:
    for pull in repo.pulls.values():
        for rec in visible(pull):
            if rec.id == comment_id:
                return pull, rec
    raise not_found()


def find_review(pull: PullRec, review_id: int) -> ReviewRec:
    review = next((r for r in pull.reviews if r.id == review_id), None)
    if review is None:
        raise not_found()
    return review
