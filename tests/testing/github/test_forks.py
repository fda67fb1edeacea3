"""Forks: a user's second bare repo they may push to, a PR from its branch into the parent
(``head.repo`` the fork, ``head.label`` ``user:branch``), and ``refs/pull/<n>/head`` in the base
repo for every PR, fetched by git and kept current as the head moves."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from githubkit_schemas.latest import models
from pydantic import TypeAdapter

from tests.testing.github.conftest import FIXED_CALC, Repo
from tests.testing.test_github_server import commit, git


def test_a_pull_from_a_fork_and_its_pull_ref(repo: Repo, tmp_path: Path) -> None:
    fake, name = repo.fake, repo.full_name
    fork = fake.fork(name, "carol")
    assert (fork.full_name, fork.fork_of) == (f"carol/{repo.name}", name)
    assert fake.fork(name, "carol") == fork  # forking again answers with the same fork
    carol = fake.user_token("carol")
    work = tmp_path / "carol"
    git("clone", "-q", fake.clone_url(fork.full_name, carol, user="carol"), str(work))
    git("checkout", "-q", "-b", "patch", cwd=work)
    first = commit(work, "bob.txt")
    git("push", "-q", "origin", "patch", cwd=work)
    acted = fake.open_pull(name, "carol:patch", by="carol")
    assert acted.record.head_repo == fork.key
    pr = fake.pull(name, acted.record.number)
    assert (pr.head, pr.head_sha, pr.head_owner) == ("patch", first, "carol")
    assert acted.delivery is not None
    opened = TypeAdapter(models.WebhookPullRequestOpened).validate_python(acted.delivery.payload)
    head = opened.pull_request.head
    assert (head.label, head.ref, head.sha) == ("carol:patch", "patch", first)
    assert head.repo is not None and (head.repo.full_name, head.repo.fork) == (fork.full_name, True)
    assert opened.pull_request.base.repo.full_name == name
    shown = httpx.get(
        f"{fake.api_url}/repos/{fork.full_name}", headers={"Authorization": f"token {carol}"}
    ).json()
    assert (shown["fork"], shown["parent"]["full_name"]) == (True, name)
    # The base repo holds refs/pull/<n>/head: git fetches it from there.
    token = fake.mint_installation_token(repo.installation_id).token
    base = tmp_path / "base"
    git("clone", "-q", fake.clone_url(name, token), str(base))
    git("fetch", "-q", "origin", f"refs/pull/{pr.number}/head:pr", cwd=base)
    assert git("rev-parse", "pr", cwd=base).stdout.strip() == first
    # carol pushes again: the PR follows, with synchronize, and so does the pull ref.
    second = commit(work, "bob2.txt")
    git("push", "-q", "origin", "patch", cwd=work)
    [sync] = repo.wait("pull_request", "synchronize")
    assert sync.payload["pull_request"]["head"]["sha"] == second
    assert sync.payload["pull_request"]["head"]["repo"]["full_name"] == fork.full_name
    git("fetch", "-q", "origin", f"+refs/pull/{pr.number}/head:pr", cwd=base)
    assert git("rev-parse", "pr", cwd=base).stdout.strip() == second
    files = httpx.get(
        f"{fake.api_url}/repos/{name}/pulls/{pr.number}/files",
        headers={"Authorization": f"token {token}"},
    ).json()
    assert [f["filename"] for f in files] == ["bob.txt", "bob2.txt"]
    # Nobody pushes pull refs; the fork's PR merges like any other.
    refused = git("push", "origin", f"HEAD:refs/pull/{pr.number}/head", cwd=base, check=False)
    assert refused.returncode != 0
    fake.merge_pull(name, pr.number)
    assert fake.pull(name, pr.number).merged
    main = fake.branch_sha(name, "main")
    assert main is not None
    parents = git("--git-dir", str(fake.bare_path(name)), "rev-list", "--parents", "-n1", main)
    assert parents.stdout.split()[2] == second


def test_every_pull_has_a_pull_ref_that_follows_its_head(repo: Repo, tmp_path: Path) -> None:
    fake, name = repo.fake, repo.full_name
    number = repo.open_fix()
    pull = fake.pull(name, number)
    token = fake.mint_installation_token(repo.installation_id).token
    refs = git("ls-remote", fake.clone_url(name, token), cwd=tmp_path).stdout
    assert f"{pull.head_sha}\trefs/pull/{number}/head" in refs
    moved = fake.commit(name, pull.head, {"calc.py": FIXED_CALC + "# more\n"}, by="alice")
    refs = git("ls-remote", fake.clone_url(name, token), cwd=tmp_path).stdout
    assert f"{moved}\trefs/pull/{number}/head" in refs
    # Forking needs to see the repo; a PR's head must be a fork of it.
    with pytest.raises(ValueError, match="cannot see"):
        fake.fork(name, "bob")
    refused = httpx.post(f"{fake.url}/_fake/pulls/{name}", json={"head": "bob:idea", "by": "alice"})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"resource": "PullRequest", "field": "head", "code": "invalid"}
    ]
