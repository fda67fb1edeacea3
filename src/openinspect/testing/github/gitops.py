"""The fake's bare repositories: create or import, read refs, and merge like GitHub's merge
button (a real merge commit, made with ``git merge-tree`` without a work tree)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

GIT_TIMEOUT_S = 60.0
EMPTY_SHA = "0" * 40


class GitOpError(RuntimeError):
    """A git command on a fake repository failed; the message has git's stderr."""


def _env() -> dict[str, str]:
    # Never read the developer's ~/.gitconfig or /etc/gitconfig into the fake's repositories.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return env | {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}


def git(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=_env() | (env or {}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise GitOpError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def create_bare(path: Path, default_branch: str, source: Path | None) -> None:
    """An empty bare repo, or a bare copy of every branch and tag of ``source``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        git("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path))
    else:
        git("clone", "--quiet", "--bare", "--no-local", str(source), str(path))
        git("remote", "remove", "origin", cwd=path)
        if branch_sha(path, default_branch) is None:
            branches = ", ".join(refs(path, "refs/heads/")) or "none"
            raise GitOpError(
                f"{source} has no branch {default_branch!r} (branches: {branches}); "
                "pass default_branch= one of them"
            )
        git("symbolic-ref", "HEAD", f"refs/heads/{default_branch}", cwd=path)
    # GitHub's pull refs (refs/pull/<n>/head) are fetchable but nobody may push them.
    git("config", "receive.hideRefs", "refs/pull/", cwd=path)
    # No http.receivepack needed: http-backend serves pushes to an authenticated REMOTE_USER,
    # and git_http only lets authorised pushes through.


def refs(path: Path, prefix: str = "refs/") -> dict[str, str]:
    """``{ref name: sha}`` under ``prefix`` (``refs/heads/`` names are stripped of it)."""
    out = git("for-each-ref", "--format=%(objectname) %(refname)", prefix, cwd=path)
    result = {}
    for line in out.splitlines():
        sha, _, name = line.partition(" ")
        result[name.removeprefix("refs/heads/") if prefix == "refs/heads/" else name] = sha
    return result


def branch_sha(path: Path, branch: str) -> str | None:
    return ref_sha(path, f"refs/heads/{branch}")


def ref_sha(path: Path, ref: str) -> str | None:
    """The commit ``ref`` (a full ref name) points at, or None."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    return proc.stdout.strip() or None


def is_ancestor(path: Path, older: str, newer: str) -> bool:
    proc = subprocess.run(
        ["git", "merge-base", "--is-ancestor", older, newer],
        cwd=path,
        env=_env(),
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    return proc.returncode == 0


def count_commits(path: Path, base: str, head: str) -> int:
    return int(git("rev-list", "--count", f"{base}..{head}", cwd=path).strip() or 0)


def commit_info(path: Path, sha: str) -> dict[str, str]:
    fmt = "%T%n%an%n%ae%n%aI%n%cn%n%ce%n%cI%n%P%n%B"
    out = git("show", "-s", f"--format={fmt}", sha, cwd=path)
    lines = out.split("\n", 8)
    keys = (
        "tree",
        "author_name",
        "author_email",
        "author_date",
        "committer_name",
        "committer_email",
        "committer_date",
        "parents",
        "message",
    )
    return dict(zip(keys, [*lines, ""][:9], strict=True))


def merge(path: Path, base: str, head: str, message: str, merger: str, email: str) -> str:
    """Merge ``head`` (a full ref name, e.g. a PR's ``refs/pull/<n>/head``) into branch
    ``base`` with a merge commit; return its sha.

    Raises GitOpError when they conflict or one is missing (GitHub: "not mergeable").
    """
    base_sha, head_sha = branch_sha(path, base), ref_sha(path, head)
    if base_sha is None or head_sha is None:
        raise GitOpError(f"cannot merge {head} into {base}: a branch is missing")
    proc = subprocess.run(
        ["git", "merge-tree", "--write-tree", base_sha, head_sha],
        cwd=path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise GitOpError(f"{head} does not merge cleanly into {base}: {proc.stdout.strip()}")
    tree = proc.stdout.split("\n", 1)[0].strip()
    who = {
        "GIT_AUTHOR_NAME": merger,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": "GitHub",
        "GIT_COMMITTER_EMAIL": "noreply@github.com",
    }
    commit = git(
        "commit-tree", tree, "-p", base_sha, "-p", head_sha, "-m", message, cwd=path, env=who
    ).strip()
    git("update-ref", f"refs/heads/{base}", commit, base_sha, cwd=path)
    return commit


def commit_files(
    path: Path,
    branch: str,
    files: dict[str, str],
    message: str,
    *,
    start: str,
    author: tuple[str, str],
) -> tuple[str, str]:
    """Commit ``files`` (path → text) on ``branch``, which starts from branch ``start`` if it
    does not exist yet; no work tree needed. Returns (old sha or EMPTY_SHA, new sha)."""
    old = branch_sha(path, branch)
    parent = old or branch_sha(path, start)
    who = {
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0],
        "GIT_COMMITTER_EMAIL": author[1],
    }
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent:
            git("read-tree", parent, cwd=path, env=index)
        for name, text in files.items():
            blob = git("hash-object", "-w", "--stdin", cwd=path, stdin=text).strip()
            git(
                "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", cwd=path, env=index
            )
        tree = git("write-tree", cwd=path, env=index).strip()
    parents = ["-p", parent] if parent else []
    new = git("commit-tree", tree, *parents, "-m", message, cwd=path, env=who).strip()
    git("update-ref", f"refs/heads/{branch}", new, old or EMPTY_SHA, cwd=path)
    return old or EMPTY_SHA, new
