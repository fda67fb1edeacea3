"""The outbox's ``github`` sender: posts the bot's comments and reactions as the App, once.

Kinds (target / body, see ``integrations.github.deps``):

- ``comment``: an issue comment on pull request ``{repo, number}`` with ``{text}``; its body
  ends with ``<!-- openinspect:<key> -->``, by which :meth:`GithubSender.find` adopts a comment a
  delivery made before it crashed (it reads the pull request's comments by the App's hand).
- ``reply``: ``{text}`` in the review thread of line comment ``{repo, number, comment_id}``;
  marked and adopted like a comment (``find`` reads the PR's line comments).
- ``review``: ``{event, text, commit_id?, comments: [{path, line, side, start_line?, body}]}``
  on ``{repo, number}``;
  marked and adopted by the PR's reviews. When GitHub refuses the line comments (422), the
  review is posted again with them all in its body: a review is never lost.
- ``reaction``: ``{content}`` on ``{repo, subject, id}``; GitHub answers with the existing
  reaction when the App made it before, so sending again is harmless and ``find`` looks for
  nothing.

GitHub's answers become the outbox's: a rate limit → :class:`RetryLater` (a minute), an outage →
:class:`RetryLater` (five seconds), a refused token → :class:`RetryLater` (a minute: an
installation may be fixed), a 404 or another 4xx → :class:`PermanentFailure` with a stable code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from openinspect.errors import ScmAuthFailed, ScmError, ScmNotFound, ScmRateLimited, ScmUnavailable
from openinspect.integrations.outbox import PermanentFailure, RetryLater
from openinspect.scm.base import Comment, RepoRef, ReviewComment, ReviewEvent
from openinspect.store.outbox import OutboxRow

if TYPE_CHECKING:
    from openinspect.scm.github import GitHub

MARKER_PREFIX = "<!-- openinspect:"
COMMENT_MAX_CHARS = 60_000
"""GitHub refuses comments over 65,536 characters; the marker and a margin stay free."""
RATE_LIMIT_PAUSE_S = 60.0
OUTAGE_PAUSE_S = 5.0


def marker(key: str) -> str:
    return f"{MARKER_PREFIX}{key} -->"


def with_marker(text: str, key: str) -> str:
    """``text`` (markers of ours in it defused, cut to fit) with the row's own marker last."""
    clean = text.replace(MARKER_PREFIX, "<!-- ")
    if len(clean) > COMMENT_MAX_CHARS:
        clean = clean[: COMMENT_MAX_CHARS - 1] + "…"
    return f"{clean}\n\n{marker(key)}"


class GithubSender:
    source = "github"

    def __init__(self, github: GitHub) -> None:
        self._github = github

    async def send(self, row: OutboxRow) -> dict[str, Any]:
        repo = RepoRef.parse(str(row.target["repo"]))
        try:
            if row.kind == "comment":
                body = with_marker(str(row.body["text"]), row.key)
                made = await self._github.create_issue_comment(
                    repo, int(row.target["number"]), body
                )
                return {"id": made.id, "url": made.url}
            if row.kind == "reply":
                body = with_marker(str(row.body["text"]), row.key)
                made = await self._github.reply_to_review_comment(
                    repo, int(row.target["number"]), int(row.target["comment_id"]), body
                )
                return {"id": made.id, "url": made.url}
            if row.kind == "review":
                made = await self._review(row, repo)
                return {"id": made.id, "url": made.url}
            if row.kind == "reaction":
                reaction = await self._github.add_reaction(
                    repo,
                    str(row.target["subject"]),
                    int(row.target["id"]),
                    str(row.body["content"]),
                )
                return {"id": reaction}
        except ScmError as exc:
            raise _outcome(exc) from exc
        raise PermanentFailure("unknown_kind")

    async def find(self, row: OutboxRow) -> dict[str, Any] | None:
        repo = RepoRef.parse(str(row.target["repo"]))
        number = int(row.target.get("number", 0))
        try:
            if row.kind == "comment":
                posts = await self._github.issue_comments(repo, number)
            elif row.kind == "reply":
                posts = await self._github.pull_review_comments(repo, number)
            elif row.kind == "review":
                posts = await self._github.reviews(repo, number)
            else:
                return None
        except ScmError as exc:
            raise _outcome(exc) from exc
        wanted = marker(row.key)
        for post, body in posts:
            if body.rstrip().endswith(wanted):
                return {"id": post.id, "url": post.url}
        return None

    async def _review(self, row: OutboxRow, repo: RepoRef) -> Comment:
        number = int(row.target["number"])
        wanted = str(row.body.get("event", "COMMENT"))
        if wanted not in ("COMMENT", "APPROVE", "REQUEST_CHANGES"):
            raise PermanentFailure("github_review_event_invalid")
        event = cast("ReviewEvent", wanted)
        comments = [
            ReviewComment(
                path=str(c["path"]),
                body=str(c["body"]),
                line=int(c["line"]),
                side="LEFT" if c.get("side") == "LEFT" else "RIGHT",
                start_line=int(c["start_line"]) if c.get("start_line") else None,
            )
            for c in row.body.get("comments", [])
        ]
        text = str(row.body.get("text", ""))
        commit = str(row.body.get("commit_id") or "") or None
        try:
            return await self._github.create_review(
                repo, number, with_marker(text, row.key), event, comments, commit
            )
        except ScmError as exc:
            if not comments or exc.details.get("github_status") != 422:
                raise
        moved = "\n\n".join(f"**{c.path}:{c.line}**\n\n{c.body}" for c in comments)
        return await self._github.create_review(
            repo, number, with_marker(f"{text}\n\n{moved}".strip(), row.key), event
        )


def _outcome(exc: ScmError) -> Exception:
    if isinstance(exc, ScmRateLimited):
        return RetryLater(RATE_LIMIT_PAUSE_S, "github_rate_limited")
    if isinstance(exc, ScmUnavailable):
        return RetryLater(OUTAGE_PAUSE_S, "github_unavailable")
    if isinstance(exc, ScmAuthFailed):
        return RetryLater(RATE_LIMIT_PAUSE_S, "github_auth_failed")
    if isinstance(exc, ScmNotFound):
        return PermanentFailure("github_not_found")
    status = exc.details.get("github_status")
    if isinstance(status, int) and 400 <= status < 500:
        return PermanentFailure(f"github_refused_{status}")
    return exc
