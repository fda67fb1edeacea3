"""Fix requests: "@<bot> fix …" in a pull request's conversation or in a review comment.

``dispatch`` takes an ``issue_comment`` ``created`` on a pull request, or a
``pull_request_review_comment`` ``created``, whose text mentions the bot with the word "fix" right
after (``mentions.fix_request``), from anyone but the bot; it stores the ask in the GitHub inbox
keyed by the comment (``fix:<repo>:<kind>:<comment id>``) and answers ``processed``. The rest
happens in the background (:meth:`FixRequests.handle`):

1. **Who asks.** They must be allowed (``bot.allowed_users``, else write/maintain/admin on the
   repo, from GitHub): anyone else is ignored, silently. They must have an openinspect account
   linked to their GitHub account: without one the bot answers once on the pull request how to
   sign in, and does nothing else.
2. **👀** on their comment (an outbox row: posted once, at once).
3. **Where the fix goes.** The pull request is read from GitHub as the App.
   - Same repository, and the asker may push there (write/maintain/admin): a session **as the
     asker on the pull request's own branch** (``StartSession.work_branch``): the sandbox starts
     at its head, the commit lands there by the asker (the usual per-prompt attribution), as a
     fast-forward; no pull request is opened.
   - A fork's pull request, or an asker who may not push to its branch: a session with a new
     branch of its own made at the pull request's head (``refs/pull/<n>/head``, which GitHub
     keeps in the base repository; if it is gone, at the base branch, and the prompt says so),
     told to open a pull request into the same base with ``create_pull_request``.
   The prompt: the ask (the asker's own words), then the pull request's title, body and changed
   files, and for a review comment its file, line and diff hunk, fenced as untrusted data.
4. **The answer**, when the prompt ends (:class:`FixReplies`, a feed projection): a comment on
   the pull request saying what was done (the commit pushed, or the new pull request), or that
   it failed, with the session's link. The same projection answers the review bot's mentions
   (``bot``): the session's final message, on the conversation or in the review comment's
   thread.

Each comment is decided once: the inbox drops a redelivered comment, the session start is keyed
by the delivery (``github:<delivery id>``), and ``github_feedback`` keeps the decision
(``comment:``/``review-comment:<repo>:<id>``) that the answer is found by.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.automations.github import Short, Text, Url
from openinspect.automations.untrusted import render_untrusted
from openinspect.domain.commands import TITLE_MAX, StartSession
from openinspect.domain.events import AgentText, Event, GitPush, PromptFinished, utcnow
from openinspect.domain.models import User
from openinspect.errors import BranchNotFound
from openinspect.integrations.github.deps import WRITERS, BotDeps
from openinspect.integrations.github.inbox import GithubInbox
from openinspect.integrations.github.mentions import fix_request
from openinspect.integrations.links import session_url, web_base
from openinspect.integrations.outbox import Projection
from openinspect.scm.base import PullFile, PullRequest, RepoRef
from openinspect.sessions.commands import Started
from openinspect.store.feed import FeedBatch
from openinspect.store.github_feedback import Feedback, feedback_key
from openinspect.store.inbox import InboxItem

log = logging.getLogger(__name__)
KIND = "fix"
CONSUMER = "github_fixes"
FIX_BRANCH = "fix_branch"
FIX_PR = "fix_pr"
UNLINKED = "unlinked"
FIX_OUTCOMES = (FIX_BRANCH, FIX_PR)
ANSWER = "answer"
"""A mention on the pull request's conversation, answered there (``bot``'s sessions)."""
ANSWER_THREAD = "answer_thread"
"""A mention in a review comment, answered in its thread."""
ANSWER_OUTCOMES = (ANSWER, ANSWER_THREAD)
REPLY_MAX_CHARS = 20_000
Subject = Literal["issue_comment", "review_comment"]
FILES_SHOWN = 100
ANSWER_MAX_CHARS = 2_000
CATCH_UP_EVENTS = 50
"""How many of a session's newest prompt ends :meth:`FixReplies.catch_up` looks through."""
MARKER = "<!-- openinspect:"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_Part):
    login: Short
    id: int
    type: Short | None = None


class _Repository(_Part):
    full_name: Short


class _Issue(_Part):
    number: int
    pull_request: dict[str, Any] | None = None


class _IssueComment(_Part):
    id: int
    body: Text = ""
    html_url: Url | None = None
    user: _User


class _ReviewComment(_Part):
    id: int
    body: Text = ""
    html_url: Url | None = None
    path: Short = ""
    line: int | None = None
    original_line: int | None = None
    diff_hunk: Text = ""
    user: _User


class _PullNumber(_Part):
    number: int


class _Delivery(_Part):
    action: Short
    repository: _Repository
    issue: _Issue | None = None
    pull_request: _PullNumber | None = None
    comment: dict[str, Any]


