"""GitHub users acting on pull requests, as ``FakeGitHub`` methods: fork a repo, open a PR
(from a branch or a fork), mark it ready, request a review, comment, comment on the diff,
submit a review. Each checks what GitHub checks (a review comment must anchor in the diff…),
then delivers the webhooks GitHub sends, signed, before returning (``Acted.deliveries``, each
with the receiver's answer); the ``a…`` variants run from a thread for async tests whose
receiver lives on the test's own loop.

``by`` is a user's login, or the App's bot (``fake.bot_login``) to act as the App.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from openinspect.testing.github import forks, pulls, reactions, reviews
from openinspect.testing.github.core import Core
from openinspect.testing.github.records import (
    CommentRec,
    PullRec,
    ReactionRec,
    RepoRec,
    ReviewCommentRec,
    ReviewRec,
)
from openinspect.testing.github.shapes import Json
from openinspect.testing.github.state import DEFAULT_INSTALLATION_PERMISSIONS, Identity
from openinspect.testing.github.webhooks import Delivery

R = TypeVar("R")


@dataclass(frozen=True)
class Acted(Generic[R]):
    """What an action made, and the webhook deliveries it caused (empty without a hook)."""

    record: R
    deliveries: tuple[Delivery, ...]

    @property
    def delivery(self) -> Delivery | None:
        """The main delivery (the last one: a review's ``pull_request_review``)."""
        return self.deliveries[-1] if self.deliveries else None


class People:
    """Mixed into ``FakeGitHub``."""

    core: Core

    @property
    def bot_login(self) -> str:
        """The App's bot user, ``<slug>[bot]``."""
        return self.core.state.app.bot_login

    def _actor(self, login: str, repo: RepoRec) -> tuple[Identity, Json]:
        state = self.core.state
        if login.lower() == state.app.bot_login.lower():
            identity = Identity(
                "installation",
                login=state.app.bot_login,
                repos=frozenset({repo.key}),
                permissions=tuple(sorted(DEFAULT_INSTALLATION_PERMISSIONS.items())),
            )
            return identity, self.core.views.login(state.app.bot_login, True)
        user = state.require_user(login)
        return Identity("user", login=user.login), self.core.views.login(user.login)

    def _send(self, *events: tuple[str, Json]) -> tuple[Delivery, ...]:
        sent = [self.core.emit(event, payload, sync=True) for event, payload in events]
        return tuple(d for d in sent if d is not None)

    # ------------------------------------------------------------------ forks and PRs

    def fork(self, repo: str, user: str) -> RepoRec:
        """``user``'s fork ``<user>/<name>`` of ``repo`` (the existing one if forked before).
        ``user`` owns it, so may push to it (``clone_url(fork.full_name, user_token(user))``
        or ``commit(fork.full_name, …, by=user)``)."""
        return forks.fork(self.core.state, self.core.state.require_repo(repo), user)

    def open_pull(
        self,
        repo: str,
        head: str,
        *,
        by: str,
        base: str | None = None,
        title: str | None = None,
        body: str | None = None,
        draft: bool = False,
    ) -> Acted[PullRec]:
        """``by`` opens a PR from ``head`` (a branch, or ``user:branch`` of ``user``'s fork)
        into ``base`` (default branch); delivers ``pull_request`` ``opened``."""
        rec = self.core.state.require_repo(repo)
        identity, sender = self._actor(by, rec)
        request = {
            "head": head,
            "base": base or rec.default_branch,
            "title": title or f"Changes from {head}",
            "body": body,
            "draft": draft,
        }
        pull = pulls.create(self.core.state, identity, rec, request)
        event = self.core.views.pull_request_event("opened", rec, pull, sender)
        return Acted(pull, self._send(("pull_request", event)))

    def ready_for_review(self, repo: str, number: int, *, by: str | None = None) -> Acted[PullRec]:
        """A draft PR is marked ready (by its author by default): ``ready_for_review``."""
        rec = self.core.state.require_repo(repo)
        pull = pulls.get(rec, number)
        if not pull.draft:
            raise ValueError(f"PR #{number} of {repo} is not a draft")
        _, sender = self._actor(by or pull.user_login, rec)
        with self.core.state.change():
            pull.draft = False
        event = self.core.views.pull_request_event("ready_for_review", rec, pull, sender)
        return Acted(pull, self._send(("pull_request", event)))

    def request_review(
        self, repo: str, number: int, reviewer: str | None = None, *, by: str | None = None
    ) -> Acted[PullRec]:
        """``by`` (the PR's author by default) asks ``reviewer`` (default the App's bot) for a
        review: ``pull_request`` ``review_requested`` with ``requested_reviewer``."""
        rec = self.core.state.require_repo(repo)
        pull = pulls.get(rec, number)
        _, sender = self._actor(by or pull.user_login, rec)
        wanted = reviewer or self.bot_login
        if wanted.lower() != self.bot_login.lower():
            wanted = self.core.state.require_user(wanted).login
        with self.core.state.change():
            if wanted not in pull.requested_reviewers:
                pull.requested_reviewers.append(wanted)
        views = self.core.views
        event = views.pull_request_event(
            "review_requested", rec, pull, sender, requested_reviewer=views.login(wanted)
        )
        return Acted(pull, self._send(("pull_request", event)))

    # ------------------------------------------------------------------ comments and reviews

    def comment(self, repo: str, number: int, body: str, *, by: str) -> Acted[CommentRec]:
        """``by`` comments on the PR's conversation: ``issue_comment`` ``created``."""
        rec = self.core.state.require_repo(repo)
        identity, sender = self._actor(by, rec)
        made = pulls.comment(self.core.state, identity, rec, number, {"body": body})
        pull = pulls.get(rec, number)
        event = self.core.views.issue_comment_event(rec, pull, made, sender)
        return Acted(made, self._send(("issue_comment", event)))

    def review_comment(
        self,
        repo: str,
        number: int,
        body: str,
        *,
        by: str,
        path: str | None = None,
        line: int | None = None,
        side: str = "RIGHT",
        start_line: int | None = None,
        in_reply_to: int | None = None,
    ) -> Acted[ReviewCommentRec]:
        """``by`` comments on ``line`` of ``path`` at the head (a new thread) or replies in the
        thread of comment ``in_reply_to``: ``pull_request_review_comment`` ``created``, then
        the single comment's own review as ``pull_request_review`` ``submitted``."""
        rec = self.core.state.require_repo(repo)
        identity, _ = self._actor(by, rec)
        pull = pulls.get(rec, number)
        pulls.refresh_head(self.core.state, rec, pull)
        if in_reply_to is not None:
            request: dict[str, Any] = {"body": body, "in_reply_to": in_reply_to}
        else:
            request = {"body": body, "commit_id": pull.head_sha, "path": path, "line": line}
            request |= {"side": side, "start_line": start_line}
        review, made = reviews.comment(self.core.state, identity, rec, number, request)
        return Acted(made, self._announce(rec, pull, review, [made], by))

    def submit_review(
        self,
        repo: str,
        number: int,
        event: str = "COMMENT",
        *,
        by: str,
        body: str = "",
        comments: Sequence[dict[str, Any]] = (),
    ) -> Acted[ReviewRec]:
        """``by`` submits a review (``APPROVE``, ``REQUEST_CHANGES`` or ``COMMENT``) with
        ``comments`` as the API takes them (``{path, line, body, side?, start_line?}``):
        ``pull_request_review_comment`` ``created`` for each, then ``pull_request_review``
        ``submitted``. Refused like the API (``ApiError`` 422) when a comment misses the
        diff or the author approves their own PR."""
        rec = self.core.state.require_repo(repo)
        identity, _ = self._actor(by, rec)
        pull = pulls.get(rec, number)
        pulls.refresh_head(self.core.state, rec, pull)
        request = {"event": event, "body": body, "comments": [dict(c) for c in comments]}
        review, made = reviews.create(self.core.state, identity, rec, number, request)
        return Acted(review, self._announce(rec, pull, review, made, by))

    def _announce(
        self,
        repo: RepoRec,
        pull: PullRec,
        review: ReviewRec,
        made: list[ReviewCommentRec],
        by: str,
    ) -> tuple[Delivery, ...]:
        _, sender = self._actor(by, repo)
        views = self.core.views
        events = [
            ("pull_request_review_comment", views.review_comment_event(repo, pull, c, sender))
            for c in made
        ]
        events.append(("pull_request_review", views.review_event(repo, pull, review, sender)))
        return self._send(*events)

    # ------------------------------------------------------------------ reading

    def reviews(self, repo: str, number: int) -> list[ReviewRec]:
        return list(pulls.get(self.core.state.require_repo(repo), number).reviews)

    def review_comments(self, repo: str, number: int) -> list[ReviewCommentRec]:
        return list(pulls.get(self.core.state.require_repo(repo), number).review_comments)

    def reactions(self, repo: str, subject: str | None = None) -> list[ReactionRec]:
        """Reactions in ``repo``; ``subject`` is ``issue:<n>``, ``issue_comment:<id>`` or
        ``pull_comment:<id>`` (a review comment)."""
        rec = self.core.state.require_repo(repo)
        if subject is None:
            return list(rec.reactions)
        return reactions.of(rec, subject)

    # ------------------------------------------------------------------ from async tests

    async def aopen_pull(self, repo: str, head: str, **kw: Any) -> Acted[PullRec]:
        return await asyncio.to_thread(functools.partial(self.open_pull, repo, head, **kw))

    async def aready_for_review(self, repo: str, number: int, **kw: Any) -> Acted[PullRec]:
        return await asyncio.to_thread(functools.partial(self.ready_for_review, repo, number, **kw))

    async def arequest_review(self, repo: str, number: int, *a: Any, **kw: Any) -> Acted[PullRec]:
        call = functools.partial(self.request_review, repo, number, *a, **kw)
        return await asyncio.to_thread(call)

    async def acomment(self, repo: str, number: int, body: str, **kw: Any) -> Acted[CommentRec]:
        return await asyncio.to_thread(functools.partial(self.comment, repo, number, body, **kw))

    async def areview_comment(
        self, repo: str, number: int, body: str, **kw: Any
    ) -> Acted[ReviewCommentRec]:
        call = functools.partial(self.review_comment, repo, number, body, **kw)
        return await asyncio.to_thread(call)

    async def asubmit_review(
        self, repo: str, number: int, event: str = "COMMENT", **kw: Any
    ) -> Acted[ReviewRec]:
        call = functools.partial(self.submit_review, repo, number, event, **kw)
        return await asyncio.to_thread(call)
