"""The access check at session creation: the creating user must be able to read each GitHub repo
of the session through **their own** GitHub identity, not merely through the App's installation.

Results (allowed or not) are cached per (user, repo) for ``github.access_cache_ttl_s``, so a burst
of sessions on one repo costs one GitHub call. A dead user token is not cached: the person is told
to sign in again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from openinspect.domain.models import User
from openinspect.errors import RepoAccessDenied, ScmAuthFailed
from openinspect.scm.base import RepoRef
from openinspect.scm.user_tokens import PROVIDER, UserTokens
from openinspect.store import Store

CACHE_MAX_ENTRIES = 10_000
_SIGN_IN_HINT = "Sign in with GitHub again, then retry"


class RepoReader(Protocol):
    async def user_can_read(self, user_token: str, repo: RepoRef) -> bool: ...


class AccessChecker:
    def __init__(
        self,
        github: RepoReader,
        user_tokens: UserTokens,
        store: Store,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._github = github
        self._tokens = user_tokens
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, bool, str]] = {}

    async def check(self, user: User, repo: RepoRef) -> None:
        """Return if ``user`` may read ``repo``; raise ``RepoAccessDenied`` otherwise."""
        key = (user.id, repo.slug.lower())
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            _, allowed, login = cached
        else:
            allowed, login = await self._ask_github(user, repo)
            self._remember(key, (now + self._ttl_s, allowed, login))
        if not allowed:
            raise RepoAccessDenied(
                f"{login} cannot read {repo.slug} on GitHub",
                hint="Ask for access to the repository on GitHub (results are remembered for "
                f"{self._ttl_s:g} s), or pick a repository you can read",
            )

    async def _ask_github(self, user: User, repo: RepoRef) -> tuple[bool, str]:
        identity = await self._store.identities.get(user.id, PROVIDER)
        if identity is None:
            raise RepoAccessDenied(
                f"{user.name} has no GitHub identity, so access to {repo.slug} cannot be checked",
                hint=_SIGN_IN_HINT,
            )
        token = await self._tokens.github_token(user.id)
        if token is None:
            raise RepoAccessDenied(
                f"The GitHub sign-in of @{identity.login} has expired, so access to "
                f"{repo.slug} cannot be checked",
                hint=_SIGN_IN_HINT,
            )
        try:
            allowed = await self._github.user_can_read(token, repo)
        except ScmAuthFailed as exc:
            await self._tokens.forget(user.id)
            raise RepoAccessDenied(
                f"GitHub no longer accepts the sign-in of @{identity.login} ({exc.message})",
                hint=_SIGN_IN_HINT,
            ) from exc
        return allowed, f"@{identity.login}"

    def _remember(self, key: tuple[str, str], value: tuple[float, bool, str]) -> None:
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                self._cache.clear()
        self._cache[key] = value