class Ask(_Part):
    """A fix request as stored in the inbox: everything the handler needs of the delivery."""

    repo: str
    number: int
    subject: Subject
    comment_id: int
    ask: str
    login: str
    user_id: int
    delivery_id: str
    path: str | None = None
    line: int | None = None
    diff_hunk: str | None = None

    @property
    def key(self) -> str:
        kind = "comment" if self.subject == "issue_comment" else "review-comment"
        return feedback_key(kind, self.repo, self.comment_id)


def parse_ask(
    event: str, payload: Mapping[str, Any], delivery_id: str, slug: str, max_chars: int
) -> Ask | None:
    """The fix request a delivery carries, or None (not a created comment on a pull request, no
    "@<slug> fix …" in it, or a shape we do not know)."""
    if event not in ("issue_comment", "pull_request_review_comment"):
        return None
    try:
        delivery = _Delivery.model_validate(payload)
        if delivery.action != "created":
            return None
        comment: _IssueComment | _ReviewComment
        if event == "issue_comment":
            if delivery.issue is None or delivery.issue.pull_request is None:
                return None  # a comment on an issue, not a pull request
            comment, number = _IssueComment.model_validate(delivery.comment), delivery.issue.number
        else:
            if delivery.pull_request is None:
                return None
            comment = _ReviewComment.model_validate(delivery.comment)
            number = delivery.pull_request.number
    except ValidationError:
        return None
    ask = fix_request(comment.body[:max_chars], slug)
    if ask is None:
        return None
    review = comment if isinstance(comment, _ReviewComment) else None
    return Ask(
        repo=delivery.repository.full_name,
        number=number,
        subject="issue_comment" if review is None else "review_comment",
        comment_id=comment.id,
        ask=ask,
        login=comment.user.login,
        user_id=comment.user.id,
        delivery_id=delivery_id,
        path=review.path if review else None,
        line=(review.line or review.original_line) if review else None,
        diff_hunk=review.diff_hunk[:max_chars] if review else None,
    )


class FixRequests:
    """The fix-request door (a ``GithubHandler``) and its inbox handler."""

    def __init__(self, deps: BotDeps, inbox: GithubInbox) -> None:
        self.deps = deps
        self.inbox = inbox
        inbox.register(KIND, self.handle)

    async def dispatch(self, event: str, payload: dict[str, Any], delivery_id: str) -> str:
        if event not in ("issue_comment", "pull_request_review_comment"):
            return "ignored"
        deps = self.deps
        bot = deps.settings.github.bot
        ask = parse_ask(event, payload, delivery_id, await deps.slug(), bot.comment_max_chars)
        if ask is None or await deps.is_bot(ask.login):
            return "ignored"
        kind = "issue" if ask.subject == "issue_comment" else "review"
        key = f"{KIND}:{ask.repo.lower()}:{kind}:{ask.comment_id}"
        accepted = await self.inbox.accept(KIND, key, ask.model_dump(mode="json"))
        return "processed" if accepted else "ignored"

    async def handle(self, item: InboxItem) -> str:
        """Act on one stored fix request (see the module docstring)."""
        ask = Ask.model_validate(item.payload)
        deps = self.deps
        repo = RepoRef.parse(ask.repo)
        if await deps.is_bot(ask.login) or not await deps.allowed(repo, ask.login):
            log.info("github: %s may not ask for fixes on %s", ask.login, ask.repo)
            return "ignored"
        user = await deps.linked_user(ask.user_id)
        if user is None:
            await self._sign_in_first(ask)
            return "done"
        await deps.react(ask.repo, ask.subject, ask.comment_id)
        pull = await deps.github.get_pull(repo, ask.number)
        if pull.state != "open":
            return "ignored"
        same_repo = (pull.head_repo or "").lower() == ask.repo.lower()
        may_push = same_repo and await deps.permission(repo, ask.login) in WRITERS
        files = await deps.github.pull_files(repo, ask.number, FILES_SHOWN)
        context = _context(ask, pull, files_summary(files))
        started: Started | None = None
        if may_push:
            try:
                started = await self._start(user, ask, pull, work_branch=pull.head, ctx=context)
                outcome = FIX_BRANCH
            except BranchNotFound:  # the branch went away meanwhile: a pull request of its own
                started = None
        if started is None:
            outcome = FIX_PR
            try:
                started = await self._start(
                    user, ask, pull, start_ref=f"refs/pull/{ask.number}/head", ctx=context
                )
            except BranchNotFound:
                started = await self._start(user, ask, pull, ctx=context)
        prompt = started.prompt
        recorded = await deps.store.github_feedback.record(
            key=ask.key,
            repo=ask.repo,
            number=ask.number,
            outcome=outcome,
            session_id=started.session.id,
            prompt_id=prompt.id if prompt else None,
        )
        await FixReplies(deps).catch_up(recorded.feedback)
        return "done"

    async def _start(
        self,
        user: User,
        ask: Ask,
        pull: PullRequest,
        *,
        ctx: str,
        work_branch: str | None = None,
        start_ref: str | None = None,
    ) -> Started:
        deps = self.deps
        text = fix_prompt(ask, pull, ctx, on_branch=work_branch is not None, start_ref=start_ref)
        command = StartSession(
            repo=f"{deps.settings.github.web_url.rstrip('/')}/{ask.repo}",
            base_branch=pull.base,
            model=deps.settings.github.bot.model,
            title=f"GitHub: fix PR #{ask.number}: {ask.ask}"[:TITLE_MAX],
            prompt=text,
            idempotency_key=f"github:{ask.delivery_id}"[:128],
            origin_ref=f"github:{ask.repo}#{ask.number}",
            work_branch=work_branch,
            start_ref=start_ref,
        )
        return await deps.commands.handle(user, command, origin="github")

    async def _sign_in_first(self, ask: Ask) -> None:
        deps = self.deps
        recorded = await deps.store.github_feedback.record(
            key=ask.key, repo=ask.repo, number=ask.number, outcome=UNLINKED
        )
        if not recorded.fresh:
            return
        text = (
            f"@{ask.login} I can only fix things for people who have an openinspect account "
            f"linked to their GitHub account. Sign in with GitHub at {web_base(deps.settings)} "
            "once, then ask again."
        )
        await deps.post_now(
            key=f"comment:{ask.repo.lower()}#{ask.number}:sign-in:{ask.comment_id}",
            kind="comment",
            target={"repo": ask.repo, "number": ask.number},
            body={"text": text},
        )


