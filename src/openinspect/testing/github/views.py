"""Records rendered as GitHub JSON (looking up the users they mention), and webhook payloads."""

from __future__ import annotations

from typing import Any

from openinspect.testing.github import checks, gitops
from openinspect.testing.github.records import JobRec, PullRec, RepoRec, WorkflowRunRec
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

    def pull(self, repo: RepoRec, pull: PullRec) -> Json:
        path = self.state.bare_path(repo)
        try:
            commits = gitops.count_commits(path, pull.base_sha, pull.head_sha)
        except gitops.GitOpError:
            commits = 0
        merged_by = self.login(pull.merged_by) if pull.merged_by else None
        return self.site.pull(
            repo,
            self.repo(repo),
            pull,
            self.login(pull.user_login, pull.user_is_bot),
            merged_by,
            commits,
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
    ) -> Json:
        fields: dict[str, Any] = {
            "action": action,
            "number": pull.number,
            "pull_request": self.pull(repo, pull),
        }
        if changes:
            fields["changes"] = changes
        return self._envelope(repo, sender, **fields)

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
