"""Which repository ``--repo`` means, decided where the CLI runs.

A relative path means nothing to a server with another working directory (it once made a session
work on the server's own checkout and push a branch into it), so the CLI sends only absolute
paths: a local path, or the current directory when ``--repo`` is left out, becomes the root of the
git repository it is in. URLs pass through; any other word is a registered repo's name or id
(unless a directory of that name exists here, which wins), checked against the server's list so
that it is never taken for a path there either. Errors name the absolute path that was tried: it
is the person's own path, on their own machine.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openinspect.errors import InvalidInput, RepoNotFound

GIT_TIMEOUT_S = 10.0
_REPO_HINT = "Pass --repo with a local git repository, a git URL or a registered repo name"
_NO_REPO_HINT = "Run it inside a git repository, or pass --repo with a path, a git URL or a name"


@dataclass(frozen=True)
class RepoChoice:
    """What ``--repo`` resolved to."""

    value: str
    """What is sent to the server: an absolute path, a URL, or a registered repo's name or id."""
    local_root: Path | None = None
    """The repository's root when it is a path on this machine."""
    name: str | None = None
    """A registered repo's name or id that still has to be checked against the server."""


def is_url(value: str) -> bool:
    """The server's rule (``normalize_origin``): a scheme, or scp-like ``git@host:path``."""
    return "://" in value or value.startswith("git@")


def _looks_like_path(value: str) -> bool:
    return value in (".", "..") or value.startswith(("/", "~", "./", "../"))


def _rev_parse(path: Path, *queries: str) -> list[str] | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(path), "rev-parse", *queries],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.splitlines() if done.returncode == 0 else None


def git_root(path: Path) -> Path | None:
    """The top of the work tree holding ``path`` (or the bare repository it is in), else None."""
    top = _rev_parse(path, "--show-toplevel")
    if top:
        return Path(top[0])
    bare = _rev_parse(path, "--is-bare-repository", "--absolute-git-dir")
    if bare and len(bare) == 2 and bare[0] == "true":
        return Path(bare[1])
    return None


def resolve_repo(value: str | None, cwd: Path) -> RepoChoice:
    """Resolve ``--repo`` (None: the repository of ``cwd``)."""
    if value is None:
        root = git_root(cwd)
        if root is None:
            raise InvalidInput(
                f"No --repo given, and {cwd.resolve()} is not inside a git repository",
                hint=_NO_REPO_HINT,
            )
        return RepoChoice(str(root), local_root=root)
    value = value.strip()
    if not value:
        raise InvalidInput("--repo is empty", hint=_REPO_HINT)
    if is_url(value):
        return RepoChoice(value)
    path = (cwd / Path(value).expanduser()).resolve()
    if path.exists():
        root = git_root(path)
        if root is None:
            raise InvalidInput(f"Not a git repository: {path}", hint=_REPO_HINT)
        return RepoChoice(str(root), local_root=root)
    if _looks_like_path(value):
        raise InvalidInput(f"Repo path does not exist: {path}", hint=_REPO_HINT)
    return RepoChoice(value, name=value)


def check_registered(choice: RepoChoice, repos: list[dict[str, Any]], cwd: Path) -> RepoChoice:
    """A name must be a registered repo's name or id (the server would otherwise look for a
    directory of that name in its own working directory)."""
    if choice.name is None:
        return choice
    for repo in repos:
        if choice.name in (repo["name"], repo["id"]):
            return choice
    missing = (cwd / choice.name).resolve()
    raise RepoNotFound(
        f"No registered repo named {choice.name!r}, and no directory {missing}",
        hint="List the registered repos with `openinspect repos`, or pass a path or a git URL",
    )
