"""The outbox's ``github`` sender: posts the bot's comments and reactions as the App, once.

Kinds (target / body, see ``integrations.github.deps``):

- ``comment``: an issue comment on pull request ``{repo, number}`` with ``{text}``; its body
  ends with ``<!-- openinspect:<key> -->``, by which :meth:`GithubSender.find` adopts a comment a
  delivery made before it crashed (it reads the pull request's comments by the App's hand).
- ``reaction``: ``{content}`` on ``{repo, subject, id}``; GitHub answers with the existing
  reaction when the App made it before, so sending again is harmless and ``find`` looks for
  nothing.

GitHub's answers become the outbox's: a rate limit → :class:`RetryLater` (a minute), an outage →
:class:`RetryLater` (five seconds), a refused token → :class:`RetryLater` (a minute: an
installation may be fixed), a 404 or another 4xx → :class:`PermanentFailure` with a stable code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openinspect.errors import ScmAuthFailed, ScmError, ScmNotFound, ScmRateLimited, ScmUnavailable
from openinspect.integrations.outbox import PermanentFailure, RetryLater
from openinspect.scm.base import RepoRef
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
        if row.kind != "comment":
            return None
        repo = RepoRef.parse(str(row.target["repo"]))
        try:
            comments = await self._github.issue_comments(repo, int(row.target["number"]))
        except ScmError as exc:
            raise _outcome(exc) from exc
        wanted = marker(row.key)
        for comment, body in comments:
            if body.rstrip().endswith(wanted):
                return {"id": comment.id, "url": comment.url}
        return None


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
