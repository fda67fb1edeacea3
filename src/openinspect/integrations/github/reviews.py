"""The agent's ``submit_review``: one real review of the pull request a review session works on
(the review bot's door, ``integrations.github.bot``, starts those sessions).

:func:`submit_review` (run by the control plane for the session's tool call) checks the review
the agent wrote — the event, caps on its size, the paths — re-reads the pull request's files as
the App and checks every line comment against the diff (``diffcheck``): a comment outside it goes
into the review's body with its path, line and the reason, instead of failing the whole review.
A ``suggestion`` becomes a ```` ```suggestion ```` block; APPROVE and REQUEST_CHANGES become
COMMENT on the bot's own pull request (GitHub refuses them there). It then decides one outbox row
(``review:<session>:<prompt>:<n>``, with the head commit the comments were checked against); the
``github`` sender posts it as the App with the key's marker, so a delivery interrupted by a crash
adopts the review instead of posting it twice. Agent text cannot carry our marker.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openinspect.bus import Bus
from openinspect.domain.models import Session
from openinspect.errors import InvalidInput, NotConfigured, ScmError
from openinspect.integrations.github.diffcheck import DiffMap, LineComment
from openinspect.integrations.outbox import wake
from openinspect.scm.base import RepoRef
from openinspect.settings import Settings
from openinspect.store import Store

if TYPE_CHECKING:  # githubkit is heavy: loaded with the client (people.service)
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
FILES_MAX = 300
COMMENTS_MAX = 50
COMMENT_BODY_MAX = 4_000
REVIEW_BODY_MAX = 20_000
PATH_MAX = 1_000
_ORIGIN_REF = re.compile(r"^github:([A-Za-z0-9._-]+/[A-Za-z0-9._-]+)#(\d{1,9})$")


# ---------------------------------------------------------------- the agent's submit_review


class ReviewCommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=PATH_MAX)
    line: int = Field(ge=1, le=10_000_000)
    side: Literal["LEFT", "RIGHT"] = "RIGHT"
    start_line: int | None = Field(None, ge=1, le=10_000_000)
    body: str = Field("", max_length=COMMENT_BODY_MAX)
    suggestion: str | None = Field(None, max_length=COMMENT_BODY_MAX)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["APPROVE", "REQUEST_CHANGES", "COMMENT"]
    body: str = Field(max_length=REVIEW_BODY_MAX)
    comments: list[ReviewCommentIn] = Field(default_factory=list, max_length=COMMENTS_MAX)


@dataclass
class ReviewPoster:
    """What a session's ``submit_review`` needs: the App's client, the store (the outbox) and
    the bus (to wake the delivery)."""

    settings: Settings
    store: Store
    bus: Bus
    github: GitHub

    async def is_bot(self, login: str | None) -> bool:
        if not login:
            return False
        slug = self.settings.github.bot.slug or await self.github.app_slug()
        return login.lower() == f"{slug}[bot]".lower()


def reviewed_pull(session: Session) -> tuple[str, int] | None:
    """The pull request a session of the bot reviews (``origin_ref``), or None."""
    if session.origin != "github" or not session.origin_ref:
        return None
    found = _ORIGIN_REF.match(session.origin_ref)
    return (found[1], int(found[2])) if found else None


def _defuse(text: str) -> str:
    return text.replace("<!-- openinspect:", "<!-- ")


def _comment_text(c: ReviewCommentIn) -> str:
    text = _defuse(c.body.strip())
    if c.suggestion is not None:
        fence = "````" if "```" in c.suggestion else "```"
        text = f"{text}\n\n{fence}suggestion\n{_defuse(c.suggestion)}\n{fence}".strip()
    return text


async def submit_review(
    poster: ReviewPoster, session: Session, prompt_id: str, seq: int, raw: dict[str, Any]
) -> str:
    """Check a review the agent wrote and decide its post (see the module docstring); the
    one-line answer for the model."""
    github = poster.github
    target = reviewed_pull(session)
    if target is None:
        raise NotConfigured(
            "This session does not review a pull request",
            hint="submit_review is for sessions the review bot started on a pull request",
        )
    try:
        review = ReviewIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"The review is not valid: {where}: {first['msg']}") from None
    if any(ord(ch) < 32 for c in review.comments for ch in c.path):
        raise InvalidInput("A comment's path has control characters")
    repo_name, number = target
    repo = RepoRef.parse(repo_name)
    try:
        pull = await github.get_pull(repo, number)
        files = await github.pull_files(repo, number, FILES_MAX)
    except ScmError as exc:
        raise InvalidInput(
            f"The pull request could not be read from GitHub ({exc.code})",
            hint="Try again in a minute",
        ) from None
    diff = DiffMap.from_files(files)
    inline: list[dict[str, Any]] = []
    moved: list[str] = []
    for c in review.comments:
        text = _comment_text(c)
        why = diff.why_not(LineComment(c.path, c.line, c.side, c.start_line))
        if why is None:
            spot: dict[str, Any] = {"path": c.path, "line": c.line, "side": c.side, "body": text}
            if c.start_line is not None:
                spot |= {"start_line": c.start_line, "start_side": c.side}
            inline.append(spot)
        else:
            moved.append(f"**{c.path}, line {c.line}** ({why}):\n\n{text}")
    event = review.event
    if event != "COMMENT" and await poster.is_bot(pull.author_login):
        event = "COMMENT"  # GitHub refuses approving or rejecting one's own pull request
    body = _defuse(review.body.strip()) or "Review"
    if moved:
        body += "\n\n---\nComments on lines outside the diff:\n\n" + "\n\n".join(moved)
    key = f"review:{session.id}:{prompt_id}:{seq}"
    store = poster.store
    async with store.engine.begin() as conn:
        await store.outbox.enqueue(
            conn,
            source="github",
            key=key,
            kind="review",
            target={"repo": repo_name, "number": number},
            body={"event": event, "text": body, "commit_id": pull.head_sha, "comments": inline},
            session_id=session.id,
        )
    await wake(poster.bus)
    note = f", {len(moved)} moved into the body (outside the diff)" if moved else ""
    return (
        f"Review of PR #{number} queued for posting as {event}: {len(inline)} line "
        f"comment(s){note}."
    )
