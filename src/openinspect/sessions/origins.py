"""What the control plane knows about a session's origin: the path it has under the git proxy,
the upstream the proxy forwards to, and the credentials host-side git uses for the mirror.

A GitHub origin (on the configured host) is reached with an App installation token minted for
that one repository; it lives only in this process and in the environment of host git commands,
never in a file, a URL, a command line or a sandbox. Local paths are served straight from disk;
other URLs are fetched without credentials.
"""

from __future__ import annotations

import base64
import logging
import re
from pathlib import PurePosixPath

import httpx

from openinspect.errors import ScmNotFound
from openinspect.scm.base import RepoRef, parse_repo_url
from openinspect.scm.github import GitHub
from openinspect.scm.upstream import HttpUpstream, LocalUpstream, Upstream

log = logging.getLogger(__name__)
LOCAL_OWNER = "local"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
