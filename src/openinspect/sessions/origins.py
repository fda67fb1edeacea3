"""What the control plane knows about a session's origin: the path it has under the git proxy,
the upstream the proxy forwards to, and the credentials host-side git uses for the mirror.

A GitHub origin (on the configured host) is reached with an App installation token minted for
that one repository; it lives only in this process and in the environment of host git commands,
never in a file, a URL, a command line or a sandbox. Local paths are served straight from disk;
other URLs are fetched without credentials.

It also keeps the bare mirrors sandboxes clone from: one mirror operation at a time per repo
(``mirror_lock``), so concurrent session creates, diffs and refreshes of one origin queue instead
of failing on git's ref locks or on each other's half-made clone.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import re
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import httpx

from openinspect.errors import GitError, InvalidInput, RepoUnusable, ScmNotFound
from openinspect.scm.base import RepoRef, parse_repo_url
from openinspect.scm.upstream import HttpUpstream, LocalUpstream, Upstream
from openinspect.sessions.git import GIT_TIMEOUT_S, ensure_mirror, git, git_env, mirror_path

if TYPE_CHECKING:  # githubkit is heavy: loaded with the client (people.service), not here
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
LOCAL_OWNER = "local"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# A mirror operation is one clone or fetch (each bounded by GIT_TIMEOUT_S); a few may be queued.
MIRROR_LOCK_TIMEOUT_S = 3 * GIT_TIMEOUT_S
MIRROR_LOCK_POLL_S = 0.05
# Per event loop, so a lock is never awaited from a loop it was not made in (tests run many).
_MIRROR_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def mirror_lock(mirror: Path) -> AsyncIterator[None]:
    """Hold the one-operation-at-a-time lock of ``mirror``.

    Two layers: an ``asyncio.Lock`` queues this process's coroutines without a thread each, and
    an exclusive ``fcntl.flock`` on ``<mirror>.lock`` queues other processes sharing the home
    (several replicas on one host, or on a filesystem whose locks span hosts, such as NFSv4).
    The flock is polled rather than waited for in a thread, so a cancelled request leaves no
    thread holding a lock behind.
    """
    locks = _MIRROR_LOCKS.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault(mirror, asyncio.Lock()):
        mirror.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(mirror.with_name(mirror.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + MIRROR_LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GitError(
                            f"The repo mirror stayed busy for {MIRROR_LOCK_TIMEOUT_S:g} s",
                            hint="Another server process is fetching this repo; try again",
                        ) from None
                    await asyncio.sleep(MIRROR_LOCK_POLL_S)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def scrub_paths(text: str, *paths: Path) -> str:
    """``text`` (git's stderr, say) without the server's own paths: the mirrors, the home."""
    for path, shown in [(p, "<server>") for p in paths] + [(Path.home(), "~")]:
        if str(path) not in ("", "/"):
            text = text.replace(str(path), shown)
    return text


class Origins:
    def __init__(self, github: GitHub | None, web_url: str) -> None:
        self._github = github
        self._web_url = web_url
        self._client: httpx.AsyncClient | None = None

    @property
    def github(self) -> GitHub | None:
        return self._github

    def github_repo(self, origin: str) -> RepoRef | None:
        """The GitHub repository of ``origin``, when it is on the configured GitHub host."""
        return parse_repo_url(origin, self._web_url)

    def canonical(self, origin: str) -> str:
        """One spelling per repository: a GitHub origin becomes ``<web_url>/<owner>/<name>.git``
        (so ``git@github.com:o/n`` and ``https://github.com/o/n`` share a mirror and a proxy
        upstream); anything else is returned as it is."""
        repo = self.github_repo(origin)
        if repo is None:
            return origin
        return f"{self._web_url.rstrip('/')}/{repo.owner}/{repo.name}.git"

    def slug(self, origin: str) -> tuple[str, str]:
        """``(owner, name)`` under the git proxy: the GitHub owner/name, else ``local/<name>``."""
        repo = self.github_repo(origin)
        if repo is not None:
            return repo.owner, repo.name
        name = PurePosixPath(origin.rstrip("/").replace(":", "/")).name.removesuffix(".git")
        return LOCAL_OWNER, _UNSAFE.sub("-", name).strip("-.") or "repo"

    def proxy_path(self, session_id: str, origin: str) -> str:
        owner, name = self.slug(origin)
        return f"/git/{session_id}/{owner}/{name}.git"

    async def _credential(self, repo: RepoRef) -> tuple[str, str] | None:
        if self._github is None:
            return None
        try:
            token = await self._github.installation_token(repo)
        except ScmNotFound:
            # The App is not installed there: a public repository still works anonymously
            # (fetch only); for a private one git reports the failure.
            log.info("no App installation for %s; using it without credentials", repo.slug)
            return None
        return "x-access-token", token.token

    def upstream(self, origin: str) -> Upstream:
        """Where the git proxy forwards a session's fetches and pushes."""
        if "://" not in origin and not origin.startswith("git@"):
            return LocalUpstream(origin)
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        repo = self.github_repo(origin)
        if repo is None:
            return HttpUpstream(origin, None, client=self._client)

        async def credential() -> tuple[str, str] | None:
            # Asked on every request: a token about to expire is replaced between two pushes
            # without the agent noticing.
            return await self._credential(repo)

        return HttpUpstream(self.canonical(origin), credential, client=self._client)

    async def git_env(self, origin: str) -> dict[str, str]:
        """Extra environment for host git talking to ``origin`` (mirror clone and fetch): an
        ``http.extraHeader`` given through GIT_CONFIG_* variables, so the token never lands in
        the mirror's config or on a command line."""
        repo = self.github_repo(origin)
        if repo is None or self._github is None:
            return {}
        credential = await self._credential(repo)
        if credential is None:
            return {}
        basic = base64.b64encode(f"{credential[0]}:{credential[1]}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }

    async def mirror(self, mirrors_dir: Path, origin: str) -> Path:
        """The bare mirror of ``origin``, cloned or refreshed under its ``mirror_lock``. An origin
        git cannot fetch is the caller's mistake: ``RepoUnusable`` (422), whose message carries
        git's reason without the server's paths."""
        if origin.startswith("-"):
            raise InvalidInput(
                f"Invalid repo {origin!r}: it must not start with '-'",
                hint="Give a git URL or a registered repo name",
            )
        async with mirror_lock(mirror_path(mirrors_dir, origin)):
            try:
                return await ensure_mirror(mirrors_dir, origin, await self.git_env(origin))
            except GitError as exc:
                reason = scrub_paths(exc.message, mirrors_dir)
                raise RepoUnusable(
                    f"Cannot fetch the repo: {reason}",
                    hint="Check the URL, that the repository exists, and that this server can "
                    "reach it (private GitHub repos need the App installed)",
                ) from exc

    async def create_branch(self, mirrors_dir: Path, origin: str, branch: str, sha: str) -> None:
        """Make ``branch`` on ``origin`` at ``sha`` (a commit its mirror has), as this server:
        where a session's own branch starts when it does not start at its base. A plain push
        from the mirror: it creates the branch or fails (``GitError``), never moves one."""
        if origin.startswith("-") or branch.startswith("-"):
            raise InvalidInput("A repo or branch name must not start with '-'")
        env = {**git_env(), **await self.git_env(origin)}
        target = self.canonical(origin) if self.github_repo(origin) else origin
        await git(
            "push",
            "--quiet",
            "--no-verify",
            f"--force-with-lease=refs/heads/{branch}:",  # only if it does not exist
            target,
            f"{sha}:refs/heads/{branch}",
            cwd=mirror_path(mirrors_dir, origin),
            env=env,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
