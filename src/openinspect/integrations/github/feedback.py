"""PR feedback into the owning session: a review of a pull request a session opened becomes that
session's next prompt.

``dispatch`` takes a ``pull_request_review`` ``submitted`` whose state is ``changes_requested``
or ``commented``, on an open pull request a session opened (``store.pulls``), with
``bot.feedback`` on; it stores it in the GitHub inbox keyed by the review
(``review:<repo>:<review id>``: a redelivery, with a new delivery id, writes nothing) and the
rest happens in the background (:meth:`ReviewFeedback.handle`):

1. The review and its line comments are **read again from GitHub** as the App (the delivery's
   text is not used): a review that is not of that pull request is not found; one that is now
   approved, dismissed or empty (``commented`` with no body and no line comment) does nothing.
2. The reviewer must be the App's own bot (the review bot's review feeds the session that opened
   the pull request: that is the loop) or someone who may ask the bot (``bot.allowed_users``,
   else write/maintain/admin): a passer-by's review on a public repository drives nothing.
3. The decision is made once, in one transaction with the pull request's count
   (``store.github_feedback``): ``prompted`` while the pull request had fewer than
   ``bot.max_feedback_prompts`` feedback prompts, else ``attempt_limit``, and then one comment on
   the pull request says so (its outbox key makes it one however many reviews follow).
4. The prompt goes in through ``handle`` as the session's creator (``SubmitPrompt``, keyed by the
   review, so a retry queues nothing twice); it waits behind a running prompt. It says who
   reviewed and fences the review as untrusted data.

Individual ``pull_request_review_comment`` deliveries are part of a review (GitHub sends both,
and a lone line comment is a review of its own): they make no prompt here.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.automations.github import Short
from openinspect.automations.untrusted import render_untrusted
from openinspect.domain.commands import SubmitPrompt
from openinspect.domain.events import utcnow
from openinspect.errors import ScmNotFound
from openinspect.integrations.github.deps import BotDeps
from openinspect.integrations.github.inbox import GithubInbox
from openinspect.integrations.links import session_url
from openinspect.scm.base import PostedReviewComment, RepoRef, Review
from openinspect.store.github_feedback import ATTEMPT_LIMIT, PROMPTED, feedback_key
from openinspect.store.inbox import InboxItem

log = logging.getLogger(__name__)
KIND = "feedback"
ACTIONABLE = frozenset({"CHANGES_REQUESTED", "COMMENTED"})
HUNK_MAX_CHARS = 1_500
CONTEXT_MAX_CHARS = 30_000


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_Part):
    login: Short


class _Review(_Part):
    id: int
    state: Short
    user: _User | None = None


class _Pull(_Part):
    number: int
    state: Short | None = None


class _Repository(_Part):
    full_name: Short


class _Delivery(_Part):
    action: Short
    review: _Review
    pull_request: _Pull
    repository: _Repository


class Submitted(_Part):
    """A submitted review as stored in the inbox (its text is read from GitHub later)."""

    repo: str
    number: int
    review_id: int

    @property
    def key(self) -> str:
        return feedback_key("review", self.repo, self.review_id)


class ReviewFeedback:
    """The review-feedback door (a ``GithubHandler``) and its inbox handler."""

    def __init__(self, deps: BotDeps, inbox: GithubInbox) -> None:
        self.deps = deps
        inbox.register(KIND, self.handle)
        self.inbox = inbox

    async def dispatch(self, event: str, payload: dict[str, Any], delivery_id: str) -> str:
        if event != "pull_request_review" or not self.deps.settings.github.bot.feedback:
            return "ignored"
        try:
            delivery = _Delivery.model_validate(payload)
        except ValidationError:
            return "ignored"
        if delivery.action != "submitted" or delivery.review.state.upper() not in ACTIONABLE:
            return "ignored"
        if delivery.pull_request.state not in (None, "open"):
            return "ignored"
        submitted = Submitted(
            repo=delivery.repository.full_name,
            number=delivery.pull_request.number,
            review_id=delivery.review.id,
        )
        record = await self.deps.store.pulls.by_number(submitted.repo, submitted.number)
        if record is None or record.state != "open":
            return "ignored"  # not a pull request a session opened (or no longer open)
        accepted = await self.inbox.accept(KIND, submitted.key, submitted.model_dump())
        return "processed" if accepted else "ignored"

    async def handle(self, item: InboxItem) -> str:
        """Act on one stored review (see the module docstring)."""
        deps = self.deps
        submitted = Submitted.model_validate(item.payload)
        bot = deps.settings.github.bot
        record = await deps.store.pulls.by_number(submitted.repo, submitted.number)
        if not bot.feedback or record is None or record.state != "open":
            return "ignored"
        repo = RepoRef.parse(submitted.repo)
        try:
            review = await deps.github.get_review(repo, submitted.number, submitted.review_id)
        except ScmNotFound:  # not a review of that pull request (a forged or stale delivery)
            return "ignored"
        if review.state not in ACTIONABLE or not await self._may_review(repo, review):
            return "ignored"
        comments = await deps.github.review_comments(repo, submitted.number, review.id)
        if review.state == "COMMENTED" and not review.body.strip() and not comments:
            return "ignored"
        session = await deps.store.sessions.get(record.session_id)
        creator = await deps.store.users.get(session.creator_id) if session else None
        if session is None or creator is None:
            return "ignored"

        async def cap_reached(conn: AsyncConnection) -> None:
            await self._cap_comment(conn, submitted, session.id)

        decided = await deps.store.github_feedback.decide_feedback(
            key=submitted.key,
            repo=submitted.repo,
            number=submitted.number,
            session_id=session.id,
            cap=bot.max_feedback_prompts,
            on_limit=cap_reached,
        )
        outcome = decided.feedback.outcome
        if outcome == ATTEMPT_LIMIT:
            await deps.wake()
            log.info("github: %s#%s had its feedback prompts", submitted.repo, submitted.number)
            return "done"
        if outcome != PROMPTED or decided.feedback.prompt_id is not None:
            return "done"  # decided before, and its prompt is queued
        content = feedback_prompt(
            review,
            comments,
            repo=submitted.repo,
            number=submitted.number,
            by_bot=await deps.is_bot(review.user_login),
        )
        prompt = await deps.commands.handle(
            creator,
            SubmitPrompt(
                session_id=session.id,
                content=content,
                client_request_id="feedback-"
                + hashlib.sha256(submitted.key.encode()).hexdigest()[:40],
            ),
            origin="github",
        )
        await deps.store.github_feedback.set_prompt(
            submitted.key, session_id=session.id, prompt_id=prompt.id
        )
        return "done"

    async def _may_review(self, repo: RepoRef, review: Review) -> bool:
        login = review.user_login
        if login is None:
            return False
        return await self.deps.is_bot(login) or await self.deps.allowed(repo, login)

    async def _cap_comment(
        self, conn: AsyncConnection, submitted: Submitted, session_id: str
    ) -> None:
        cap = self.deps.settings.github.bot.max_feedback_prompts
        text = (
            f"This pull request's review feedback went into its openinspect session {cap} "
            "times already, the most it gets automatically; further reviews are not sent. "
            f"Continue in the session: {session_url(self.deps.settings, session_id)}"
        )
        await self.deps.post(
            conn,
            key=f"comment:{submitted.repo.lower()}#{submitted.number}:attempt_limit",
            kind="comment",
            target={"repo": submitted.repo, "number": submitted.number},
            body={"text": text},
            session_id=session_id,
        )


def feedback_prompt(
    review: Review,
    comments: list[PostedReviewComment],
    *,
    repo: str,
    number: int,
    by_bot: bool,
) -> str:
    """The follow-up prompt: who reviewed, what to do, the review fenced as untrusted data."""
    who = "The review bot" if by_bot else f"@{review.user_login}"
    verdict = "requested changes" if review.state == "CHANGES_REQUESTED" else "commented"
    data = {
        "review": {"state": review.state, "reviewer": review.user_login, "body": review.body},
        "comments": [
            {
                "path": c.path,
                "line": c.line,
                "side": c.side,
                "body": c.body,
                "diff_hunk": c.diff_hunk[-HUNK_MAX_CHARS:],
            }
            for c in comments
        ],
    }
    block = render_untrusted(
        data,
        source=f"GitHub (a review of pull request #{number} of {repo})",
        received_at=utcnow(),
        summary=f"Review {review.url}",
        max_chars=CONTEXT_MAX_CHARS,
    )
    return (
        f"{who} reviewed the pull request you opened (#{number} of {repo}) and {verdict}. "
        "Address the review in this session's branch: change what the review rightly asks "
        "for, and say briefly what you changed and where you disagree.\n\n" + block
    )
