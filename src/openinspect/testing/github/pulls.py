"""Pull request rules of the fake: one open PR per head branch, heads (in the repo or a fork of
it) and bases must exist and differ, merges make real merge commits, issue comments are kept on
the PR (reviews: ``reviews``)."""

from __future__ import annotations

import time
from typing import Any

from openinspect.testing.github import forks, gitops
from openinspect.testing.github.records import LEVELS, CommentRec, PullRec, RepoRec
from openinspect.testing.github.state import (
    ApiError,
    FakeState,
    Identity,
    not_found,
    validation_failed,
)

BODY_MAX_CHARS = 65_536
"""GitHub's limit on the body of a comment or a review."""


def too_long(resource: str, text: str) -> None:
    if len(text) > BODY_MAX_CHARS:
        raise validation_failed(
            resource=resource,
            code="custom",
            field="body",
            message=f"body is too long (maximum is {BODY_MAX_CHARS} characters)",
        )


def author_of(state: FakeState, identity: Identity) -> tuple[str, bool]:
    """(login, is_bot) of whoever acts: the user, or the App's bot for an installation."""
    if identity.kind == "installation":
        return state.app.bot_login, True
    assert identity.login is not None
    return identity.login, False


def may_write_pulls(state: FakeState, identity: Identity, repo: RepoRec) -> bool:
    if identity.kind == "installation":
        return repo.key in identity.repos and identity.may("pull_requests")
    return identity.kind == "user" and LEVELS[state.level(identity, repo)] >= LEVELS["pull"]


def get(repo: RepoRec, number: int) -> PullRec:
    pull = repo.pulls.get(number)
    if pull is None:
        raise not_found()
    return pull


def create(state: FakeState, identity: Identity, repo: RepoRec, body: dict[str, Any]) -> PullRec:
    if not may_write_pulls(state, identity, repo):
        raise ApiError(403, "Resource not accessible by integration")
    head = str(body.get("head") or "")
    base = str(body.get("base") or "")
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise validation_failed(resource="PullRequest", field="title", code="missing_field")
    head_owner, sep, head_branch = head.rpartition(":")
    if not sep:
        head_owner, head_branch = repo.owner, head
    source = (
        repo
        if head_owner.lower() == repo.owner.lower()
        else forks.fork_owned_by(state, repo, head_owner)
    )
    if source is None or not head_branch:
        raise validation_failed(resource="PullRequest", field="head", code="invalid")
    path = state.bare_path(repo)
    head_sha = gitops.branch_sha(state.bare_path(source), head_branch)
    base_sha = gitops.branch_sha(path, base) if base else None
    if head_sha is None:
        raise validation_failed(resource="PullRequest", field="head", code="invalid")
    if base_sha is None:
        raise validation_failed(resource="PullRequest", field="base", code="invalid")
    login, is_bot = author_of(state, identity)
    fork = None if source is repo else source.key
    with state.change():
        for other in repo.pulls.values():
            if other.state == "open" and other.head == head_branch and other.head_repo == fork:
                raise validation_failed(
                    resource="PullRequest",
                    code="custom",
                    message=f"A pull request already exists for {source.owner}:{head_branch}.",
                )
        now = time.time()
        pull = PullRec(
            id=state.next_id(),
            number=repo.next_number,
            title=title,
            body=body.get("body") if isinstance(body.get("body"), str) else None,
            head=head_branch,
            base=base,
            head_sha=head_sha,
            base_sha=base_sha,
            head_repo=fork,
            head_owner=None if fork is None else source.owner,
            user_login=login,
            user_is_bot=is_bot,
            draft=body.get("draft") is True,
            created_at=now,
            updated_at=now,
        )
        forks.sync_pull_ref(state, repo, pull)
        if gitops.is_ancestor(path, head_sha, base_sha):
            gitops.git("update-ref", "-d", forks.pull_ref(pull), cwd=path)
            raise validation_failed(
                resource="PullRequest",
                code="custom",
                message=f"No commits between {base} and {head_branch}",
            )
        repo.next_number += 1
        repo.pulls[pull.number] = pull
        return pull


def update(
    state: FakeState, identity: Identity, repo: RepoRec, number: int, body: dict[str, Any]
) -> tuple[PullRec, dict[str, Any]]:
    """Apply a PATCH; returns the PR and GitHub's ``changes`` (old values) for the webhook."""
    pull = get(repo, number)
    login, _ = author_of(state, identity)
    is_author = login.lower() == pull.user_login.lower()
    if not (is_author or LEVELS[state.level(identity, repo)] >= LEVELS["push"]):
        raise ApiError(403, "Resource not accessible by integration")
    changes: dict[str, Any] = {}
    with state.change():
        for key in ("title", "body"):
            if key in body and body[key] is not None and body[key] != getattr(pull, key):
                changes[key] = {"from": getattr(pull, key)}
                setattr(pull, key, str(body[key]))
        if body.get("state") in ("open", "closed") and body["state"] != pull.state:
            if pull.merged:
                raise validation_failed(
                    resource="PullRequest", code="custom", message="Cannot reopen a merged PR."
                )
            pull.state = body["state"]
            pull.closed_at = time.time() if pull.state == "closed" else None
        pull.updated_at = time.time()
    return pull, changes


def refresh_head(state: FakeState, repo: RepoRec, pull: PullRec) -> None:
    """Follow the head branch (and ``refs/pull/<n>/head``) and, while open, the base branch."""
    if pull.state != "open":
        return
    path = state.bare_path(repo)
    with state.change():
        pull.head_sha = forks.sync_pull_ref(state, repo, pull) or pull.head_sha
        pull.base_sha = gitops.branch_sha(path, pull.base) or pull.base_sha


def merge(state: FakeState, repo: RepoRec, number: int, merger: str) -> PullRec:
    pull = get(repo, number)
    if pull.state != "open":
        raise ApiError(405, "Pull Request is not mergeable")
    refresh_head(state, repo, pull)
    owner = pull.head_owner or repo.owner
    message = f"Merge pull request #{pull.number} from {owner}/{pull.head}\n\n{pull.title}\n"
    try:
        sha = gitops.merge(
            state.bare_path(repo),
            pull.base,
            forks.pull_ref(pull),
            message,
            merger,
            f"{merger}@users.noreply.github.com",
        )
    except gitops.GitOpError as exc:
        raise ApiError(405, "Pull Request is not mergeable") from exc
    with state.change():
        now = time.time()
        pull.state = "closed"
        pull.merged = True
        pull.merged_at = pull.closed_at = pull.updated_at = now
        pull.merged_by = merger
        pull.merge_commit_sha = sha
        repo.pushed_at = now
    return pull


def close(state: FakeState, repo: RepoRec, number: int) -> PullRec:
    pull = get(repo, number)
    with state.change():
        if pull.state == "open":
            pull.state = "closed"
            pull.closed_at = pull.updated_at = time.time()
    return pull


def comment(
    state: FakeState, identity: Identity, repo: RepoRec, number: int, body: dict[str, Any]
) -> CommentRec:
    pull = get(repo, number)
    if not may_write_pulls(state, identity, repo):
        raise ApiError(403, "Resource not accessible by integration")
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise validation_failed(resource="IssueComment", field="body", code="missing_field")
    too_long("IssueComment", text)
    login, is_bot = author_of(state, identity)
    with state.change():
        rec = CommentRec(
            id=state.next_id(),
            user_login=login,
            user_is_bot=is_bot,
            body=text,
            created_at=time.time(),
        )
        pull.comments.append(rec)
        return rec
