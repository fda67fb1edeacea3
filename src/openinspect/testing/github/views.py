"""Records rendered as GitHub JSON (looking up the users they mention), and webhook payloads."""

from __future__ import annotations

from typing import Any

from openinspect.testing.github import checks, forks, gitops, review_shapes
from openinspect.testing.github.records import (
    CommentRec,
    JobRec,
    PullRec,
    RepoRec,
    ReviewCommentRec,
    ReviewRec,
    WorkflowRunRec,
)
from openinspect.testing.github.shapes import Json, Site
from openinspect.testing.github.state import FakeState, Identity


class Views:
    def __init__(self, state: FakeState, site: Site) -> None:
        self.state = state
        self.site = site

    def login(self, login: str, is_bot: bool = False) -> Json:
        if is_bot or login == self.state.app.bot_login:
            return self.site.bot(self.state.app)
        user = self.state.user(login)
        if user is None:
            return self.site.simple_user(login, 0)
        return self.site.user(user)

    def repo(self, repo: RepoRec, identity: Identity | None = None) -> Json:
        level = None
        if identity is not None and identity.kind in ("user", "installation"):
            level = self.state.level(identity, repo)
        return self.site.repository(repo, self.login(repo.owner), level)

    def full_repo(self, repo: RepoRec, identity: Identity | None = None) -> Json:
        """``GET /repos/{o}/{r}``: a fork also names its ``parent`` and ``source``."""
        data = self.repo(repo, identity)
        parent = self.state.data.repos.get(repo.fork_of) if repo.fork_of else None
        if parent is not None:
            data["parent"] = data["source"] = self.repo(parent)
        return data

    def pull(self, repo: RepoRec, pull: PullRec) -> Json:
        path = self.state.bare_path(repo)
        try:
            commits = gitops.count_commits(path, pull.base_sha, pull.head_sha)
        except gitops.GitOpError:
            commits = 0
        merged_by = self.login(pull.merged_by) if pull.merged_by else None
        source = forks.head_repo(self.state, repo, pull)
        return self.site.pull(
            repo,
            self.repo(repo),
            pull,
            self.login(pull.user_login, pull.user_is_bot),
            merged_by,
            commits,
            head_repo=None if source is repo else self.repo(source),
            reviewers=[self.login(r) for r in pull.requested_reviewers],
        )

    def review(self, repo: RepoRec, pull: PullRec, review: ReviewRec) -> Json:
        user = self.login(review.user_login, review.user_is_bot)
        return self.site.review(repo, pull, review, user)

    def review_comment(self, repo: RepoRec, pull: PullRec, rec: ReviewCommentRec) -> Json:
        user = self.login(rec.user_login, rec.user_is_bot)
        return review_shapes.review_comment(self.site, repo, pull, rec, user)

    def issue_comment(self, repo: RepoRec, pull: PullRec, rec: CommentRec) -> Json:
        user = self.login(rec.user_login, rec.user_is_bot)
        return review_shapes.issue_comment(
            self.site, repo, pull.number, rec.id, rec.body, user, rec.created_at
        )

    def installation_stub(self, repo: RepoRec) -> Json | None:
        inst = self.state.installation_of(repo)
        if inst is None:
            return None
        return {"id": inst.id, "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{inst.id}"}

    def _envelope(self, repo: RepoRec, sender: Json, **fields: Any) -> Json:
        payload: Json = {**fields, "repository": self.repo(repo), "sender": sender}
        installation = self.installation_stub(repo)
        if installation is not None:
            payload["installation"] = installation
        return payload

    def pull_request_event(
        self,
        action: str,
        repo: RepoRec,
        pull: PullRec,
        sender: Json,
        changes: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Json:
        """``pull_request`` ``action``; ``extra`` adds fields (``requested_reviewer``…)."""
        fields: dict[str, Any] = {
            "action": action,
            "number": pull.number,
            "pull_request": self.pull(repo, pull),
            **extra,
        }
        if changes:
            fields["changes"] = changes
        return self._envelope(repo, sender, **fields)

    def issue_comment_event(
        self, repo: RepoRec, pull: PullRec, rec: CommentRec, sender: Json
    ) -> Json:
        author = self.login(pull.user_login, pull.user_is_bot)
        return self._envelope(
            repo,
            sender,
            action="created",
            issue=review_shapes.issue(self.site, repo, pull, author),
            comment=self.issue_comment(repo, pull, rec),
        )

    def review_comment_event(
        self, repo: RepoRec, pull: PullRec, rec: ReviewCommentRec, sender: Json
    ) -> Json:
        return self._envelope(
            repo,
            sender,
            action="created",
            comment=self.review_comment(repo, pull, rec),
            pull_request=self.pull(repo, pull),
        )

    def review_event(self, repo: RepoRec, pull: PullRec, review: ReviewRec, sender: Json) -> Json:
        """``pull_request_review`` ``submitted``; the review's state is lower-case here."""
        shown = self.review(repo, pull, review)
        shown["state"] = review.state.lower()
        return self._envelope(
            repo, sender, action="submitted", review=shown, pull_request=self.pull(repo, pull)
        )

    def push_event(self, repo: RepoRec, ref: str, before: str, after: str, sender: Json) -> Json:
        created, deleted = before == gitops.EMPTY_SHA, after == gitops.EMPTY_SHA
        forced = False
        if not created and not deleted:
            forced = not gitops.is_ancestor(self.state.bare_path(repo), before, after)
        short = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        return self._envelope(
            repo,
            sender,
            ref=ref,
            before=before,
            after=after,
            created=created,
            deleted=deleted,
            forced=forced,
            base_ref=None,
            compare=f"{self.site.web}/{repo.full_name}/compare/{short}",
            commits=[],
            head_commit=None,
            pusher={"name": sender["login"], "email": None},
        )

    def check_run_event(self, repo: RepoRec, job: JobRec, sender: Json) -> Json:
        check = checks.check_run(self.site, repo, self.repo(repo), job)
        return self._envelope(repo, sender, action="completed", check_run=check)

    def workflow_run_event(self, repo: RepoRec, run: WorkflowRunRec, sender: Json) -> Json:
        actor = self.login(run.actor)
        return self._envelope(
            repo,
            sender,
            action="completed",
            workflow_run=checks.workflow_run(self.site, repo, self.repo(repo), run, actor),
            workflow=checks.workflow(self.site, repo, run),
        )