def files_summary(files: list[PullFile]) -> str:
    """One line per changed file: status, name, lines added and removed."""
    lines = [f"{f.status} {f.filename} (+{f.additions} -{f.deletions})" for f in files]
    if len(files) >= FILES_SHOWN:
        lines.append(f"(the first {FILES_SHOWN} files)")
    return "\n".join(lines) or "(no files)"


def _context(ask: Ask, pull: PullRequest, files: str) -> str:
    data: dict[str, Any] = {
        "pull_request": {
            "number": pull.number,
            "title": pull.title,
            "body": pull.body,
            "head": pull.head,
            "base": pull.base,
            "url": pull.url,
        },
        "changed_files": files.splitlines(),
    }
    if ask.subject == "review_comment":
        data["review_comment"] = {"path": ask.path, "line": ask.line, "diff_hunk": ask.diff_hunk}
    return render_untrusted(
        data,
        source=f"GitHub (pull request #{pull.number} of {ask.repo})",
        received_at=utcnow(),
        summary=f"Pull request #{pull.number}: {pull.title}",
    )


def fix_prompt(
    ask: Ask, pull: PullRequest, context: str, *, on_branch: bool, start_ref: str | None
) -> str:
    """The fix session's prompt: the ask, where the session works, what to do at the end, and
    the pull request as untrusted data."""
    where = f"pull request #{pull.number} of {ask.repo}"
    about = f" (about {ask.path}, line {ask.line})" if ask.subject == "review_comment" else ""
    lines = [f"@{ask.login} asked on GitHub, on {where}{about}:", "", ask.ask, ""]
    if on_branch:
        lines += [
            f"You are on the pull request's own branch {pull.head} (its base is {pull.base}). "
            "Your changes are committed and pushed to that branch when you finish: keep its "
            "history (no rebase, no force push) and do not open a pull request, this one is it. "
            "End with a short summary of what you changed.",
        ]
    else:
        start = (
            "at the pull request's head"
            if start_ref
            else f"at its base {pull.base}, because its head could not be fetched (make the "
            "fix on top of the base and say so)"
        )
        lines += [
            f"You cannot push to this pull request's branch, so you are on a new branch of your "
            f"own, started {start}. When the fix is done, open a pull request into {pull.base} "
            f"with create_pull_request; say in its body that it fixes {where} ({pull.url}). "
            "End with a short summary of what you changed.",
        ]
    return "\n".join(lines) + "\n\n" + context


