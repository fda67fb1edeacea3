"""Forks and the pull refs GitHub keeps for every pull request.

A fork is a second bare repository ``<user>/<name>`` cloned from its parent (``fork_of``); its
owner may push to it. A PR's head branch lives in its repo or in a fork, and the base repo holds
``refs/pull/<n>/head`` at the PR's head commit either way (fetched from the fork), kept current
whenever the head moves, so git clients can fetch any PR from the base repo.
"""

from __future__ import annotations

from pathlib import Path

from openinspect.testing.github import gitops
from openinspect.testing.github.records import LEVELS, PullRec, RepoRec
from openinspect.testing.github.state import FakeState, Identity

PULL_REFS = "refs/pull/"
"""Hidden from pushes (``receive.hideRefs``), as on GitHub; only the fake moves them."""


def pull_ref(pull: PullRec) -> str:
    return f"{PULL_REFS}{pull.number}/head"


def fork(state: FakeState, repo: RepoRec, login: str) -> RepoRec:
    """``login``'s fork of ``repo`` (GitHub answers with the existing fork when there is one)."""
    user = state.require_user(login)
    if LEVELS[state.level(Identity("user", login=user.login), repo)] < LEVELS["pull"]:
        raise ValueError(f"{user.login} cannot see {repo.full_name}, so cannot fork it")
    existing = fork_owned_by(state, repo, user.login)
    if existing is not None:
        return existing
    made = state.create_repo(
        f"{user.login}/{repo.name}",
        source=state.bare_path(repo),
        private=repo.private,
        default_branch=repo.default_branch,
        collaborators={},
    )
    with state.change():
        made.fork_of = repo.key
    return made


def fork_owned_by(state: FakeState, repo: RepoRec, owner: str) -> RepoRec | None:
    with state.lock:
        return next(
            (
                r
                for r in state.data.repos.values()
                if r.fork_of == repo.key and r.owner.lower() == owner.lower()
            ),
            None,
        )


def head_repo(state: FakeState, repo: RepoRec, pull: PullRec) -> RepoRec:
    """Where the PR's head branch lives: ``repo`` itself or a fork of it."""
    if pull.head_repo is None:
        return repo
    return state.data.repos.get(pull.head_repo, repo)


def head_path(state: FakeState, repo: RepoRec, pull: PullRec) -> Path:
    return state.bare_path(head_repo(state, repo, pull))


def sync_pull_ref(state: FakeState, repo: RepoRec, pull: PullRec) -> str | None:
    """Point ``refs/pull/<n>/head`` in the base repo at the head branch's tip (fetching a fork's
    commits); returns that sha, or None when the head branch is gone."""
    base = state.bare_path(repo)
    if pull.head_repo is None:
        sha = gitops.branch_sha(base, pull.head)
        if sha is not None and gitops.ref_sha(base, pull_ref(pull)) != sha:
            gitops.git("update-ref", pull_ref(pull), sha, cwd=base)
        return sha
    source = head_path(state, repo, pull)
    sha = gitops.branch_sha(source, pull.head)
    if sha is not None and gitops.ref_sha(base, pull_ref(pull)) != sha:
        gitops.git(
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            str(source),
            f"+refs/heads/{pull.head}:{pull_ref(pull)}",
            cwd=base,
        )
    return sha


def pulls_headed_at(state: FakeState, repo: RepoRec, branch: str) -> list[tuple[RepoRec, PullRec]]:
    """Open PRs (in ``repo`` or in its parents) whose head is ``branch`` of ``repo``."""
    with state.lock:
        found = []
        for base in state.data.repos.values():
            for pull in base.pulls.values():
                where = pull.head_repo or base.key
                if pull.state == "open" and pull.head == branch and where == repo.key:
                    found.append((base, pull))
        return found
