"""The GitHub App identity: a JWT signed with the App's key finds the installation of a
repository and mints installation tokens, which are cached (``scm.app_tokens``).

A per-repository token is scoped to that one repository with contents and pull-request write,
so a token that leaks through the git path can touch nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import githubkit
import httpx
import pydantic
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy
from githubkit.config import Config
from githubkit.exception import GitHubException
from githubkit_schemas.latest.types import AppPermissionsType

from openinspect.errors import (
    ConfigError,
    NotConfigured,
    ScmError,
    ScmNotFound,
    ScmRateLimited,
    ScmUnavailable,
)
from openinspect.scm.app_tokens import InstallationTokenCache
from openinspect.scm.base import InstallationToken, RepoRef
from openinspect.scm.github_errors import map_github_error
from openinspect.settings import GitHubSettings

log = logging.getLogger(__name__)

PER_PAGE = 100
REPO_TOKEN_PERMISSIONS: AppPermissionsType = {
    "contents": "write",
    "pull_requests": "write",
    "metadata": "read",
}
"""What a per-repository installation token may do: git fetch/push and pull requests."""
APP_HINT = (
    "Set OPENINSPECT_GITHUB__APP_ID and OPENINSPECT_GITHUB__APP_PRIVATE_KEY "
    "(or OPENINSPECT_GITHUB__APP_PRIVATE_KEY_PATH); see docs/github.md"
)


@asynccontextmanager
async def github_errors(doing: str, api_url: str) -> AsyncIterator[None]:
    """Map anything githubkit, httpx or response validation raises inside the block."""
    try:
        yield
    except (GitHubException, httpx.HTTPError, pydantic.ValidationError) as exc:
        raise map_github_error(exc, doing, api_url) from exc


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_private_key(pem: str) -> None:
    """Raise ConfigError unless ``pem`` is an unencrypted RSA private key (PKCS#1 or #8)."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"The GitHub App private key cannot be read: {exc}",
            hint="Use the .pem file GitHub generated for the App (PKCS#1 or PKCS#8, unencrypted)",
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(
            f"The GitHub App private key must be an RSA key, got {type(key).__name__}",
            hint="Use the .pem file GitHub generated for the App",
        )


class GitHubApp:
    """Installation lookup and installation tokens, for ``scm.github.GitHub``."""

    def __init__(self, settings: GitHubSettings, config: Config) -> None:
        self.settings = settings
        self._config = config
        self._api_url = str(config.base_url).rstrip("/")
        self._client: githubkit.GitHub[AppAuthStrategy] | None = None
        self._installations: dict[str, int] = {}
        self._tokens = InstallationTokenCache(self._mint, margin_s=settings.token_refresh_margin_s)

    def client(self) -> githubkit.GitHub[AppAuthStrategy]:
        """The githubkit client that authenticates as the App (JWT)."""
        if self._client is None:
            settings = self.settings
            if settings.app_id is None or not settings.app_configured:
                raise NotConfigured("The GitHub App is not configured", hint=APP_HINT)
            try:
                pem = settings.private_key_pem()
            except OSError as exc:
                raise ConfigError(
                    f"Cannot read the GitHub App private key file: {exc}", hint=APP_HINT
                ) from exc
            if not pem:
                raise NotConfigured("The GitHub App private key is empty", hint=APP_HINT)
            check_private_key(pem)
            self._client = githubkit.GitHub(
                AppAuthStrategy(settings.app_id, pem), config=self._config
            )
        return self._client

    async def installation_id(self, repo: RepoRef) -> int:
        """The configured installation, or the one GitHub says ``repo`` is in (cached)."""
        if self.settings.installation_id is not None:
            return self.settings.installation_id
        cached = self._installations.get(repo.slug)
        if cached is not None:
            return cached
        app = self.client()
        try:
            async with github_errors(f"looking up the App installation of {repo}", self._api_url):
                response = await app.rest.apps.async_get_repo_installation(repo.owner, repo.name)
                installation_id = response.parsed_data.id
        except ScmNotFound as exc:
            raise ScmNotFound(
                f"The GitHub App is not installed on {repo} (or the repository does not "
                f"exist): {exc.message}",
                hint="Install the App on the repository (GitHub → Settings → Applications)",
            ) from exc
        self._installations[repo.slug] = installation_id
        return installation_id

    async def installation_ids(self) -> list[int]:
        """The configured installation, or every installation of the App."""
        if self.settings.installation_id is not None:
            return [self.settings.installation_id]
        app = self.client()
        async with github_errors("listing the App's installations", self._api_url):
            return [
                inst.id
                async for inst in app.rest.paginate(
                    app.rest.apps.async_list_installations, per_page=PER_PAGE
                )
            ]

    async def repo_token(self, repo: RepoRef) -> InstallationToken:
        """A token for ``repo`` alone, from the cache or freshly minted."""
        installation_id = await self.installation_id(repo)
        try:
            return await self._tokens.get(installation_id, (repo.name,))
        except (ScmUnavailable, ScmRateLimited):
            raise
        except ScmError:
            # The App may have been uninstalled or moved: look the installation up again.
            self._installations.pop(repo.slug, None)
            raise

    async def installation_token(self, installation_id: int) -> InstallationToken:
        """A token for every repository of the installation (to list them)."""
        return await self._tokens.get(installation_id, None)

    async def _mint(self, installation_id: int, repos: tuple[str, ...] | None) -> InstallationToken:
        app = self.client()
        scope = ", ".join(repos) if repos is not None else "all repositories"
        async with github_errors(f"minting an installation token for {scope}", self._api_url):
            if repos is None:
                response = await app.rest.apps.async_create_installation_access_token(
                    installation_id
                )
            else:
                response = await app.rest.apps.async_create_installation_access_token(
                    installation_id, repositories=list(repos), permissions=REPO_TOKEN_PERMISSIONS
                )
            data = response.parsed_data
            token = InstallationToken(token=data.token, expires_at=parse_time(data.expires_at))
        log.debug(
            "minted an installation token (installation %s, %s), expires %s",
            installation_id,
            scope,
            token.expires_at.isoformat(),
        )
        return token