class FixReplies:
    """The answer to a fix request when its prompt ends: a feed projection (see the module
    docstring), decided in the cursor's transaction."""

    def __init__(self, deps: BotDeps) -> None:
        self.deps = deps

    @property
    def projection(self) -> Projection:
        return Projection(CONSUMER, self.on_feed, types=("prompt-finished",))

    async def on_feed(self, batch: FeedBatch, conn: AsyncConnection) -> None:
        finished = {
            e.event.prompt_id: e.event
            for e in batch.entries
            if isinstance(e.event, PromptFinished) and e.event.prompt_id
        }
        ledger = self.deps.store.github_feedback
        for decision in await ledger.by_prompt(conn, list(finished)):
            if decision.prompt_id is not None:
                await self._post(conn, decision, finished[decision.prompt_id])

    async def catch_up(self, decision: Feedback) -> None:
        """Answer ``decision`` now if its prompt already ended.

        A decision is recorded once its session has started, so a quick prompt can end before
        it is in the store, and the feed passes that prompt's end by without an answer. The
        one who records the decision calls this after: whichever of the two sees both the
        decision and the prompt's end posts, and the outbox key keeps it to one comment."""
        if decision.session_id is None or decision.prompt_id is None:
            return
        ended = await self.deps.store.events.latest_of(
            decision.session_id, ("prompt-finished",), CATCH_UP_EVENTS
        )
        event = next(
            (
                e
                for e in ended
                if isinstance(e, PromptFinished) and e.prompt_id == decision.prompt_id
            ),
            None,
        )
        if event is None:
            return  # still running: the feed answers when it ends
        async with self.deps.store.engine.begin() as conn:
            await self._post(conn, decision, event)

    async def _post(self, conn: AsyncConnection, decision: Feedback, event: PromptFinished) -> None:
        if decision.session_id is None:
            return
        target: dict[str, Any] = {"repo": decision.repo, "number": decision.number}
        kind = "comment"
        if decision.outcome in FIX_OUTCOMES:
            text = await self._answer(decision.outcome, decision.session_id, event)
        elif decision.outcome in ANSWER_OUTCOMES:
            text = await self._reply(decision.session_id, event)
            if decision.outcome == ANSWER_THREAD:
                kind = "reply"
                target["comment_id"] = thread_root(decision.key)
        else:
            return
        await self.deps.post(
            conn,
            key=f"comment:{decision.session_id}:{decision.prompt_id}",
            kind=kind,
            target=target,
            body={"text": text},
            session_id=decision.session_id,
        )

    async def _reply(self, session_id: str, event: PromptFinished) -> str:
        """A mention's answer: the session's final message, with its link."""
        link = f"Session: {session_url(self.deps.settings, session_id)}"
        if event.status != "success":
            return f"I could not answer ({_why(event)}).\n\n{link}"
        said = _said(await self._of_prompt(session_id, event, ("agent-text",)))
        if not said.strip():
            return f"Done, with nothing to say.\n\n{link}"
        return f"{_clean(said.strip(), REPLY_MAX_CHARS)}\n\n{link}"

    async def _of_prompt(
        self, session_id: str, event: PromptFinished, types: tuple[str, ...]
    ) -> list[Event]:
        """The finished prompt's newest events of ``types``, newest first."""
        events = await self.deps.store.events.latest_of(session_id, types, 200)
        return [e for e in events if e.prompt_id == event.prompt_id]

    async def _answer(self, outcome: str, session_id: str, event: PromptFinished) -> str:
        store, settings = self.deps.store, self.deps.settings
        link = f"Session: {session_url(settings, session_id)}"
        if event.status != "success":
            return f"The fix did not finish ({_why(event)}).\n\n{link}"
        mine = await self._of_prompt(session_id, event, ("git-push", "agent-text"))
        said = _said(mine)
        summary = f"\n\n{_clean(said, ANSWER_MAX_CHARS)}" if said.strip() else ""
        if outcome == FIX_BRANCH:
            pushed = next((e for e in mine if isinstance(e, GitPush)), None)
            if pushed is None:
                return f"Done, without changes to push.{summary}\n\n{link}"
            return f"Pushed {pushed.sha[:12]} to {pushed.branch}.{summary}\n\n{link}"
        pulls = await store.pulls.for_session(session_id)
        if not pulls:
            return f"Done, but no pull request was opened.{summary}\n\n{link}"
        return f"Opened {pulls[-1].url} with the fix.{summary}\n\n{link}"


def _why(event: PromptFinished) -> str:
    return _clean(event.error.message if event.error else event.status, 300)


def _said(events: list[Event]) -> str:
    """The newest agent text of ``events`` (newest first), or ""."""
    return next((e.text for e in events if isinstance(e, AgentText)), "")


def thread_answer_key(repo: str, root_id: int, comment_id: int) -> str:
    """The decision key of a question asked in a review thread: by the comment asking, with
    the thread's root (GitHub takes replies to the root comment only)."""
    return f"{ANSWER_THREAD}:{repo.lower()}:{root_id}:{comment_id}"


def thread_root(key: str) -> int:
    """The root comment of the thread in a :func:`thread_answer_key`."""
    return int(key.rsplit(":", 2)[1])


def _clean(text: str, limit: int) -> str:
    """Agent or error text fit for a comment: no adoption marker of ours, cut to ``limit``."""
    text = text.replace(MARKER, "<!-- ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
