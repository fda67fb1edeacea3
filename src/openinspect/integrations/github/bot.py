"""The review bot's door: the deliveries that ask for a review or an answer (CONTRACT §1).

``dispatch`` takes

- ``pull_request`` ``opened`` / ``ready_for_review`` when auto-review is on for the repo (its own
  setting, else ``bot.auto_review``); drafts and bot authors are skipped unless
  ``bot.review_drafts`` / ``bot.review_bot_authors``;
- ``pull_request`` ``review_requested`` when the requested reviewer is the App's bot;
- ``issue_comment`` / ``pull_request_review_comment`` ``created`` on a pull request that mentions
  the bot and is not a fix request (those are ``fixes``'), from anyone but the bot;

stores it in the GitHub inbox keyed by the GitHub object (``review:<repo>:<event>:<id>``) and
answers ``processed``. In the background (:meth:`ReviewBot.handle`): a mention's sender must be
allowed (``bot.allowed_users``, else write/maintain/admin from GitHub; fail closed); 👀 on the
pull request (a review) or on the comment (a mention), through the outbox; then one session per
delivery (``github:<delivery id>``), origin ``github``, on the pull request's head
(``refs/pull/<n>/head``, which GitHub keeps for forks too; the base when it is gone), as the
sender's linked openinspect account, else the bot's own user (``bot.app_user``). The prompt
carries the pull request's title, body and diff (cut at ``bot.diff_max_bytes``, with the files
list) as untrusted data, and the repo's review instructions. A mention's answer (the session's
final message) is posted when its prompt ends, on the conversation or in the review comment's
thread (``fixes.FixReplies``, found by the ``answer``/``answer_thread`` decision).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from openinspect.automations.github import Short, Text
from openinspect.automations.untrusted import render_untrusted
from openinspect.domain.commands import TITLE_MAX, StartSession
from openinspect.domain.events import utcnow
from openinspect.domain.models import User
from openinspect.errors import BranchNotFound, ConflictError, ScmNotFound
from openinspect.integrations.github.deps import BotDeps
from openinspect.integrations.github.fixes import (
    ANSWER,
    ANSWER_THREAD,
    FixReplies,
    _Part,
    _Repository,
    _User,
    files_summary,
    thread_answer_key,
)
from openinspect.integrations.github.inbox import GithubInbox
from openinspect.integrations.github.mentions import ask_of, fix_request, mentions
from openinspect.scm.base import PullFile, PullRequest, RepoRef
from openinspect.settings import GitHubBotSettings
from openinspect.store.github_feedback import feedback_key
from openinspect.store.inbox import InboxItem
from openinspect.store.review_settings import EffectiveReviewSettings, effective

log = logging.getLogger(__name__)
KIND = "review"
FILES_LISTED = 300
APP_USER_EMAIL_DOMAIN = "github.invalid"
REVIEW_ACTIONS = ("opened", "ready_for_review", "review_requested")
ANSWERED = ("mention", "thread_reply")


class _Pull(_Part):
    number: int
    draft: bool = False
    user: _User


class _PullDelivery(_Part):
    action: Short
    repository: _Repository
    pull_request: _Pull
    sender: _User
    requested_reviewer: _User | None = None


class _Issue(_Part):
    number: int
    pull_request: dict[str, Any] | None = None


class _Comment(_Part):
    id: int
    body: Text = ""
    user: _User
    path: Short | None = None
    line: int | None = None
    original_line: int | None = None
    diff_hunk: Text | None = None
    in_reply_to_id: int | None = None


class _CommentDelivery(_Part):
    action: Short
    repository: _Repository
    issue: _Issue | None = None
    pull_request: _Pull | None = None
    comment: _Comment


class Ask(_Part):
    """A review or a question, as stored in the inbox."""

    repo: str
    number: int
    trigger: str  # opened | ready_for_review | review_requested | mention | thread_reply
    login: str
    user_id: int
    delivery_id: str
    subject: str | None = None  # issue_comment | review_comment, for a mention
    comment_id: int | None = None
    question: str | None = None
    path: str | None = None
    line: int | None = None
    diff_hunk: str | None = None
    in_reply_to: int | None = None
    """The root of the review thread a review comment replies in."""

    @property
    def answered(self) -> bool:
        """A question (a mention, a reply in the bot's thread), not a review request."""
        return self.trigger in ANSWERED


class ReviewBot:
    """The review door (a ``GithubHandler``) and its inbox handler."""

    def __init__(self, deps: BotDeps, inbox: GithubInbox) -> None:
        self.deps = deps
        self.inbox = inbox
        inbox.register(KIND, self.handle)

    async def dispatch(self, event: str, payload: dict[str, Any], delivery_id: str) -> str:
        ask = await self.parse(event, payload, delivery_id)
        if ask is None:
            return "ignored"
        target = ask.comment_id if ask.comment_id is not None else f"{ask.number}:{delivery_id}"
        key = f"{KIND}:{ask.repo.lower()}:{ask.trigger}:{target}"
        accepted = await self.inbox.accept(KIND, key, ask.model_dump(mode="json"))
        return "processed" if accepted else "ignored"

    async def parse(self, event: str, payload: dict[str, Any], delivery_id: str) -> Ask | None:
        """The ask a delivery carries for the review bot, or None."""
        deps, bot = self.deps, self.deps.settings.github.bot
        try:
            if event == "pull_request":
                pr = _PullDelivery.model_validate(payload)
                if pr.action not in REVIEW_ACTIONS:
                    return None
                if pr.action == "review_requested":
                    reviewer = pr.requested_reviewer
                    if reviewer is None or not await deps.is_bot(reviewer.login):
                        return None
                elif not await self._auto_review(pr):
                    return None
                return Ask(
                    repo=pr.repository.full_name,
                    number=pr.pull_request.number,
                    trigger=pr.action,
                    login=pr.sender.login,
                    user_id=pr.sender.id,
                    delivery_id=delivery_id,
                )
            if event not in ("issue_comment", "pull_request_review_comment"):
                return None
            delivery = _CommentDelivery.model_validate(payload)
        except ValidationError:
            return None
        if delivery.action != "created":
            return None
        if event == "issue_comment":
            if delivery.issue is None or delivery.issue.pull_request is None:
                return None
            number, subject = delivery.issue.number, "issue_comment"
        else:
            if delivery.pull_request is None:
                return None
            number, subject = delivery.pull_request.number, "review_comment"
        comment = delivery.comment
        text, slug = comment.body[: bot.comment_max_chars], await deps.slug()
        if fix_request(text, slug) is not None:
            return None
        if mentions(text, slug):
            trigger = "mention"
        elif subject == "review_comment" and comment.in_reply_to_id is not None:
            trigger = "thread_reply"  # in whose thread is asked of GitHub, in the background
        else:
            return None
        if await deps.is_bot(comment.user.login):
            return None
        return Ask(
            repo=delivery.repository.full_name,
            number=number,
            trigger=trigger,
            login=comment.user.login,
            user_id=comment.user.id,
            delivery_id=delivery_id,
            subject=subject,
            comment_id=comment.id,
            question=ask_of(text, slug),
            path=comment.path,
            line=comment.line or comment.original_line,
            diff_hunk=(comment.diff_hunk or "")[: bot.comment_max_chars] or None,
            in_reply_to=comment.in_reply_to_id if subject == "review_comment" else None,
        )

    async def _auto_review(self, pr: _PullDelivery) -> bool:
        bot = self.deps.settings.github.bot
        if pr.pull_request.draft and not bot.review_drafts:
            return False
        author = pr.pull_request.user
        is_bot_author = (author.type or "").lower() == "bot" or author.login.endswith("[bot]")
        if is_bot_author and not bot.review_bot_authors:
            return False
        own = await self._repo_settings(pr.repository.full_name)
        return own.auto_review

    async def _repo_settings(self, repo: str) -> EffectiveReviewSettings:
        deps = self.deps
        url = f"{deps.settings.github.web_url.rstrip('/')}/{repo}"
        registered = await deps.store.repos.find(url) or await deps.store.repos.find(repo)
        own = await deps.store.review_settings.get(registered.id) if registered else None
        return effective(own, deps.settings.github.bot)

    async def handle(self, item: InboxItem) -> str:
        """Act on one stored ask (see the module docstring)."""
        ask = Ask.model_validate(item.payload)
        deps = self.deps
        repo = RepoRef.parse(ask.repo)
        if await deps.is_bot(ask.login):
            return "ignored"
        if ask.trigger == "thread_reply" and not await self._in_bots_thread(repo, ask):
            return "ignored"
        if ask.answered and not await deps.allowed(repo, ask.login):
            log.info("github: %s may not ask the bot on %s", ask.login, ask.repo)
            return "ignored"
        if ask.answered and ask.subject and ask.comment_id is not None:
            await deps.react(ask.repo, ask.subject, ask.comment_id)
        else:
            await deps.react(ask.repo, "issue", ask.number)
        pull = await deps.github.get_pull(repo, ask.number)
        if pull.state != "open":
            return "ignored"
        files = await deps.github.pull_files(repo, ask.number, FILES_LISTED)
        own = await self._repo_settings(ask.repo)
        user = await deps.linked_user(ask.user_id) or await self.app_user()
        text = review_prompt(ask, pull, files, own.instructions, deps.settings.github.bot)
        command = StartSession(
            repo=f"{deps.settings.github.web_url.rstrip('/')}/{ask.repo}",
            base_branch=pull.base,
            model=own.model,
            title=_title(ask, pull),
            prompt=text,
            idempotency_key=f"github:{ask.delivery_id}"[:128],
            origin_ref=f"github:{ask.repo}#{ask.number}",
            start_ref=f"refs/pull/{ask.number}/head",
        )
        try:
            started = await deps.commands.handle(user, command, origin="github")
        except BranchNotFound:
            started = await deps.commands.handle(
                user, command.model_copy(update={"start_ref": None}), origin="github"
            )
        if ask.answered and ask.comment_id is not None and started.prompt:
            # The answer is posted when the prompt ends (``fixes.FixReplies``), found by this;
            # a prompt that ended already is answered now.
            if ask.subject == "review_comment":
                outcome = ANSWER_THREAD
                key = thread_answer_key(ask.repo, ask.in_reply_to or ask.comment_id, ask.comment_id)
            else:
                outcome, key = ANSWER, feedback_key(ANSWER, ask.repo, ask.comment_id)
            recorded = await deps.store.github_feedback.record(
                key=key,
                repo=ask.repo,
                number=ask.number,
                outcome=outcome,
                session_id=started.session.id,
                prompt_id=started.prompt.id,
            )
            await FixReplies(deps).catch_up(recorded.feedback)
        return "done"

    async def _in_bots_thread(self, repo: RepoRef, ask: Ask) -> bool:
        """Whether the review thread ``ask`` replies in was started by the bot (its root line
        comment, read from GitHub: the delivery's word is not taken)."""
        if ask.in_reply_to is None:
            return False
        try:
            root = await self.deps.github.get_review_comment(repo, ask.in_reply_to)
        except ScmNotFound:
            return False
        return await self.deps.is_bot(root.user_login)

    async def app_user(self) -> User:
        """The bot's own openinspect user (made on first use, as a member)."""
        name = self.deps.settings.github.bot.app_user
        email = f"{name}@{APP_USER_EMAIL_DOMAIN}"
        people = self.deps.store.users
        found = await people.with_email(email)
        if found:
            return found[0]
        try:
            return await people.add(name=name, email=email, role="member")
        except ConflictError:  # made meanwhile by another request
            return (await people.with_email(email))[0]


def _title(ask: Ask, pull: PullRequest) -> str:
    what = "answer on" if ask.answered else "review"
    return f"GitHub: {what} PR #{pull.number}: {pull.title}"[:TITLE_MAX]


def diff_text(files: list[PullFile], max_bytes: int) -> tuple[str, bool]:
    """The pull request's diff, file by file, cut at ``max_bytes``; whether it was cut."""
    parts: list[str] = []
    size, cut = 0, False
    for f in files:
        part = f"--- {f.filename} ({f.status})\n{f.patch or '(binary or too large to show)'}\n"
        if size + len(part.encode()) > max_bytes:
            cut = True
            break
        parts.append(part)
        size += len(part.encode())
    return "".join(parts), cut


def review_prompt(
    ask: Ask,
    pull: PullRequest,
    files: list[PullFile],
    instructions: str | None,
    bot: GitHubBotSettings,
) -> str:
    """What the review session is asked: the task, then the pull request as untrusted data."""
    diff, cut = diff_text(files, bot.diff_max_bytes)
    data: dict[str, Any] = {
        "pull_request": {
            "number": pull.number,
            "title": pull.title,
            "body": pull.body,
            "author": pull.author_login,
            "head": pull.head,
            "base": pull.base,
            "url": pull.url,
        },
        "diff": diff,
    }
    if cut:
        data["changed_files"] = files_summary(files).splitlines()
    if ask.answered:
        data["comment"] = {"by": ask.login, "text": ask.question}
        if ask.subject == "review_comment":
            data["comment"].update(path=ask.path, line=ask.line, diff_hunk=ask.diff_hunk)
    where = f"pull request #{pull.number} of {ask.repo}"
    if ask.answered:
        said = (
            "replied in a review thread you started"
            if ask.trigger == "thread_reply"
            else ("asked you something")
        )
        where_reply = "in that thread" if ask.subject == "review_comment" else "on the pull request"
        lines = [
            f"@{ask.login} {said} on GitHub, on {where}. Answer them: your final message is "
            f"posted as your reply {where_reply}. Call submit_review only if they ask for a "
            "review; then review as below.",
        ]
        review = "To review:"
    else:
        lines = [f"Review {where}."]
        review = "Then"
    lines += [
        "",
        "You are on the pull request's head commit. Read the diff below and the code around "
        f"it; run the tests if that helps. {review} call submit_review once with event COMMENT, "
        "APPROVE or REQUEST_CHANGES, a short summary as body, and inline comments: each on a "
        "line of the diff (side RIGHT with the new file's line numbers, LEFT with the old "
        "file's), with a suggestion (the replacement text of those lines) where a fix is "
        "clear — one applyable suggestion per comment. Do not change or push code.",
    ]
    if cut:
        lines.append(f"The diff was cut at {bot.diff_max_bytes} bytes; changed files are listed.")
    if instructions:
        lines += ["", "The repository's review instructions:", instructions]
    context = render_untrusted(
        data,
        source=f"GitHub ({where})",
        received_at=utcnow(),
        summary=f"Pull request #{pull.number}: {pull.title}",
    )
    return "\n".join(lines) + "\n\n" + context
